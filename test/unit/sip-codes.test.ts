import { describe, expect, it } from 'vitest';
import { mapSipFailure, responseLabel, SIP_CODE_TABLE } from '../../src/telephony/sip/sip-codes.js';

/** A reason string baresip could report for a table row. */
function sample(match: string | number): string {
  if (typeof match === 'number') return `${match} Some Reason`;
  if (/^\dxx$/.test(match)) return `${match[0]}99 Something`;
  return match;
}

describe('SIP final responses → error codes', () => {
  it.each(SIP_CODE_TABLE.map((r) => [String(r.match), r]))('row %s', (_, row) => {
    expect(mapSipFailure(sample(row.match)).errorCode).toBe(row.errorCode);
  });

  it('parses baresip close reasons and bare numbers', () => {
    expect(mapSipFailure('486 Busy Here')).toEqual({ errorCode: 'BUSY', status: 486, reason: '486 Busy Here' });
    expect(mapSipFailure(603).errorCode).toBe('REJECTED');
    expect(mapSipFailure('480 Temporarily Unavailable').errorCode).toBe('NO_ANSWER');
    expect(mapSipFailure('502 Bad Gateway').errorCode).toBe('NETWORK_ERROR');
    expect(mapSipFailure('488 Not Acceptable Here').errorCode).toBe('INTERNAL_ERROR');
    expect(mapSipFailure('Connection timed out').errorCode).toBe('NETWORK_ERROR');
    expect(mapSipFailure('something odd').errorCode).toBe('INTERNAL_ERROR');
  });

  it('labels dials for the metric', () => {
    expect(responseLabel('486 Busy Here')).toBe('486');
    expect(responseLabel('Connection timed out')).toBe('timeout');
    expect(responseLabel('weird')).toBe('other');
  });
});
