// What a provider's error code means for a dial or a forward.
import type { ErrorCode } from '../../telephony/contract.js';
import type { DialOutcome } from '../state.js';

/** Failures the flow knows (busy, no answer …): they use the call-retry budget and have branches. */
export const KNOWN_FAILURES: ReadonlySet<DialOutcome> = new Set<DialOutcome>([
  'noAnswer',
  'busy',
  'declined',
  'unreachable',
  'network',
]);

export function classifyFailure(code: unknown): DialOutcome {
  switch (code as ErrorCode) {
    case 'NO_ANSWER':
      return 'noAnswer';
    case 'BUSY':
      return 'busy';
    case 'REJECTED':
      return 'declined';
    case 'UNREACHABLE':
      return 'unreachable';
    case 'NETWORK_ERROR':
      return 'network';
    case 'MACHINE_DETECTED':
      return 'voicemail';
    default:
      return 'error';
  }
}
