// The provider interface: how activities hand telephony commands to a carrier or the simulator.
import type { TelephonyCommand } from './contract.js';

export interface TelephonyProvider {
  /** Resolves once the provider accepted the command; events follow asynchronously. */
  send(command: TelephonyCommand): Promise<void>;
}

/** The provider refused a command as malformed: retrying cannot help. */
export class InvalidCommandError extends Error {
  override readonly name = 'InvalidCommandError';
}

/** The provider could not be reached or did not answer in time: retry. */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
}

export interface SmsMessage {
  from?: string;
  to: string;
  text: string;
}

/** Sends SMS through the provider (the simulator records them). */
export interface SmsSender {
  sendSms(message: SmsMessage): Promise<{ messageId: string }>;
}
