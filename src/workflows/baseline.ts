// The benchmark's bare-Temporal baseline: the same number of activities and signals as one
// answered-and-confirmed appointment-reminder call, without the interpreter, NATS, the bridge,
// the simulator or payload encryption. `npm run bench` compares dialflow's calls against it.
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';

export const baselineEventSignal = defineSignal<[number]>('baselineEvent');

const { baselineStep } = proxyActivities<Activities>({ startToCloseTimeout: '10 seconds' });

/** `signalsPerStep[i]`: signals the i-th activity sends back (dial → ringing + established, …). */
export async function baselineWorkflow(signalsPerStep: number[]): Promise<number> {
  let received = 0;
  setHandler(baselineEventSignal, () => {
    received += 1;
  });
  let expected = 0;
  for (const signals of signalsPerStep) {
    await baselineStep(signals);
    expected += signals;
    await condition(() => received >= expected);
  }
  return received;
}
