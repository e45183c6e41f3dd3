// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import prettier from 'eslint-config-prettier';

// Workflow code runs inside Temporal's deterministic sandbox: Node built-ins, NATS and prom-client
// would either break replay or fail at bundle time, so importing them there is a lint error.
const forbiddenInWorkflows = {
  paths: [
    'prom-client',
    '@temporalio/client',
    '@temporalio/worker',
    '@temporalio/activity',
    ...[
      'fs',
      'path',
      'os',
      'child_process',
      'net',
      'http',
      'https',
      'crypto',
      'events',
      'stream',
      'url',
      'util',
      'worker_threads',
      'timers',
      'process',
      'dns',
      'readline',
      'zlib',
    ].flatMap((m) => [
      { name: m, message: 'Node built-ins are not allowed in workflow code (non-deterministic).' },
      { name: `node:${m}`, message: 'Node built-ins are not allowed in workflow code (non-deterministic).' },
    ]),
  ].map((p) => (typeof p === 'string' ? { name: p, message: 'Not allowed in workflow code.' } : p)),
  patterns: [
    { group: ['node:*'], message: 'Node built-ins are not allowed in workflow code.' },
    { group: ['@nats-io/*', 'nats'], message: 'NATS belongs in activities and workers, not workflows.' },
    {
      group: ['**/activities/*', '!**/activities/index.js'],
      message: 'Import activities as types only via proxyActivities.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { ...forbiddenInWorkflows, paths: forbiddenInWorkflows.paths.map((p) => ({ ...p, allowTypeImports: true })) },
      ],
    },
  },
  {
    files: ['src/flow/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', '@temporalio/*', '@nats-io/*', 'prom-client'],
              message: 'src/flow is pure: no I/O, no Temporal.',
            },
          ],
        },
      ],
    },
  },
  // Layout is Prettier's (`npm run format`): stylistic lint rules would only fight it.
  prettier,
);
