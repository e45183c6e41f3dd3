// Campaign building blocks: calling speed, bitmaps, recipients files, the forecast. The dispatcher
// and its dial budget: campaign-dispatcher.test.ts.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { dialableFrom, formatSpeed, nextSlot, slotIntervalMs } from '../../src/campaign/pacing.js';
import { parseSpeed } from '../../src/campaign/speed.js';
import { bitmapCount, bitmapFrom, bitmapHas } from '../../src/campaign/bitmap.js';
import { stageRecipients, type PageRow } from '../../src/campaign/recipients.js';
import { forecastCampaign } from '../../src/campaign/forecast.js';
import { reportCsv } from '../../src/campaign/report.js';
import { parseFlow } from '../../src/flow/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-campaign-'));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('calling speed', () => {
  it('parses N/minute|hour|day and refuses nonsense', () => {
    expect(parseSpeed('100/minute')).toEqual({ calls: 100, per: 'minute' });
    expect(parseSpeed('5000 per hour')).toEqual({ calls: 5000, per: 'hour' });
    expect(parseSpeed('1000/d')).toEqual({ calls: 1000, per: 'day' });
    for (const bad of ['0/minute', '100', 'fast', '10/week', '2000000/minute', '100/minute slow', 'spread'])
      expect(() => parseSpeed(bad), bad).toThrow(RangeError);
  });
  it('says spread after the speed for even spacing (burst, the default, may be said too); formatSpeed reads back', () => {
    expect(parseSpeed('1000/day spread')).toEqual({ calls: 1000, per: 'day', spread: true });
    expect(parseSpeed('100/min,spread')).toEqual({ calls: 100, per: 'minute', spread: true });
    expect(parseSpeed('100 per minute Spread')).toEqual({ calls: 100, per: 'minute', spread: true });
    expect(parseSpeed('1000/day burst')).toEqual({ calls: 1000, per: 'day' });
    for (const spec of ['1000/day spread', '100/minute']) expect(formatSpeed(parseSpeed(spec)), spec).toBe(spec);
  });
  it('spaces slots period/N apart from the first call, never earlier than now', () => {
    expect(slotIntervalMs({ calls: 100, per: 'minute' })).toBe(600);
    expect(nextSlot(undefined, 600, 1000)).toBe(1000);
    expect(nextSlot(1000, 600, 1100)).toBe(1600);
    expect(nextSlot(1000, 600, 5000)).toBe(5000);
    // Any window of one period holds at most N slots.
    let last: number | undefined;
    const slots: number[] = [];
    for (let i = 0; i < 500; i++) slots.push((last = nextSlot(last, slotIntervalMs({ calls: 7, per: 'minute' }), 0)));
    for (let i = 0; i + 7 < slots.length; i++) expect(slots[i + 7]! - slots[i]!).toBeGreaterThanOrEqual(60_000);
    expect(slots.filter((s) => s < 60_000 * 10).length).toBeGreaterThanOrEqual(69);
  });
});

describe('row bitmaps', () => {
  it('sets, tests and counts rows', () => {
    const b = bitmapFrom([0, 7, 8, 499]);
    expect([0, 7, 8, 499].every((r) => bitmapHas(b, r))).toBe(true);
    expect(bitmapHas(b, 1) || bitmapHas(b, 498) || bitmapHas(b, 600)).toBe(false);
    expect(bitmapCount(bitmapFrom([3], b))).toBe(5);
  });
});

