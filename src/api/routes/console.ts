// The web console: the single-page app built by Vite into console/dist (`npm run console:build`,
// run by `npm run setup`), served at `/`. Every GET outside /api answers index.html (the app routes
// in the browser); hashed assets are cached for a year, index.html never. The page holds no data
// (it asks GET /api/session), so these routes are public; a strict Content-Security-Policy allows
// scripts, styles and requests from this origin only.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PROJECT_ROOT } from '../../config/tools.js';
import { isApiPath } from '../auth.js';
import type { ApiDeps } from '../deps.js';

export const CONSOLE_DIST = join(PROJECT_ROOT, 'console', 'dist');

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Recordings and TTS previews play from blob: URLs; React Flow draws in SVG.
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT = 'The web console is not built: run `npm run setup` (or `npm run console:build`).\n';

const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

const securityHeaders = (reply: FastifyReply): FastifyReply =>
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('x-frame-options', 'DENY');

export const consoleRoutes: FastifyPluginAsyncZod<ApiDeps & { consoleDist?: string }> = async (app, opts) => {
  const root = opts.consoleDist ?? CONSOLE_DIST;
  // serve: false — only our routes answer (with our headers); sendFile stays inside root.
  await app.register(fastifyStatic, { root, serve: false });

  app.get('/assets/*', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const file = (request.params as { '*': string })['*'];
    // Vite writes assets/ flat, with hashed names: anything else (a slash, `..`) is no asset of ours.
    if (!ASSET_NAME.test(file)) return reply.callNotFound();
    return securityHeaders(reply).sendFile(join('assets', file), {
      maxAge: '365d',
      immutable: true,
    });
  });

  const page = async (url: string, reply: FastifyReply) => {
    if (isApiPath(url)) return reply.callNotFound();
    securityHeaders(reply);
    if (!existsSync(join(root, 'index.html')))
      return reply.code(503).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(NOT_BUILT);
    return reply.header('cache-control', 'no-cache').sendFile('index.html', { cacheControl: false });
  };
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (request, reply) =>
    page(request.url, reply),
  );
  app.get('/*', { config: { public: true }, schema: { hide: true } }, async (request, reply) =>
    page(request.url, reply),
  );
};
