// The telephony commands of a finished call, recovered by replaying its history. Commands go out as
// local activities, whose markers keep only the result; a replay of the real workflow code with the
// interceptor of transcript-interceptors.ts sees each command as the workflow sent it.
import { fileURLToPath } from 'node:url';
import { DefaultLogger, ReplayError, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { temporal } from '@temporalio/proto';
import { Registry } from 'prom-client';
import type { TelephonyCommand } from '../telephony/contract.js';
import { WORKFLOWS_PATH } from '../workers/flow-worker.js';
import { workflowMetricSinks } from '../workers/metrics.js';

/** A telephony command, with the history position and workflow time at which the workflow sent it. */
export interface SentCommand {
  command: TelephonyCommand;
  /** The started event of the workflow task that sent it: the command follows that event. */
  historyLength: number;
  /** Workflow time (epoch ms). */
  at: number;
}

const INTERCEPTORS_PATH = fileURLToPath(new URL('./transcript-interceptors.ts', import.meta.url));

let runtimeInstalled = false;

/**
 * The SDK's runtime for a CLI command: its logs (and the bundler's) go to stderr at ERROR, so stdout
 * stays a clean transcript or JSON. Installed once per process, before any worker exists.
 */
export function installCliRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: new DefaultLogger('ERROR', (entry) => process.stderr.write(`${entry.level} ${entry.message}\n`)),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  runtimeInstalled = true;
}

/**
 * The telephony commands of a closed workflow, from a replay of its (decoded) history. Returns
 * undefined, with the reason, when this code cannot replay it (a worker ran another version).
 */
export async function sentCommands(
  history: temporal.api.history.v1.IHistory,
  workflowId: string,
): Promise<{ commands: SentCommand[] } | { commands?: undefined; reason: string }> {
  installCliRuntime();
  const commands: SentCommand[] = [];
  try {
    await Worker.runReplayHistory(
      {
        workflowsPath: WORKFLOWS_PATH,
        interceptors: { workflowModules: [INTERCEPTORS_PATH] },
        sinks: {
          // Never called on replay; registered so the workflow's metric calls have a sink.
          ...workflowMetricSinks(new Registry()),
          transcript: {
            command: {
              fn: (_info, command: TelephonyCommand, historyLength: number, at: number) => {
                commands.push({ command, historyLength, at });
              },
              callDuringReplay: true,
            },
          },
        },
      },
      history,
      workflowId,
    );
  } catch (err) {
    if (err instanceof ReplayError || err instanceof DeterminismViolationError) return { reason: err.message };
    throw err;
  }
  return { commands };
}
