// The benchmark's bare-Temporal baseline: the Temporal work of one answered-and-confirmed
// appointment-reminder call (outboundCall, core v2) without dialflow's logic — the same workflow
// tasks, local-activity markers, signals and timer, with payloads of about the same sizes, and no
// interpreter, NATS, bridge or simulator. Its local activity asks the baseline signaller (a process
// of its own, as the bridge is: bench/baseline-activities.ts) to signal the workflow, as a call's
// telephony command makes the provider's events reach it through the bridge. Every payload (input,
// local-activity inputs and results, signal arguments, result) goes through the encrypting payload
// codec like every dialflow payload: the worker refuses plain ones. Benchmark code only:
// bench/workflows.ts adds it to the bench worker's bundle, the production bundle
// (src/workflows/index.ts) does not have it. bench/run.ts checks that its history has the call's
// shape, and fails the benchmark when it has not.
import { condition, defineSignal, proxyLocalActivities, setHandler, sleep } from '@temporalio/workflow';
import type { BaselineActivities } from './baseline-activities.js';

/** A telephony event's fields, with made-up values: what the signaller sends. */
export interface BaselineEvent {
  id: string;
  type: string;
  callId: string;
  timestamp: string;
  properties: Record<string, unknown>;
}

/** As `telephonyEvents`: an event the bridge held and the event after it, in one signal. */
export const baselineEventsSignal = defineSignal<[BaselineEvent[]]>('baselineEvents');

export interface BaselineStep {
  /** The size of the command's content: the local activity's input is about this many bytes larger. */
  bytes: number;
  /**
   * What the local activity returns, as the call's do: the command it was given
   * (sendTelephonyCommand), `ok` (the compliance gate) or nothing (the call record).
   */
  reply: 'command' | 'ok' | 'nothing';
  /**
   * Whether the local activity asks the signaller for a signal (as a telephony command makes the
   * provider's events reach the call), which the workflow then waits for: the next step runs in
   * the workflow task that signal brings.
   */
  signalled: boolean;
}

export interface BaselineCommand {
  body: string;
  reply: BaselineStep['reply'];
  signalled: boolean;
}

export interface BaselineInput {
  /** Stands for the flow, recipient and hints a call carries in its input (the input's size). */
  padding: string;
  /** The local activities, in order. */
  steps: BaselineStep[];
  /** The size of the result (a call's: outcome, trail, variables…). */
  resultBytes: number;
  /** The one watchdog timer, started at the first wait and left running (a call's: its dial's ring timeout). */
  watchdogMs: number;
}

export interface BaselineResult {
  signals: number;
  events: number;
  result: string;
}

// The options of the call's telephony commands (src/workflows/call.ts).
const { baselineCommand } = proxyLocalActivities<BaselineActivities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});

export async function baselineWorkflow(input: BaselineInput): Promise<BaselineResult> {
  let signals = 0;
  let events = 0;
  setHandler(baselineEventsSignal, (batch) => {
    signals += 1;
    events += batch.length;
  });
  let awaited = 0;
  let watchdog = false;
  for (const step of input.steps) {
    await baselineCommand({ body: 'x'.repeat(step.bytes), reply: step.reply, signalled: step.signalled });
    if (!step.signalled) continue;
    if (!watchdog) {
      // Never awaited nor cancelled: like the call's watchdog (a wait's fallback that a working
      // call never reaches), it is still running when the workflow completes, which drops it.
      void sleep(input.watchdogMs);
      watchdog = true;
    }
    awaited += 1;
    await condition(() => signals >= awaited);
  }
  return { signals, events, result: 'x'.repeat(input.resultBytes) };
}
