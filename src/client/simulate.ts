// One simulated call of a flow on Temporal's time-skipping test server with the in-process
// simulator, so a week of retries and pauses takes seconds: the core of `dialflow simulate` and of
// `POST /api/simulate`. Each run starts its own test server process, so callers that take requests
// from others bound how many run at once (SimulationQueue).
import pLimit, { type LimitFunction } from 'p-limit';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { bundleWorkflowCode, DefaultLogger, Runtime, type LogLevel, type WorkflowBundle } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../workers/flow-worker.js';
import { startCall, startInboundCall } from './calls.js';
import { callReport, type SimulationReport } from './call-report.js';
import { withTimeZone } from '../flow/zone.js';
import { inboundWorkflowId } from '../telephony/contract.js';
import type { Recipient } from '../flow/interpreter.js';
import type { Flow } from '../flow/schema.js';
import type { Persona } from '../telephony/simulator.js';
import { startTimeSkipping } from '../dev/time-skipping.js';
import { decodeHistory } from '../codec/encryption.js';

const SIMULATE_TASK_QUEUE = 'dialflow-simulate';

/** Who is called (or calls, for an inbound flow) when a simulation is given no recipient. */
export const DEFAULT_SIMULATED_RECIPIENT: Recipient = { id: 'sim-1', phone: '+385915550000', firstName: 'Ana' };

let runtimeInstalled = false;

/**
 * Send the SDK's own logs (its core's and the workflow bundler's) to `write` at ERROR only, so a
 * simulation prints nothing of its own. The runtime is a process-wide singleton that must be
 * installed before any worker exists: once per process, and never over a runtime already made.
 */
export function installQuietSdkRuntime(write: (level: LogLevel, message: string) => void): void {
  if (runtimeInstalled || Runtime._instance !== undefined) return;
  Runtime.install({
    logger: new DefaultLogger('ERROR', (entry) => write(entry.level, entry.message)),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  runtimeInstalled = true;
}

// Bundling the workflows takes seconds of CPU; a process that simulates many calls (the API) does
// it once. A failed bundle is not kept: the next simulation tries again.
let workflowBundle: Promise<WorkflowBundle> | undefined;
function workflowBundleOnce(): Promise<WorkflowBundle> {
  // The runtime's logger, as Worker.create uses when it bundles: the CLI's and the API's are quiet.
  workflowBundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: Runtime.instance().logger }).catch(
    (err: unknown) => {
      workflowBundle = undefined;
      throw err;
    },
  );
  return workflowBundle;
}

/**
 * Run one call of a valid flow with a simulated person. An outbound flow calls `recipient`; for an
 * inbound flow, `recipient` calls the flow's number. The recipient's zone comes from its
 * `timeZone` or its number, as for real calls.
 */
export async function simulateFlow(
  flow: Flow,
  opts: { persona: Persona; recipient?: Partial<Recipient> },
): Promise<SimulationReport> {
  const recipient: Recipient = withTimeZone({ ...DEFAULT_SIMULATED_RECIPIENT, ...opts.recipient });
  const { persona } = opts;
  const inboundNumber = flow.start ? undefined : flow.elements.find((e) => e.type === 'startIncomingCall');

  const { env, worker, provider, codec } = await startTimeSkipping(SIMULATE_TASK_QUEUE, {
    workflowBundle: await workflowBundleOnce(),
  });
  // A simulated person calls the flow's number; the CALL_RECEIVED reaches the workflow as the bridge would send it.
  const callIn = (number: string) => {
    const received = provider.engine.incomingCall('sim-in-1', recipient.phone, number, persona).event;
    return startInboundCall(env.client, {
      flow,
      received,
      workflowId: inboundWorkflowId(received.callId),
      taskQueue: SIMULATE_TASK_QUEUE,
    });
  };
  try {
    const { result, history } = await worker.runUntil(async () => {
      const handle =
        inboundNumber?.type === 'startIncomingCall'
          ? await callIn(inboundNumber.number)
          : await startCall(env.client, {
              flow,
              recipient,
              campaignId: 'simulate',
              taskQueue: SIMULATE_TASK_QUEUE,
              hints: { persona },
            });
      const result = await handle.result();
      return { result, history: await decodeHistory(await handle.fetchHistory(), codec) };
    });
    // From the call's own history: once it is over, the test server skips ahead to whatever timer is
    // left (an activity's schedule-to-close), so its clock says nothing about the call.
    const events = history.events ?? [];
    const simulatedSeconds = Math.round((tsToMs(events.at(-1)?.eventTime) - tsToMs(events[0]?.eventTime)) / 1000);
    return { ...(await callReport(flow, result, history, recipient.timeZone ?? 'UTC')), simulatedSeconds };
  } finally {
    await env.teardown();
  }
}

/** The queue is full: the caller should come back later. */
export class SimulationBusyError extends Error {
  constructor(readonly capacity: number) {
    super(`${capacity} simulations are running or waiting; try again shortly`);
    this.name = 'SimulationBusyError';
  }
}

/**
 * At most `running` simulations at once and `waiting` more in line; beyond that a run is refused
 * at once (SimulationBusyError) rather than queued without end, since each holds a test server.
 */
export class SimulationQueue {
  private readonly limit: LimitFunction;

  constructor(
    readonly running: number,
    readonly waiting: number,
  ) {
    this.limit = pLimit(running);
  }

  /** Runs and waiting runs. */
  get size(): number {
    return this.limit.activeCount + this.limit.pendingCount;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    // p-limit counts a run as pending from the moment it is given: the check and the enqueue are atomic.
    if (this.size >= this.running + this.waiting)
      return Promise.reject(new SimulationBusyError(this.running + this.waiting));
    return this.limit(task);
  }
}
