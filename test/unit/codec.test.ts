// The payload encryption codec: AES-256-GCM, Temporal's sample wire format, keys by id.
import { describe, expect, it } from 'vitest';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValueError } from '@temporalio/common';
import {
  decodeHistory,
  decodeReadable,
  EncryptionCodec,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA,
  keyId,
  parseKey,
  PayloadKeyError,
  PlainPayloadError,
} from '../../src/codec/encryption.js';
import { allowedHosts } from '../../src/codec/server.js';
import {
  CodecTokenError,
  codecToken,
  generateCodecToken,
  parseCodecToken,
  resolveCodecToken,
  tokenMatches,
} from '../../src/codec/token.js';
import { checkWorkerKeys, identityKeyIds, PayloadKeyMismatchError, workerIdentity } from '../../src/codec/key-check.js';

const key = new Uint8Array(randomBytes(32));
const payload = defaultPayloadConverter.toPayload({ type: 'DTMF_CAPTURED', properties: { dtmf: '4321' } });
const str = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

describe('EncryptionCodec', () => {
  it('encrypts: no plain text left, encoding and key id in metadata; decode restores the payload', async () => {
    const codec = new EncryptionCodec(key);
    const [enc] = await codec.encode([payload]);
    expect(str(enc?.data)).not.toContain('4321');
    expect(str(enc?.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(str(enc?.metadata?.[KEY_ID_METADATA])).toBe(keyId(key));
    const [dec] = await codec.decode([enc!]);
    expect(defaultPayloadConverter.fromPayload(dec!)).toEqual({ type: 'DTMF_CAPTURED', properties: { dtmf: '4321' } });
  });

  it('uses the sample wire format: nonce(12) ‖ ciphertext ‖ tag(16) of the serialized Payload', async () => {
    const [enc] = await new EncryptionCodec(key).encode([payload]);
    const data = enc!.data!;
    const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
    d.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([d.update(data.subarray(12, data.length - 16)), d.final()]);
    expect(str(temporal.api.common.v1.Payload.decode(plain).data)).toContain('4321');
  });

  it('refuses plain payloads (written without the key) with a named error that says why', async () => {
    const codec = new EncryptionCodec(key);
    await expect(codec.decode([payload])).rejects.toThrow(PlainPayloadError);
    // A ValueError: the worker fails the workflow task with this message and never runs the workflow.
    await expect(codec.decode([payload])).rejects.toThrow(ValueError);
    await expect(codec.decode([payload])).rejects.toThrow(
      new RegExp(`unencrypted payload \\(encoding "json/plain"\\).*${keyId(key)}`),
    );
    // One plain payload among encrypted ones fails the whole list.
    const [enc] = await codec.encode([payload]);
    await expect(codec.decode([enc!, payload])).rejects.toThrow(PlainPayloadError);
  });

  it('for reading (reports, the codec server), plain payloads are kept as they are and encrypted ones decoded', async () => {
    const codec = new EncryptionCodec(key);
    const [enc] = await codec.encode([payload]);
    const [a, b] = await decodeReadable([payload, enc!], codec);
    expect(a).toBe(payload);
    expect(defaultPayloadConverter.fromPayload(b!)).toEqual({ type: 'DTMF_CAPTURED', properties: { dtmf: '4321' } });
    const history = { events: [{ input: { payloads: [payload] } }, { result: { payloads: [enc!] } }] };
    const decoded = await decodeHistory(history, codec);
    expect(str(decoded.events[0]!.input!.payloads[0]!.data)).toContain('4321');
    expect(str(decoded.events[1]!.result!.payloads[0]!.data)).toContain('4321');
  });

  it('a rotated key still decrypts with the old one listed as previous; an unknown key or tampering fails', async () => {
    const [old] = await new EncryptionCodec(key).encode([payload]);
    const newKey = new Uint8Array(randomBytes(32));
    const [dec] = await new EncryptionCodec(newKey, [key]).decode([old!]);
    expect(str(dec?.data)).toContain('4321');
    await expect(new EncryptionCodec(newKey).decode([old!])).rejects.toThrow(/does not have/);
    const tampered = { ...old!, data: Uint8Array.from(old!.data!, (b, i) => (i === 20 ? b ^ 1 : b)) };
    await expect(new EncryptionCodec(key).decode([tampered])).rejects.toThrow(/fails authentication/);
  });

  it('parses 32-byte keys in base64 or hex and refuses anything else', () => {
    const b = Buffer.from(key);
    expect(parseKey(b.toString('base64'), 'x')).toEqual(key);
    expect(parseKey(b.toString('hex'), 'x')).toEqual(key);
    expect(() => parseKey('c2hvcnQ=', 'DIALFLOW_PAYLOAD_KEY')).toThrow(PayloadKeyError);
    expect(() => parseKey('c2hvcnQ=', 'DIALFLOW_PAYLOAD_KEY')).toThrow(
      /DIALFLOW_PAYLOAD_KEY: a payload key is 32 bytes/,
    );
  });
});

describe('codec server token', () => {
  it('is generated URL-safe, kept in a 0600 file under the data dir, and the same on the next start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codec-token-'));
    try {
      const t = codecToken(dir);
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(statSync(join(dir, 'codec.token')).mode & 0o777).toBe(0o600);
      expect(codecToken(dir)).toBe(t);
      expect(resolveCodecToken({ file: join(dir, 'codec.token'), env: {} })).toEqual({
        token: t,
        source: join(dir, 'codec.token'),
      });
      const fromEnv = generateCodecToken();
      expect(resolveCodecToken({ file: join(dir, 'codec.token'), env: { DIALFLOW_CODEC_TOKEN: fromEnv } })).toEqual({
        token: fromEnv,
        source: 'DIALFLOW_CODEC_TOKEN',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses short or URL-unsafe tokens, naming where they came from', () => {
    expect(() => parseCodecToken('short', 'DIALFLOW_CODEC_TOKEN')).toThrow(CodecTokenError);
    expect(() => parseCodecToken('a/b'.repeat(10), 'x')).toThrow(/24 to 256 characters/);
    expect(() => resolveCodecToken({ file: '/nonexistent', env: { DIALFLOW_CODEC_TOKEN: 'short' } })).toThrow(
      /DIALFLOW_CODEC_TOKEN/,
    );
  });

  it('compares in constant time, whatever the lengths', () => {
    const t = generateCodecToken();
    expect(tokenMatches(t, t)).toBe(true);
    expect(tokenMatches(`${t}x`, t)).toBe(false);
    expect(tokenMatches('', t)).toBe(false);
    expect(tokenMatches(t.slice(0, -1), t)).toBe(false);
  });

  it('allows the listen address, loopback aliases when bound to loopback, and configured names', () => {
    expect([...allowedHosts('127.0.0.1', 8234)].sort()).toEqual(['127.0.0.1:8234', '[::1]:8234', 'localhost:8234']);
    const behindProxy = allowedHosts('10.0.0.5', 8888, ['codec.example.com', 'other.example:443']);
    expect(behindProxy.has('10.0.0.5:8888')).toBe(true);
    expect(behindProxy.has('codec.example.com')).toBe(true);
    expect(behindProxy.has('codec.example.com:8888')).toBe(true);
    expect(behindProxy.has('other.example:443')).toBe(true);
    expect(behindProxy.has('localhost:8888')).toBe(false);
    // A wildcard bind has no name of its own.
    expect(allowedHosts('0.0.0.0', 8888).has('0.0.0.0:8888')).toBe(false);
  });
});

describe('workers advertise their key ids; clients compare before starting anything', () => {
  const current = new EncryptionCodec(key);
  const other = new EncryptionCodec(new Uint8Array(randomBytes(32)));
  const rotated = new EncryptionCodec(new Uint8Array(randomBytes(32)), [key]);

  it('a worker identity carries the ids of every key it decrypts, current first', () => {
    const id = workerIdentity(rotated, '42@host');
    expect(id).toBe(`42@host dialflow keys=${rotated.keyIds.join(',')}`);
    expect(identityKeyIds(id)).toEqual([rotated.keyId, keyId(key)]);
    expect(identityKeyIds('42@host')).toBeUndefined();
    expect(identityKeyIds('42@host dialflow keys=garbage')).toBeUndefined();
  });

  it('passes when every advertising worker holds the client key (also as a previous key), fails naming both ids otherwise', () => {
    const w = (c: EncryptionCodec) => ({ identity: workerIdentity(c, 'w'), keyIds: c.keyIds });
    expect(() => checkWorkerKeys(current.keyId, [w(current)], 'q')).not.toThrow();
    expect(() => checkWorkerKeys(current.keyId, [w(rotated)], 'q')).not.toThrow();
    expect(() => checkWorkerKeys(current.keyId, [], 'q')).not.toThrow();
    expect(() => checkWorkerKeys(other.keyId, [w(current)], 'q')).toThrow(PayloadKeyMismatchError);
    expect(() => checkWorkerKeys(other.keyId, [w(current)], 'calls')).toThrow(
      new RegExp(`${other.keyId}.*task queue calls.*they use ${current.keyId}`),
    );
    // One worker without the key is enough: a task may go to it.
    expect(() => checkWorkerKeys(current.keyId, [w(current), w(other)], 'q')).toThrow(
      new RegExp(`they use ${other.keyId}\\)`),
    );
  });
});
