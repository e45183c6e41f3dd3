// Masked input on the real stack (Temporal dev server, nats-server, worker, bridge and simulator
// processes): a PIN typed at a masked collect and carried on by the flow (read back in a prompt, sent
// by SMS, put in HTTP requests) appears in none of what dialflow shows or keeps: `dialflow call` in
// text and JSON, a campaign's report and records, the services' logs (at debug level) and /metrics,
// Temporal's history as stored, and NATS's files on disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from '../../src/dev/stack.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { connectNats } from '../../src/telephony/nats.js';
import { NatsCampaignStore, readAllRecords } from '../../src/store/campaigns.js';

// Eight digits: raw histories, base64 ciphertext and NATS's files are searched for it, and four
// digits turn up in megabytes of those by chance (a run once found '8417' in a raw history).
const PIN = '84179326';
// Masked input is shown as four x's whatever its length (the length is not told either).
const MASK = 'xxxx';
const persona = { attempts: ['answered'], keys: [PIN], pressDuringPrompt: true };

let t: EphemeralStack;
let server: Server;
const requests: string[] = [];
let flowFile: string;

beforeAll(async () => {
  // The service the flow reports to: it gets the PIN (that is what the flow asks for) and answers 404.
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"unknown"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  t = await startEphemeralStack({
    metrics: true,
    env: { DIALFLOW_HTTP_ALLOW: '127.0.0.1', DIALFLOW_LOG_LEVEL: 'debug' },
  });
  flowFile = join(t.dataDir, 'pin-flow.json');
  writeFileSync(
    flowFile,
    JSON.stringify({
      id: 'pin-it',
      version: 1,
      start: 'call',
      variables: { pin: { type: 'string' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'intro' } },
        {
          id: 'intro',
          type: 'play',
          tts: { text: 'Please enter your PIN.' },
          interruptible: true,
          next: { played: 'ask' },
        },
        { id: 'ask', type: 'collect', maxDigits: 8, reporting: 'masked', saveTo: 'pin', next: { noMatch: 'echo' } },
        { id: 'echo', type: 'play', tts: { text: 'You entered {{vars.pin}}.' }, next: { played: 'sms' } },
        { id: 'sms', type: 'sendSms', text: 'Your PIN is {{vars.pin}}', next: 'verify' },
        {
          id: 'verify',
          type: 'httpRequest',
          url: `http://127.0.0.1:${port}/verify/{{vars.pin}}?pin={{vars.pin}}`,
          retries: 0,
          next: 'blocked',
          onError: 'blocked',
        },
        // Refused by the address policy: the activity fails for good, and Temporal keeps the
        // failure's message in clear in the history.
        {
          id: 'blocked',
          type: 'httpRequest',
          url: 'http://10.0.0.1/check?pin={{vars.pin}}',
          retries: 0,
          next: 'end',
          onError: 'end',
        },
        { id: 'end', type: 'hangUp' },
      ],
    }),
  );
}, 120_000);

afterAll(async () => {
  await t?.stop();
  server?.close();
});

/** The CLI as a child process; asynchronous, so this process's HTTP server answers the flow meanwhile. */
const cli = (...args: string[]) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, ...t.env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)],
  );

async function rawHistory(workflowId: string): Promise<string> {
  const raw = await t.connection.workflowService.getWorkflowExecutionHistory({
    namespace: t.config.temporal.namespace,
    execution: { workflowId },
  });
  return JSON.stringify(raw.history);
}

