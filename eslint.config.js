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
  ],
};

// Layers (test/unit/lint-rules.test.ts feeds a violating import to each rule):
//   contract  src/telephony/contract.ts, ids.ts   pure types and constants: zod only
//   flow      src/flow                            pure: the contract, no I/O, no Temporal
//   workflows src/workflows                       flow, contract and the pure campaign maths;
//                                                 activities as types only (proxyActivities)
// Adapters (src/telephony/{sip,infobip,simulator}, src/store, src/dev) and the processes around
// them are never imported by flow or workflows, and nothing in src imports scripts/ or bench/
// (benchmark and tooling code depends on src, never the other way). Patterns are regular
// expressions over the import as written: `(../)+dir/` is src/dir seen from any depth of src.
const up = '^(\\.\\./)+';
const layer = (message, ...dirs) => ({ regex: `${up}(${dirs.join('|')})(/|\\.js$)`, message });

const noToolingInSrc = {
  regex: `${up}(scripts|bench)/`,
  message: 'src must not depend on scripts/ or bench/: they depend on src.',
};

const adapters = [
  layer(
    'Telephony adapters are not imported by flow or workflow code.',
    'telephony/(sip|infobip)',
    'telephony/simulator',
  ),
  layer('Stores are I/O: activities and workers use them, flow and workflow code do not.', 'store'),
  layer('src/dev (local stacks, tooling) is not imported by flow or workflow code.', 'dev'),
];
/** What neither flow nor workflow code imports: processes, I/O and everything but the contract from telephony. */
const notFromPureLayers = [
  ...adapters,
  layer('Workers, the CLI and clients are the outer layer.', 'workers', 'cli', 'client'),
  layer('Config, codecs and logging are I/O.', 'config', 'codec', 'logging'),
  {
    // The adapters have their own message above.
    regex: `${up}telephony/(?!(contract|ids|simulator)\\.js$|sip/|infobip/)`,
    message: 'Only the contract (telephony/contract.js, ids.js) is shared with flow and workflow code.',
  },
];

const flowLayer = [
  ...notFromPureLayers,
  layer(
    'src/flow is the innermost layer after the contract: no workflows, activities or campaigns.',
    'workflows',
    'activities',
    'campaign',
  ),
];

const workflowLayer = [
  ...notFromPureLayers,
  layer('Recipient files and reports are I/O: activities and the CLI use them.', 'campaign/(recipients|report)'),
  {
    regex: `${up}activities/`,
    allowTypeImports: true,
    message: 'Import activities as types only, for proxyActivities.',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', 'coverage/**', 'console/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // Each block below restates noToolingInSrc: a later block's options for a rule replace an earlier one's.
  {
    files: ['src/**/*.{ts,mjs,js}'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noToolingInSrc] }] },
  },
  {
    files: ['src/telephony/contract.ts', 'src/telephony/ids.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noToolingInSrc,
            {
              regex: '^(?!zod$|\\./ids\\.js$)',
              message: 'The telephony contract is pure types and constants: it imports zod (and ids.js) only.',
            },
          ],
        },
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
            noToolingInSrc,
            {
              group: ['node:*', '@temporalio/*', '@nats-io/*', 'prom-client'],
              message: 'src/flow is pure: no I/O, no Temporal.',
            },
            ...flowLayer,
          ],
        },
      ],
    },
  },
  // Workflow code, and the benchmark's workflow entry and baseline (same sandbox).
  {
    files: ['src/workflows/**/*.ts', 'bench/workflows.ts', 'bench/baseline-workflow.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: forbiddenInWorkflows.paths.map((p) => ({ ...p, allowTypeImports: true })),
          patterns: [...forbiddenInWorkflows.patterns, ...workflowLayer],
        },
      ],
    },
  },
  // The web console runs in the browser: DOM globals, no Node built-ins.
  {
    files: ['console/src/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['node:*'], message: 'The console runs in the browser: no Node built-ins.' }] },
      ],
    },
  },
  // Layout is Prettier's (`npm run format`): stylistic lint rules would only fight it.
  prettier,
);
