// Payload encryption: every payload a dialflow client or worker hands to Temporal (workflow input
// with the recipient, signals with DTMF digits, activity inputs and results, query answers) is
// AES-256-GCM encrypted, so masked and hidden responses are never in plain text in history.
// Wire format as in Temporal's encryption samples (interoperable with their codec servers):
// metadata.encoding = "binary/encrypted", metadata["encryption-key-id"] = key id,
// data = 12-byte nonce ‖ ciphertext of the serialized Payload ‖ 16-byte tag.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isErrnoException } from '../config/errors.js';
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

/**
 * A payload that is not encrypted reached a process that has the key. A ValueError, so a worker
 * fails the workflow task with this message (retried, never run) instead of running a workflow
 * that someone started with plain JSON — e.g. `temporal workflow start --input` without our
 * codec, which would bypass every check the dialflow client makes before a call.
 */
export class PlainPayloadError extends ValueError {
  override readonly name = 'PlainPayloadError';
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

/** Whether a payload is in our encrypted wire format (its metadata says so; the data is not checked). */
export function isEncrypted(payload: Payload): boolean {
  return text(payload.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING;
}

/** A key's id: derived from the key itself, so no registry of ids is needed and rotation is safe. */
export function keyId(key: Uint8Array): string {
  return `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** Parse a key: 32 bytes as base64 or hex (what `openssl rand -base64 32` or `-hex 32` prints). */
export function parseKey(spec: string, where: string): Uint8Array {
  const s = spec.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (bytes.length !== 32)
    throw new PayloadKeyError(
      `${where}: a payload key is 32 bytes, base64 or hex (e.g. \`openssl rand -base64 32\`); got ${bytes.length} bytes`,
    );
  return new Uint8Array(bytes);
}

export function readKeyFile(file: string): Uint8Array {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new PayloadKeyError(`cannot read the payload key file ${file}: ${err.message}`, { cause: err });
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

  /**
   * A secret for another purpose, derived from the current key (HMAC-SHA256 of `purpose`): never
   * the key itself, and different for every purpose.
   */
  deriveSecret(purpose: string): Uint8Array {
    const key = this.keys.get(this.currentId) as Uint8Array;
    return new Uint8Array(createHmac('sha256', key).update(purpose).digest());
  }

  /** Every key id this codec decrypts: the current key first, then the previous ones. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentId) as Uint8Array;
    return payloads.map((payload) => {
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.currentId) },
        data: new Uint8Array(data),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Temporal runs codecs on inputs, results, signals, queries, memos and failure details, but
      // not on headers or search attributes, so everything that reaches here was meant to be
      // encrypted by a dialflow client or worker. Anything else was written without the key.
      if (!isEncrypted(payload)) {
        throw new PlainPayloadError(
          `refusing an unencrypted payload (encoding ${JSON.stringify(text(payload.metadata?.[METADATA_ENCODING_KEY]) ?? '')}): this process only accepts payloads encrypted with the payload key ${this.currentId}; start workflows and send signals with the dialflow CLI or a client that has the key`,
        );
      }
      const id = text(payload.metadata?.[KEY_ID_METADATA]) ?? '';
      const key = this.keys.get(id);
      if (!key)
        throw new ValueError(
          `payload encrypted with key ${id}, which this process does not have (set DIALFLOW_PAYLOAD_KEY, or list it in DIALFLOW_PAYLOAD_PREVIOUS_KEYS)`,
        );
      const data = payload.data ?? new Uint8Array();
      if (data.length < NONCE_BYTES + TAG_BYTES) throw new ValueError('encrypted payload too short');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch (err) {
        // GCM's tag check: the data was altered or encrypted with another key under the same id.
        // Node reports it as an Error without a code; its coded errors (ERR_CRYPTO_…) are misuse.
        if (!(err instanceof Error) || 'code' in err) throw err;
        throw new ValueError(
          `payload encrypted with key ${id} fails authentication (altered, or not encrypted with this key)`,
          err,
        );
      }
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * Decode every payload in a fetched history in place (histories come back from the server as
 * stored, i.e. encrypted). Payload lists sit at varying depths (`input`, `result`, `details`, …).
 * This is for reading: plain payloads (written without the key, and refused by the workers) are
 * left as they are, so a report can still show what such a history holds.
 */
const isPayloadLike = (p: unknown): boolean => Boolean(p && typeof p === 'object' && 'metadata' in p);

export async function decodeHistory<T>(history: T, codec: PayloadCodec): Promise<T> {
  const visit = async (node: unknown): Promise<void> => {
    if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) {
      for (const n of node) await visit(n);
      return;
    }
    const obj = node as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'payloads' && Array.isArray(v) && v.every(isPayloadLike))
        obj[k] = await decodeReadable(v as Payload[], codec);
      else if (k === 'fields' && v && typeof v === 'object' && Object.values(v).every(isPayloadLike)) {
        // A memo (`{fields: {name: Payload}}`) goes through the codec too; search attributes do not
        // (they are `indexedFields`).
        const names = Object.keys(v);
        const decoded = await decodeReadable(Object.values(v) as Payload[], codec);
        obj[k] = Object.fromEntries(names.map((n, i) => [n, decoded[i]]));
      } else await visit(v);
    }
  };
  await visit(history);
  return history;
}

/** Decode the encrypted payloads of a list and keep the plain ones: for showing, never for running. */
export async function decodeReadable(payloads: Payload[], codec: PayloadCodec): Promise<Payload[]> {
  const encrypted = payloads.filter(isEncrypted);
  const decoded = encrypted.length > 0 ? await codec.decode(encrypted) : [];
  let next = 0;
  return payloads.map((p) => (isEncrypted(p) ? (decoded[next++] ?? p) : p));
}