describe('recipients files', () => {
  const collect = async (f: string, pageSize = 2) => {
    const pages: PageRow[][] = [];
    const result = await stageRecipients(
      f,
      async (n, rows) => {
        pages[n] = rows;
      },
      { pageSize },
    );
    return { result, rows: pages.flat() };
  };

  it('CSV: rows normalised to E.164 with zones; bad rows reported by row number and skipped; duplicates called once', async () => {
    const f = file(
      'r.csv',
      [
        'id,phone,firstName,timeZone,persona',
        'a,+385 91 555 0001,Ana,,',
        'b,not-a-phone,Bo,,',
        ',+385915550003,Cy,,',
        'd,+14155550104,Di,America/Chicago,"{""attempts"":[""busy""]}"',
        'e,+385915550001,Ed,,',
        'a,+385915550009,Al,,',
        'f,+385915550010,Fi,Mars/Base,',
        'g,+14155550111,Gu,,',
      ].join('\n'),
    );
    const { result, rows } = await collect(f);
    expect(rows.map((r) => [r.row, r.recipient.id, r.recipient.phone, r.recipient.timeZone])).toEqual([
      [2, 'a', '+385915550001', 'Europe/Zagreb'],
      [5, 'd', '+14155550104', 'America/Chicago'],
      [9, 'g', '+14155550111', undefined],
    ]);
    expect(rows[1]?.hints).toEqual({ persona: { attempts: ['busy'] } });
    expect(rows[0]?.recipient.firstName).toBe('Ana');
    expect(result.rejected.map((p) => [p.row, p.code])).toEqual([
      [3, 'row.invalidPhone'],
      [4, 'row.missingColumn'],
      [6, 'row.duplicate'],
      [7, 'row.duplicate'],
      [8, 'row.invalidTimeZone'],
    ]);
    expect(result).toMatchObject({ accepted: 3, pages: 2, duplicates: 2, format: 'csv' });
  });

  it('NDJSON: malformed lines are row errors, never a crash', async () => {
    const f = file(
      'r.ndjson',
      [
        '{"id":"a","phone":"+385915550001"}',
        'not json',
        '[1,2]',
        '',
        '{"id":2,"phone":"+385915550002","persona":{"keys":["1"]}}',
      ].join('\n'),
    );
    const { result, rows } = await collect(f, 500);
    expect(rows.map((r) => r.recipient.id)).toEqual(['a', '2']);
    expect(rows[1]?.hints).toEqual({ persona: { keys: ['1'] } });
    expect(result.rejected.map((p) => [p.row, p.code])).toEqual([
      [2, 'row.malformed'],
      [3, 'row.malformed'],
    ]);
  });

  it('a CSV with a broken quote is reported, not thrown', async () => {
    const f = file('broken.csv', 'id,phone\na,+385915550001\nb,"+3859155\n');
    const { result, rows } = await collect(f);
    expect(rows.map((r) => r.recipient.id)).toEqual(['a']);
    expect(result.rejected.map((p) => [p.row, p.code])).toEqual([[3, 'row.malformed']]);
    expect(result).toMatchObject({ rows: 2, accepted: 1, invalid: 1 });
  });
});

const windowed = parseFlow({
  id: 'w',
  version: 1,
  start: 'call',
  elements: [
    {
      id: 'call',
      type: 'startOutgoingCall',
      from: '+14155550100',
      deliveryWindow: { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], from: '09:00', to: '17:00', timeZone: 'recipient' },
      retry: { minMinutes: 30, maxMinutes: 60, count: 2 },
      next: {},
    },
  ],
});

