// The payload encryption codec: AES-256-GCM, Temporal's sample wire format, keys by id.
import { describe, expect, it } from 'vitest';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { EncryptionCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, keyId, parseKey, PayloadKeyError } from '../../src/codec/encryption.js';
import { startCodecServer } from '../../src/codec/server.js';

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

  it('passes plain payloads through (histories from before encryption)', async () => {
    expect(await new EncryptionCodec(key).decode([payload])).toEqual([payload]);
  });

  it('a rotated key still decrypts with the old one listed as previous; an unknown key or tampering fails', async () => {
    const [old] = await new EncryptionCodec(key).encode([payload]);
    const newKey = new Uint8Array(randomBytes(32));
    const [dec] = await new EncryptionCodec(newKey, [key]).decode([old!]);
    expect(str(dec?.data)).toContain('4321');
    await expect(new EncryptionCodec(newKey).decode([old!])).rejects.toThrow(/does not have/);
    const tampered = { ...old!, data: Uint8Array.from(old!.data!, (b, i) => (i === 20 ? b ^ 1 : b)) };
    await expect(new EncryptionCodec(key).decode([tampered])).rejects.toThrow();
  });

  it('parses 32-byte keys in base64 or hex and refuses anything else', () => {
    const b = Buffer.from(key);
    expect(parseKey(b.toString('base64'), 'x')).toEqual(key);
    expect(parseKey(b.toString('hex'), 'x')).toEqual(key);
    expect(() => parseKey('c2hvcnQ=', 'DIALFLOW_PAYLOAD_KEY')).toThrow(PayloadKeyError);
    expect(() => parseKey('c2hvcnQ=', 'DIALFLOW_PAYLOAD_KEY')).toThrow(/DIALFLOW_PAYLOAD_KEY: a payload key is 32 bytes/);
  });
});

describe('codec server (Temporal Codec Server protocol)', () => {
  it('decodes and encodes JSON payloads, answers CORS only for the UI origin, refuses other methods and paths', async () => {
    const codec = new EncryptionCodec(key);
    const server = await startCodecServer({ codec, host: '127.0.0.1', port: 0, origins: ['http://127.0.0.1:8233'] });
    try {
      const [enc] = await codec.encode([payload]);
      const asJson = { metadata: Object.fromEntries(Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(enc!.data!).toString('base64') };
      const res = await fetch(`${server.url}/default/decode`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:8233', 'x-namespace': 'default' }, body: JSON.stringify({ payloads: [asJson] }) });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
      const out = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
      expect(Buffer.from(out.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(out.payloads[0]!.data, 'base64').toString())).toEqual({ type: 'DTMF_CAPTURED', properties: { dtmf: '4321' } });
      // Encode round-trips through decode.
      const plainJson = out.payloads[0]!;
      const encoded = (await (await fetch(`${server.url}/encode`, { method: 'POST', body: JSON.stringify({ payloads: [plainJson] }) })).json()) as { payloads: Array<{ metadata: Record<string, string> }> };
      expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
      const preflight = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      expect((await fetch(`${server.url}/decode`)).status).toBe(405);
      expect((await fetch(`${server.url}/keys`, { method: 'POST' })).status).toBe(404);
      expect((await fetch(`${server.url}/decode`, { method: 'POST', body: 'nope' })).status).toBe(400);
    } finally {
      await server.close();
    }
  });
});
