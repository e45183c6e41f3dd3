// Payload encryption: every payload a dialflow client or worker hands to Temporal (workflow input
// with the recipient, signals with DTMF digits, activity inputs and results, query answers) is
// AES-256-GCM encrypted, so masked and hidden responses are never in plain text in history.
// Wire format as in Temporal's encryption samples (interoperable with their codec servers):
// metadata.encoding = "binary/encrypted", metadata["encryption-key-id"] = key id,
// data = 12-byte nonce ‖ ciphertext of the serialized Payload ‖ 16-byte tag.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { METADATA_ENCODING_KEY, ValueError, type Payload, type PayloadCodec } from '@temporalio/common';
// CommonJS package: its named exports are not visible to Node's ESM loader.
import protos from '@temporalio/proto';

const { temporal } = protos;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class PayloadKeyError extends Error {
  override readonly name = 'PayloadKeyError';
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

/** A key's id: derived from the key itself, so no registry of ids is needed and rotation is safe. */
export function keyId(key: Uint8Array): string {
  return `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** Parse a key: 32 bytes as base64 or hex (what `openssl rand -base64 32` or `-hex 32` prints). */
export function parseKey(spec: string, where: string): Uint8Array {
  const s = spec.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (bytes.length !== 32) throw new PayloadKeyError(`${where}: a payload key is 32 bytes, base64 or hex (e.g. \`openssl rand -base64 32\`); got ${bytes.length} bytes`);
  return new Uint8Array(bytes);
}

export function readKeyFile(file: string): Uint8Array {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PayloadKeyError(`cannot read the payload key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseKey(content, file);
}

export function generateKey(): string {
  return randomBytes(32).toString('base64');
}

export class EncryptionCodec implements PayloadCodec {
  private readonly keys = new Map<string, Uint8Array>();
  private readonly currentId: string;

  /** `key` encrypts; `previous` keys still decrypt what was written before a rotation. */
  constructor(key: Uint8Array, previous: Uint8Array[] = []) {
    this.currentId = keyId(key);
    this.keys.set(this.currentId, key);
    for (const k of previous) this.keys.set(keyId(k), k);
  }

  get keyId(): string {
    return this.currentId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentId) as Uint8Array;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.currentId) }, data: new Uint8Array(data) };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Plain payloads (histories from before encryption) pass through.
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]) ?? '';
      const key = this.keys.get(id);
      if (!key) throw new ValueError(`payload encrypted with key ${id}, which this process does not have (set DIALFLOW_PAYLOAD_KEY, or list it in DIALFLOW_PAYLOAD_PREVIOUS_KEYS)`);
      const data = payload.data ?? new Uint8Array();
      if (data.length < NONCE_BYTES + TAG_BYTES) throw new ValueError('encrypted payload too short');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * Decode every payload in a fetched history in place (histories come back from the server as
 * stored, i.e. encrypted). Payload lists sit at varying depths (`input`, `result`, `details`, …).
 */
export async function decodeHistory<T>(history: T, codec: PayloadCodec): Promise<T> {
  const visit = async (node: unknown): Promise<void> => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) {
      for (const n of node) await visit(n);
      return;
    }
    const obj = node as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'payloads' && Array.isArray(v) && v.every((p) => p && typeof p === 'object' && 'metadata' in p)) obj[k] = await codec.decode(v as Payload[]);
      else await visit(v);
    }
  };
  await visit(history);
  return history;
}
