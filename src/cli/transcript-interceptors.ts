// Workflow interceptors for transcripts (this module runs inside the workflow sandbox of a replay
// worker, see transcript-commands.ts). Telephony commands are local activities: their history
// markers keep the result, not the command, so the transcript learns what was dialled, said and
// collected by replaying the history with this interceptor, which hands every command to a sink.
import { proxySinks, workflowInfo, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import type { TelephonyCommand } from '../telephony/contract.js';

export interface TranscriptSinks extends Sinks {
  transcript: {
    /**
     * A telephony command the workflow sent. `historyLength`: the id of the workflow task's started
     * event, so the transcript places the command among the history's events; `at`: workflow time.
     */
    command(command: TelephonyCommand, historyLength: number, at: number): void;
  };
}

const { transcript } = proxySinks<TranscriptSinks>();

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      async scheduleLocalActivity(input, next) {
        // Every attempt passes here (a backed-off retry schedules again): the first one is the command.
        if (input.activityType === 'sendTelephonyCommand' && input.attempt === 1)
          transcript.command(input.args[0] as TelephonyCommand, workflowInfo().historyLength, Date.now());
        return next(input);
      },
    },
  ],
});
