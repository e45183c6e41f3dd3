// Metrics from workflows go through sinks: calls into the worker's Node context, outside history,
// and not repeated on replay. The worker implements them with prom-client (src/workers/metrics.ts).
// A sink call is at-least-once (a workflow task whose completion the server rejects runs again),
// so the worker counts each call, completion and dial once per workflow run.
import { proxySinks, type Sinks } from '@temporalio/workflow';

export type CallDirection = 'inbound' | 'outbound';

export interface CampaignProgressSample {
  state: string;
  placed: number;
  completed: number;
  inFlight: number;
  remaining: number;
  waitingForWindow: number;
  callsPerMinute: number;
}

export interface DialflowSinks extends Sinks {
  metrics: {
    callStarted(flowId: string, campaignId: string, direction: CallDirection): void;
    callCompleted(flowId: string, campaignId: string, direction: CallDirection, outcome: string): void;
    /** `reason`: why a retry was needed (the previous attempt's error code), `first` otherwise. `commandId` makes it countable once. */
    dialAttempt(flowId: string, campaignId: string, reason: string, commandId: string): void;
    campaignProgress(campaignId: string, sample: CampaignProgressSample): void;
    /** The dispatcher waits: for slots (calling speed), for calls to finish (concurrency) or for windows. */
    campaignWait(campaignId: string, kind: 'speed' | 'concurrency' | 'window', seconds: number): void;
  };
}

export const { metrics } = proxySinks<DialflowSinks>();
