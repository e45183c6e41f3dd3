// Campaigns end to end through the CLI: real Temporal dev server, nats-server, worker, bridge and
// simulator processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from '../../src/dev/stack.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { connectNats } from '../../src/telephony/nats.js';
import { NatsCampaignStore, readAllRecords, type CallRecord } from '../../src/store/campaigns.js';
import type { CampaignStatus } from '../../src/workflows/messages.js';

const FLOW = new URL('../../examples/appointment-reminder.json', import.meta.url).pathname;

let t: EphemeralStack;
beforeAll(async () => {
  t = await startEphemeralStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [CLI_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...t.env },
    timeout: 300_000,
    // The JSON report of 2,000 calls is over spawnSync's default 1 MB (the child is killed past it).
    maxBuffer: 64 * 2 ** 20,
  });
const cliAsync = (...args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...t.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

// persona → outcome of the appointment reminder
const mix: Array<[Record<string, unknown>, string]> = [
  [{ attempts: ['answered'], keys: ['1'] }, 'answered'],
  [{ attempts: ['answered'], keys: ['2'] }, 'answered'],
  [{ attempts: ['busy'] }, 'busy'],
  [{ attempts: ['noAnswer'] }, 'noAnswer'],
  [{ attempts: ['declined'] }, 'declined'],
  [{ attempts: ['unreachable'] }, 'unreachable'],
];
const phone = (i: number) => `+3859156${String(i).padStart(5, '0')}`;

/** `offset` keeps the numbers of different campaigns apart (the do-not-call list is shared). */
function recipientsCsv(name: string, n: number, offset = 0): string {
  const lines = ['id,phone,firstName,persona'];
  for (let i = 0; i < n; i++)
    lines.push(`r${i},${phone(offset + i)},Ana,"${JSON.stringify(mix[i % mix.length]![0]).replace(/"/g, '""')}"`);
  const f = join(t.dataDir, name);
  writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

async function records(campaignId: string): Promise<CallRecord[]> {
  const nc = await connectNats(t.natsUrl, 'it-records');
  try {
    return await readAllRecords(await NatsCampaignStore.open(nc), campaignId);
  } finally {
    await nc.close();
  }
}

describe('campaigns through the CLI', () => {
  it('2,000 recipients with mixed personas: correct counts, do-not-call (also added after launch), one dial each, a report', async () => {
    const n = 2000;
    const file = recipientsCsv('mixed.csv', n);
    expect(cli('dnc', 'add', phone(0), phone(1)).status).toBe(0);
    const run = cliAsync(
      'campaign',
      'start',
      '--flow',
      FLOW,
      '--recipients',
      file,
      '--id',
      'mixed',
      '--speed',
      '6000/minute spread',
      '--max-concurrent',
      '300',
      '--follow',
      '--json',
    );
    // Blocked after launch: the last row's slot is ~20 s away.
    await new Promise((r) => setTimeout(r, 2000));
    expect(cli('dnc', 'add', phone(n - 1)).status).toBe(0);
    const r = await run;
    expect(r.status, r.stderr).toBe(0);
    const final = JSON.parse(r.stdout) as CampaignStatus;
    const expected: Record<string, number> = { doNotCall: 3 };
    for (let i = 0; i < n; i++)
      if (![0, 1, n - 1].includes(i)) expected[mix[i % mix.length]![1]] = (expected[mix[i % mix.length]![1]] ?? 0) + 1;
    expect(final).toMatchObject({ state: 'completed', total: n, completed: n, inFlight: 0, byOutcome: expected });
    expect(final.run).toBeGreaterThanOrEqual(1);
    const recs = await records('mixed');
    expect(new Set(recs.map((x) => x.recipientId)).size).toBe(n);
    const dials = await t.simulatorDials('call:mixed:');
    expect(dials).toHaveLength(n - 3);
    expect(dials.every(([, k]) => k === 1)).toBe(true);
    // Calling speed: 100 per second, never more than 100 slots in any second.
    const slots = recs.map((x) => x.slotAt).sort((a, b) => a - b);
    for (let i = 0; i + 100 < slots.length; i++) expect(slots[i + 100]! - slots[i]!).toBeGreaterThanOrEqual(1000);

    const report = cli('campaign', 'report', 'mixed', '--json');
    expect(report.status, report.stderr).toBe(0);
    const rep = JSON.parse(report.stdout) as {
      calls: number;
      byOutcome: Record<string, number>;
      recipients: CallRecord[];
    };
    expect(rep.calls).toBe(n);
    expect(rep.byOutcome).toEqual(expected);
    expect(rep.recipients.find((x) => x.recipientId === 'r6')).toMatchObject({
      outcome: 'answered',
      dials: 1,
      responses: [
        { element: 'call', branch: 'answered' },
        { element: 'menu', branch: 'played' },
        { element: 'ask', branch: '1', input: '1' },
        { element: 'confirmed', branch: 'played' },
      ],
    });
    const csv = cli('campaign', 'report', 'mixed', '--csv');
    expect(csv.stdout.trim().split('\n')).toHaveLength(n + 1);
    const status = cli('campaign', 'status', 'mixed');
    expect(status.stdout).toMatch(/mixed: completed, 2000\/2000 done/);
  }, 300_000);

  it('kill -9 of the worker mid-campaign: no recipient lost, none dialled twice', async () => {
    const n = 600;
    const file = recipientsCsv('crash.csv', n, 10_000);
    const run = cliAsync(
      'campaign',
      'start',
      '--flow',
      FLOW,
      '--recipients',
      file,
      '--id',
      'crash',
      '--speed',
      '3000/minute spread',
      '--max-concurrent',
      '100',
      '--follow',
      '--json',
    );
    for (let i = 0; i < 100 && (await records('crash')).length < 100; i++) await new Promise((r) => setTimeout(r, 100));
    const before = (await records('crash')).length;
    expect(before).toBeGreaterThanOrEqual(100);
    expect(before).toBeLessThan(n);
    await t.stack.kill('worker', 'SIGKILL');
    await t.stack.startService('worker-after-crash', 'worker', t.env);
    const r = await run;
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'completed', completed: n, inFlight: 0 });
    const recs = await records('crash');
    expect(recs).toHaveLength(n);
    expect(new Set(recs.map((x) => x.recipientId)).size).toBe(n);
    const dials = await t.simulatorDials('call:crash:');
    expect(dials).toHaveLength(n);
    expect(dials.every(([, k]) => k === 1)).toBe(true);
    // The calling speed held across the crash: never more than 50 slots in any second.
    const slots = recs.map((x) => x.slotAt).sort((a, b) => a - b);
    for (let i = 0; i + 50 < slots.length; i++) expect(slots[i + 50]! - slots[i]!).toBeGreaterThanOrEqual(1000);
  }, 300_000);

  it('a malformed recipients file gives row-level errors and no crash; pause, resume and cancel work from the CLI', async () => {
    const bad = join(t.dataDir, 'bad.csv');
    writeFileSync(
      bad,
      [
        'id,phone,firstName',
        'a,+385915570001,Ana',
        'b,12,Bo',
        ',+385915570003,Cy',
        'd,+385915570004',
        'e,"+3859155',
        '',
      ].join('\n'),
    );
    const r = cli('campaign', 'start', '--flow', FLOW, '--recipients', bad, '--id', 'bad', '--speed', '1/hour');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/row 3: "phone" is not a valid international number/);
    expect(r.stderr).toMatch(/row 4: missing "id"/);
    expect(r.stderr).toMatch(/unreadable CSV|malformed/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(cli('campaign', 'pause', 'bad').stdout).toMatch(/bad: paused/);
    const again = cli('campaign', 'pause', 'bad');
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/campaign is paused, not running/);
    expect(cli('campaign', 'resume', 'bad').stdout).toMatch(/bad: running/);
    expect(cli('campaign', 'cancel', 'bad').stdout).toMatch(/bad: cancel/);
    const none = cli('campaign', 'start', '--flow', FLOW, '--recipients', join(t.dataDir, 'nothing.csv'));
    expect(none.status).toBe(2);
    expect(cli('campaign', 'status', 'no-such').stderr).toMatch(/no campaign "no-such"/);
  }, 120_000);

  it('compliance stores on NATS KV: the do-not-call list and the contact cap (atomic under concurrency)', async () => {
    const nc = await connectNats(t.natsUrl, 'it-compliance');
    try {
      const store = await NatsCampaignStore.open(nc);
      const p = '+385915558888';
      expect(await store.isDoNotCall(p)).toBe(false);
      await store.setDoNotCall('+385 91 555 8888', true);
      expect(await store.isDoNotCall(p)).toBe(true);
      await store.setDoNotCall(p, false);
      expect(await store.isDoNotCall(p)).toBe(false);
      // Ten concurrent claims against a cap of 3: exactly 3 succeed.
      const now = Date.now();
      const claims = await Promise.all(Array.from({ length: 10 }, () => store.claimContact(p, 3, 86_400_000, now)));
      expect(claims.filter(Boolean)).toHaveLength(3);
      // A day later the window has moved on.
      expect(await store.claimContact(p, 3, 86_400_000, now + 86_400_001)).toBe(true);
    } finally {
      await nc.close();
    }
  }, 60_000);
});