describe('a masked PIN on the real stack', () => {
  it('dialflow call, text and JSON: the transcript is complete and the PIN is in neither, nor in history', async () => {
    const recipient = JSON.stringify({ persona });
    const text = await cli('call', flowFile, '--to', '+385915557001', '--recipient', recipient, '--id', 'pin-text');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout + text.stderr).not.toContain(PIN);
    expect(text.stdout).toContain(`← SAY_FINISHED "${MASK}"`);
    expect(text.stdout).toContain(`→ say "You entered ${MASK}."`);
    expect(text.stdout).toContain(`"text":"Your PIN is ${MASK}"`);
    expect(text.stdout).toMatch(/warning: +\[verify\] HTTP 404 from GET 127\.0\.0\.1:\d+/);
    expect(text.stdout).toMatch(/warning: +\[blocked\] GET 10\.0\.0\.1: 10\.0\.0\.1 is a private address/);

    const json = await cli(
      'call',
      flowFile,
      '--to',
      '+385915557002',
      '--recipient',
      recipient,
      '--id',
      'pin-json',
      '--json',
    );
    expect(json.status, json.stderr).toBe(0);
    expect(json.stdout + json.stderr).not.toContain(PIN);
    const report = JSON.parse(json.stdout) as { outcome: string; variables: Record<string, unknown> };
    expect(report).toMatchObject({ outcome: 'answered', variables: { pin: MASK } });

    // Where the flow sends the PIN, it arrives (twice: once per call).
    expect(requests).toEqual([`/verify/${PIN}?pin=${PIN}`, `/verify/${PIN}?pin=${PIN}`]);
    // Payloads are encrypted; failure messages (which Temporal keeps in clear) name no URL path or query.
    for (const id of ['call:cli:pin-text', 'call:cli:pin-json']) {
      const history = await rawHistory(id);
      expect(history).toContain('10.0.0.1 is a private address');
      expect(history).not.toContain(PIN);
    }
    // Events and the simulator's outbox are sealed; nothing else on disk holds the PIN.
    expect(filesUnder(join(t.dataDir, 'nats')).filter((f) => readFileSync(f).includes(PIN))).toEqual([]);
  }, 180_000);

  it('a campaign: its status, report (CSV and JSON) and call records do not hold the PIN', async () => {
    const recipients = join(t.dataDir, 'pin-recipients.csv');
    const cell = `"${JSON.stringify(persona).replace(/"/g, '""')}"`;
    writeFileSync(recipients, `id,phone,persona\nr1,+385915557101,${cell}\nr2,+385915557102,${cell}\n`);
    const run = await cli(
      'campaign',
      'start',
      '--flow',
      flowFile,
      '--recipients',
      recipients,
      '--id',
      'pin-campaign',
      '--speed',
      '600/minute',
      '--follow',
      '--json',
    );
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ state: 'completed', completed: 2, byOutcome: { answered: 2 } });
    expect(run.stdout + run.stderr).not.toContain(PIN);

    const csv = await cli('campaign', 'report', 'pin-campaign', '--csv');
    expect(csv.status, csv.stderr).toBe(0);
    expect(csv.stdout).toContain(`ask:noMatch(${MASK})`);
    const json = await cli('campaign', 'report', 'pin-campaign', '--json');
    expect(json.status, json.stderr).toBe(0);
    const status = await cli('campaign', 'status', 'pin-campaign', '--json');
    expect(status.status, status.stderr).toBe(0);
    for (const out of [csv, json, status]) expect(out.stdout + out.stderr).not.toContain(PIN);

    const nc = await connectNats(t.natsUrl, 'it-pin-records');
    try {
      const records = await readAllRecords(await NatsCampaignStore.open(nc), 'pin-campaign');
      expect(records).toHaveLength(2);
      expect(JSON.stringify(records)).not.toContain(PIN);
    } finally {
      await nc.close();
    }
  }, 180_000);

  it("the services' logs (debug level) and /metrics do not hold the PIN", async () => {
    const logs = filesUnder(t.stack.logDir);
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const f of logs) expect(readFileSync(f, 'utf8'), f).not.toContain(PIN);
    for (const [role, s] of Object.entries(t.services)) {
      const metrics = await (await fetch(s.metricsUrl ?? '')).text();
      expect(metrics, role).toContain('dialflow_');
      expect(metrics, role).not.toContain(PIN);
    }
  }, 60_000);
});

describe('the do-not-call list from a file', () => {
  it('adds the numbers of the good lines, names each bad line, and exits 1', async () => {
    const file = join(t.dataDir, 'dnc.csv');
    writeFileSync(file, 'phone,name\n+385 91 555 7201,Ana\nBob,+385915557202\n"+385915557203","Doe, J"\n');
    const add = await cli('dnc', 'add', '--file', file);
    expect(add.status).toBe(1);
    expect(add.stdout).toContain('2 number(s) added to the do-not-call list');
    expect(add.stderr).toContain(`${file}:3: "Bob" is not a valid international number`);
    expect((await cli('dnc', 'check', '+385915557201')).status).toBe(0);
    expect((await cli('dnc', 'check', '+385915557203')).status).toBe(0);
    expect((await cli('dnc', 'check', '+385915557202')).status).toBe(3);
  }, 60_000);
});
