// A telephony provider for time-skipping runs (tests, `dialflow simulate`): the simulator engine runs in process and its events
// are signalled to the owning workflow before the command's activity completes. Auto time-skipping
// then never races ahead of an event that is already due.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { EVENTS_NO_ELEMENT_READS, workflowIdOfCallId, type TelephonyCommand } from './contract.js';
import type { SmsMessage, SmsSender, TelephonyProvider } from './provider.js';
import { INSTANT, SimulatorEngine } from './simulator.js';
import { MemoryRecordingStore, synthesizeWav } from '../store/recordings.js';
import { telephonyEventSignal } from '../workflows/messages.js';

export class InlineSimulatorProvider implements TelephonyProvider, SmsSender {
  readonly sms: SmsMessage[] = [];
  readonly engine = new SimulatorEngine(INSTANT);
  readonly recordings = new MemoryRecordingStore();
  constructor(private readonly client: () => Client) {}

  async sendSms(message: SmsMessage): Promise<{ messageId: string }> {
    this.sms.push(message);
    return { messageId: `inline-${this.sms.length}` };
  }

  async send(command: TelephonyCommand): Promise<void> {
    const workflowId = workflowIdOfCallId(command.callId);
    if (!workflowId) throw new Error(`unroutable call id ${command.callId}`);
    for (const p of this.engine.plan(command)) {
      if (p.recording) await this.recordings.put(p.recording, synthesizeWav(p.recording.durationMs));
      // As the bridge does: no element reacts to these.
      if (EVENTS_NO_ELEMENT_READS.has(p.event.type)) continue;
      try {
        await this.client().workflow.getHandle(workflowId).signal(telephonyEventSignal, p.event);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
  }
}
