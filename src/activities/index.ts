// Activities are built by a factory so tests can pass real or fake dependencies.
import { ApplicationFailure } from '@temporalio/activity';
import type { TelephonyCommand } from '../telephony/contract.js';
import { InvalidCommandError, type TelephonyProvider } from '../telephony/provider.js';

export interface ActivityDeps {
  telephony: TelephonyProvider;
}

export function createActivities(deps: ActivityDeps) {
  return {
    async sendTelephonyCommand(command: TelephonyCommand): Promise<void> {
      try {
        await deps.telephony.send(command);
      } catch (err) {
        if (err instanceof InvalidCommandError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