describe('forecast', () => {
  const zagreb = (iso: string) => DateTime.fromISO(iso, { zone: 'Europe/Zagreb' }).toMillis();

  it('follows the window: Friday 16:00 at 100/hour → 100 on Friday, the rest from Monday 09:00, 100 an hour', () => {
    const f = forecastCampaign(
      windowed,
      Array.from({ length: 300 }, () => 'Europe/Zagreb'),
      {
        speed: { calls: 100, per: 'hour' },
        maxConcurrent: 1000,
        start: zagreb('2026-11-27T16:00'),
        avgCallSeconds: 60,
      },
    );
    expect(f.firstDialAt).toBe(new Date(zagreb('2026-11-27T16:00')).toISOString());
    expect(f.perDay).toEqual([
      { date: '2026-11-27', dials: 100 },
      { date: '2026-11-30', dials: 200 },
    ]);
    // Bursts at the start of each hour from the first call (30 s in): Monday 09:00:30 and 10:00:30.
    expect(f.lastFirstDialAt).toBe(new Date(zagreb('2026-11-30T10:00:30')).toISOString());
  });

  it('bursts go as concurrency lets them: waves of maxConcurrent, one average call apart', () => {
    const f = forecastCampaign(
      windowed,
      Array.from({ length: 250 }, () => 'Europe/Zagreb'),
      {
        speed: { calls: 200, per: 'hour' },
        maxConcurrent: 50,
        start: zagreb('2026-11-24T10:00'),
        avgCallSeconds: 60,
      },
    );
    expect(f.perDay).toEqual([{ date: '2026-11-24', dials: 250 }]);
    // Four waves of 50 (10:00 … 10:03), the hour's 200 used; then the next hour, 30 s in.
    expect(f.lastFirstDialAt).toBe(new Date(zagreb('2026-11-24T11:00:30')).toISOString());
  });

  it('spread: slots period/N apart, Friday 16:00 at 100/hour → the rest from Monday 09:00 to 10:59:24', () => {
    const f = forecastCampaign(
      windowed,
      Array.from({ length: 300 }, () => 'Europe/Zagreb'),
      {
        speed: { calls: 100, per: 'hour', spread: true },
        maxConcurrent: 1000,
        start: zagreb('2026-11-27T16:00'),
        avgCallSeconds: 60,
      },
    );
    expect(f.firstDialAt).toBe(new Date(zagreb('2026-11-27T16:00')).toISOString());
    expect(f.perDay).toEqual([
      { date: '2026-11-27', dials: 100 },
      { date: '2026-11-30', dials: 200 },
    ]);
    expect(f.lastFirstDialAt).toBe(new Date(zagreb('2026-11-30T10:59:24')).toISOString());
    expect(Date.parse(f.finishWorstCaseAt ?? '')).toBeGreaterThanOrEqual(zagreb('2026-11-30T12:59:24'));
  });

  it('counts recipients without a zone as not callable, and concurrency can bind', () => {
    const f = forecastCampaign(windowed, ['', 'Europe/Zagreb', ''], {
      speed: { calls: 1000, per: 'minute' },
      maxConcurrent: 1,
      start: zagreb('2026-11-24T10:00'),
      avgCallSeconds: 120,
    });
    expect(f.notCallable).toBe(2);
    expect(f.effectiveCallsPerHour).toBe(30);
  });

  it('agrees with the dispatcher’s window check', () => {
    const t = zagreb('2026-11-28T10:00');
    expect(dialableFrom(windowed, { timeZone: 'Europe/Zagreb' }, t)).toBe(zagreb('2026-11-30T09:00'));
    expect(dialableFrom(windowed, {}, t)).toBeUndefined();
  });
});

describe('report CSV (csv-stringify)', () => {
  it('quotes what needs quoting and neutralises formula cells, full-width forms too', () => {
    const csv = reportCsv([
      {
        campaignId: 'c',
        recipientId: '－1',
        row: 2,
        outcome: 'answered',
        dials: 1,
        durationMs: 1_000,
        slotAt: 0,
        endedAt: 0,
        responses: [{ element: 'ask', branch: '1', input: '1' }],
        dataPayload: { note: '＝HYPERLINK("x")', city: 'Split, HR' },
        recordings: [{ recordingId: 'call:c:r1~1:call', name: 'call' }],
      },
    ]);
    expect(csv.split('\n')).toEqual([
      'row,recipientId,outcome,attempts,durationSeconds,responses,dataPayload.city,dataPayload.note,recordings,error',
      `2,'－1,answered,1,1.0,ask:1(1),"Split, HR","'＝HYPERLINK(""x"")",call:c:r1~1:call,`,
      '',
    ]);
  });
});
