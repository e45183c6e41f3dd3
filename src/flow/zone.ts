// A recipient's time zone, from an explicit field or derived from the phone number.
// Pure: libphonenumber-js and countries-and-timezones are data, luxon does the offset maths.
// A country counts as one zone only if all its zones keep the same UTC offsets (DST included)
// for the next two years: Germany (Berlin, Büsingen) is one zone; Spain (Canaries), Portugal
// (Azores), the US or Russia are not, and their numbers stay "unknown" rather than guessed.
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { getCountry, getTimezonesForCountry } from 'countries-and-timezones';
import { DateTime, IANAZone } from 'luxon';
import type { Recipient } from './interpreter.js';

export type ZoneResolution = { zone: string; source: 'recipient' | 'number' } | { zone?: undefined; reason: string };

const DAY_MS = 86_400_000;
/** Sampled every 5 days over two years: DST changes are weeks apart, so none is missed. */
const SAMPLES = Array.from({ length: 146 }, (_, i) => i * 5 * DAY_MS);

const countryZoneCache = new Map<string, string | null>();

function sameOffsets(a: string, b: string, from: number): boolean {
  return SAMPLES.every(
    (d) => DateTime.fromMillis(from + d, { zone: a }).offset === DateTime.fromMillis(from + d, { zone: b }).offset,
  );
}

/**
 * The name people of the country know their zone by: tz links Europe/Zagreb to Europe/Belgrade
 * and Europe/Amsterdam to Europe/Brussels; the same rules under the country's own name.
 */
function localName(canonical: string, country: string): string {
  const all = getTimezonesForCountry(country, { deprecated: true }) ?? [];
  if (all.find((z) => z.name === canonical)?.countries[0] === country) return canonical;
  const own = all.find(
    (z) => z.aliasOf === canonical && z.name.includes('/') && z.countries.length === 1 && IANAZone.isValidZone(z.name),
  );
  return own?.name ?? canonical;
}

/** The one zone of a country, or null if it has several that differ. */
export function countryTimeZone(country: string, at: number = Date.now()): string | null {
  const cached = countryZoneCache.get(country);
  if (cached !== undefined) return cached;
  const zones = (getCountry(country)?.timezones ?? []).filter((z) => IANAZone.isValidZone(z));
  const first = zones[0];
  // Start of the current year keeps the answer stable for a whole year (and cacheable).
  const from = DateTime.fromMillis(at, { zone: 'utc' }).startOf('year').toMillis();
  const zone =
    first !== undefined && zones.every((z) => sameOffsets(first, z, from)) ? localName(first, country) : null;
  countryZoneCache.set(country, zone);
  return zone;
}

/** The recipient's zone: its own valid `timeZone`, else the single zone of its number's country. */
export function resolveTimeZone(
  recipient: { phone?: unknown; timeZone?: unknown },
  at: number = Date.now(),
): ZoneResolution {
  if (typeof recipient.timeZone === 'string' && recipient.timeZone !== '') {
    return IANAZone.isValidZone(recipient.timeZone)
      ? { zone: recipient.timeZone, source: 'recipient' }
      : { reason: `"${recipient.timeZone}" is not an IANA time zone` };
  }
  if (typeof recipient.phone !== 'string') return { reason: 'no phone number to derive a time zone from' };
  const parsed = parsePhoneNumberFromString(recipient.phone);
  if (!parsed) return { reason: `${maskNumber(recipient.phone)} is not an international phone number` };
  const country = parsed.country;
  if (!country) return { reason: `+${parsed.countryCallingCode} numbers have no single country` };
  const zone = countryTimeZone(country, at);
  return zone
    ? { zone, source: 'number' }
    : { reason: `${country} spans several time zones; give the recipient a timeZone` };
}

/** Enough of a number to recognise it in a message, not enough to dial it. */
export function maskNumber(phone: string): string {
  return phone.length <= 5 ? '***' : `${phone.slice(0, 4)}***${phone.slice(-2)}`;
}

/**
 * The recipient with `timeZone` filled in where it can be derived. An unknown zone stays absent:
 * the interpreter then refuses windows in the recipient's zone and says why (`timeZoneUnknown`).
 */
export function withTimeZone(recipient: Recipient, at: number = Date.now()): Recipient {
  const resolved = resolveTimeZone(recipient, at);
  if (resolved.zone !== undefined)
    return resolved.zone === recipient.timeZone ? recipient : { ...recipient, timeZone: resolved.zone };
  const { timeZone: _dropped, ...rest } = recipient;
  return { ...rest, timeZoneUnknown: resolved.reason };
}
