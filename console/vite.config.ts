// The web console's build: a single-page app bundled by Vite into console/dist, served by the API
// at `/` (src/api/routes/console.ts). `npm run console:dev` serves it with hot reload and proxies
// /api to a running `dialflow api` (DIALFLOW_API_URL, default http://127.0.0.1:8080).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names under assets/: served with a year's cache; index.html is never cached.
    assetsDir: 'assets',
    sourcemap: false,
    // No inline scripts or styles anywhere: the server's CSP is `default-src 'self'`.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    // dist/.vite/manifest.json: the chunk graph, which the bundle-size test walks.
    manifest: true,
  },
  server: {
    proxy: { '/api': process.env.DIALFLOW_API_URL ?? 'http://127.0.0.1:8080' },
  },
});
