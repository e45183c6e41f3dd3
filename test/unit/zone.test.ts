// Recipient zones: explicit, derived from the number's country, or unknown with a reason.
import { describe, expect, it } from 'vitest';
import { countryTimeZone, resolveTimeZone, withTimeZone } from '../../src/flow/zone.js';

const at = Date.UTC(2026, 10, 23);

describe('recipient time zones', () => {
  it('derives single-zone countries from the number', () => {
    expect(resolveTimeZone({ phone: '+4915112345678' }, at)).toEqual({ zone: 'Europe/Berlin', source: 'number' });
    expect(resolveTimeZone({ phone: '+33612345678' }, at)).toEqual({ zone: 'Europe/Paris', source: 'number' });
    expect(resolveTimeZone({ phone: '+442071234567' }, at)).toEqual({ zone: 'Europe/London', source: 'number' });
    expect(resolveTimeZone({ phone: '+385915550000' }, at)).toEqual({ zone: 'Europe/Zagreb', source: 'number' });
    expect(resolveTimeZone({ phone: '+919876543210' }, at)).toEqual({ zone: 'Asia/Kolkata', source: 'number' });
  });

  it('leaves countries with several differing zones unknown, with the reason', () => {
    for (const [phone, country] of [
      ['+14155550100', 'US'],
      ['+34612345678', 'ES'],
      ['+351912345678', 'PT'],
      ['+61412345678', 'AU'],
      ['+79161234567', 'RU'],
    ] as const) {
      const r = resolveTimeZone({ phone }, at);
      expect(r.zone, phone).toBeUndefined();
      expect('reason' in r && r.reason).toContain(`${country} spans several time zones`);
    }
    // Germany lists Büsingen (Europe/Zurich): same offsets all year, so still one zone.
    expect(countryTimeZone('DE', at)).toBe('Europe/Berlin');
    expect(countryTimeZone('ES', at)).toBeNull();
  });

  it('an explicit zone wins; an invalid one, a non-geographic or unparsable number is unknown', () => {
    expect(resolveTimeZone({ phone: '+14155550100', timeZone: 'America/Chicago' }, at)).toEqual({
      zone: 'America/Chicago',
      source: 'recipient',
    });
    expect(resolveTimeZone({ phone: '+33612345678', timeZone: 'Mars/Olympus' }, at)).toMatchObject({
      reason: expect.stringContaining('not an IANA time zone'),
    });
    expect(resolveTimeZone({ phone: '+80012345678' }, at)).toMatchObject({
      reason: expect.stringContaining('no single country'),
    });
    expect(resolveTimeZone({ phone: 'call me' }, at)).toMatchObject({
      reason: expect.stringContaining('not an international phone number'),
    });
  });

  it('withTimeZone fills the zone or records why not, never leaking the full number', () => {
    expect(withTimeZone({ id: 'a', phone: '+33612345678' }, at)).toEqual({
      id: 'a',
      phone: '+33612345678',
      timeZone: 'Europe/Paris',
    });
    const unknown = withTimeZone({ id: 'b', phone: '+999612345678' }, at);
    expect(unknown.timeZone).toBeUndefined();
    expect(String(unknown.timeZoneUnknown)).not.toContain('612345678');
  });
});

describe('zone names', () => {
  it('uses the country’s own name for a linked zone', () => {
    expect(countryTimeZone('NL', at)).toBe('Europe/Amsterdam');
    expect(countryTimeZone('SI', at)).toBe('Europe/Ljubljana');
    expect(countryTimeZone('GB', at)).toBe('Europe/London');
    expect(countryTimeZone('RS', at)).toBe('Europe/Belgrade');
  });
});
