// Audio files for Play's `audio.file` on a real nats-server: published with the flow, refused when
// they are not audio, read back by providers by name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN, Stack, freePort, type StartedNats } from '../../src/dev/stack.js';
import { connectNats } from '../../src/telephony/nats.js';
import { AudioAssetError, AudioAssetStore } from '../../src/store/assets.js';
import { synthesizeWav } from '../../src/store/recordings.js';
import type { NatsConnection } from '@nats-io/transport-node';

let stack: Stack;
let url: string;
let nc: NatsConnection;
let nats: StartedNats;
const dir = mkdtempSync(join(tmpdir(), 'dialflow-assets-'));

beforeAll(async () => {
  stack = new Stack(join(dir, 'stack'));
  nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  url = nats.url;
  nc = await connectNats(url, 'assets-test');
});
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
});

describe('audio assets', () => {
  it('flows publish uploads the files a flow plays, under the name the flow uses', async () => {
    const wav = synthesizeWav(1500);
    writeFileSync(join(dir, 'welcome.wav'), wav);
    const flow = {
      id: 'welcome',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'hello' } },
        { id: 'hello', type: 'play', audio: { file: 'welcome.wav' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    };
    writeFileSync(join(dir, 'welcome.json'), JSON.stringify(flow));
    const r = spawnSync(process.execPath, [CLI_BIN, 'flows', 'publish', join(dir, 'welcome.json'), '--nats', url], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...nats.env('cli') },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('uploaded welcome.wav');
    const stored = await (await AudioAssetStore.open(nc)).get('welcome.wav');
    expect(stored && Buffer.from(stored).equals(Buffer.from(wav))).toBe(true);
  });
  it('refuses what is not audio by its content, and more than 4 MB', async () => {
    const store = await AudioAssetStore.open(nc);
    await expect(store.put('fake.wav', new TextEncoder().encode('just text, named .wav'))).rejects.toThrow(
      AudioAssetError,
    );
    const big = new Uint8Array(4 * 2 ** 20 + 1);
    big.set(synthesizeWav(10).subarray(0, 44));
    await expect(store.put('big.wav', big)).rejects.toThrow(/at most 4 MB/);
    expect(await store.get('fake.wav')).toBeUndefined();
  });
});
