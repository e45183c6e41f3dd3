// How a phone number is identified: the E.164 form every edge (one-off calls, the do-not-call
// routes and files) turns a number into, and the key the do-not-call list and the contact counts
// keep a number under.
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { kvKey } from './profiles.js';

/**
 * An international number valid for its country (libphonenumber), in E.164 (`+14155550123`), or
 * undefined. National numbers (`091 555 0000`) are refused: without a country they name no one.
 */
export function normaliseInternationalNumber(raw: string): string | undefined {
  const trimmed = raw.trim();
  if (!trimmed.startsWith('+')) return undefined;
  const phone = parsePhoneNumberFromString(trimmed);
  return phone?.isValid() ? phone.number : undefined;
}

/** The key of a number in the do-not-call and contact buckets: its digits (`+1 (415) 555-0100` is `14155550100`). */
export const phoneKey = (phone: string): string => kvKey(phone.replace(/[^0-9]/g, ''));
