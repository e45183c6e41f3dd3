// A telephony provider for time-skipping tests: the simulator engine runs in process and its events
// are signalled to the owning workflow before the command's activity completes. Auto time-skipping
// then never races ahead of an event that is already due.
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { workflowIdOfCallId, type TelephonyCommand } from '../../src/telephony/contract.js';
import type { SmsMessage, SmsSender, TelephonyProvider } from '../../src/telephony/provider.js';
import { INSTANT, SimulatorEngine } from '../../src/telephony/simulator.js';
import { telephonyEventSignal } from '../../src/workflows/messages.js';

export class InlineSimulatorProvider implements TelephonyProvider, SmsSender {
  readonly sms: SmsMessage[] = [];
  readonly engine = new SimulatorEngine(INSTANT);
  constructor(private readonly client: () => Client) {}

  async sendSms(message: SmsMessage): Promise<{ messageId: string }> {
    this.sms.push(message);
    return { messageId: `inline-${this.sms.length}` };
  }

  async send(command: TelephonyCommand): Promise<void> {
    const workflowId = workflowIdOfCallId(command.callId);
    if (!workflowId) throw new Error(`unroutable call id ${command.callId}`);
    for (const p of this.engine.plan(command)) {
      try {
        await this.client().workflow.getHandle(workflowId).signal(telephonyEventSignal, p.event);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }
  }
}
