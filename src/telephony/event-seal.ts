// Events at rest carry what callers typed (DTMF digits, including masked and hidden input) and
// what they said (recording names). JetStream keeps events for a day and dead letters for two
// weeks, so a provider seals each event's `properties` with the payload key before publishing,
// and the bridge opens them just before signalling. Routing fields (id, type, callId, timestamp)
// stay readable: the bridge dead-letters and orders events without the key.
import { ValueError, type Payload } from '@temporalio/common';
import type { EncryptionCodec } from '../codec/encryption.js';
import type { TelephonyEvent } from './contract.js';
// CommonJS package: its named exports are not visible to Node's ESM loader.
import protos from '@temporalio/proto';

const { temporal } = protos;

/** The one property of a sealed event: base64 of an encrypted Temporal Payload of the JSON properties. */
export const SEALED_PROPERTY = '$sealed';

export class SealedEventError extends Error {
  override readonly name = 'SealedEventError';
}

let processCodec: EncryptionCodec | undefined;

/** Set once at process start by services that have the payload key; publishEvent then seals every event. */
export function setEventCodec(codec: EncryptionCodec | undefined): void {
  processCodec = codec;
}

/** Base64 of the encrypted Temporal Payload holding `plain`: what a sealed event or record carries. */
async function sealText(plain: string, codec: EncryptionCodec): Promise<string> {
  const [sealed] = await codec.encode([
    { metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode(plain) },
  ]);
  if (!sealed) throw new SealedEventError('the codec returned no payload');
  return Buffer.from(temporal.api.common.v1.Payload.encode(sealed).finish()).toString('base64');
}

async function openText(sealed: string, codec: EncryptionCodec, what: string): Promise<string> {
  let payload: Payload;
  try {
    payload = temporal.api.common.v1.Payload.decode(Buffer.from(sealed, 'base64'));
  } catch (err) {
    // Only protobuf's reader runs here, on bytes from outside: what it throws (RangeError, or an
    // Error about the wire format) says they are not a Payload.
    if (!(err instanceof Error)) throw err;
    throw new SealedEventError(`${what} cannot be opened: ${err.message}`, { cause: err });
  }
  let plain: Payload | undefined;
  try {
    [plain] = await codec.decode([payload]);
  } catch (err) {
    // The codec's refusal: not encrypted, a key this process lacks, altered data.
    if (!(err instanceof ValueError)) throw err;
    throw new SealedEventError(`${what} cannot be opened: ${err.message}`, { cause: err });
  }
  return new TextDecoder().decode(plain?.data ?? new Uint8Array());
}

export async function sealEvent(
  ev: TelephonyEvent,
  codec: EncryptionCodec | undefined = processCodec,
): Promise<TelephonyEvent> {
  if (!codec) return ev;
  return { ...ev, properties: { [SEALED_PROPERTY]: await sealText(JSON.stringify(ev.properties), codec) } };
}

export function isSealed(ev: TelephonyEvent): boolean {
  return typeof ev.properties[SEALED_PROPERTY] === 'string';
}

/** The event with its properties readable; an unsealed event is returned as it is. */
export async function openEvent(
  ev: TelephonyEvent,
  codec: EncryptionCodec | undefined = processCodec,
): Promise<TelephonyEvent> {
  const sealed = ev.properties[SEALED_PROPERTY];
  if (typeof sealed !== 'string') return ev;
  if (!codec) throw new SealedEventError(`event ${ev.id} is sealed and this process has no payload key`);
  const text = await openText(sealed, codec, `event ${ev.id}`);
  let properties: unknown;
  try {
    properties = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new SealedEventError(`event ${ev.id}: sealed properties are not JSON`, { cause: err });
  }
  if (!properties || typeof properties !== 'object' || Array.isArray(properties))
    throw new SealedEventError(`event ${ev.id}: sealed properties are not an object`);
  return { ...ev, properties: properties as Record<string, unknown> };
}

/**
 * Sealing for other text a provider keeps at rest (the simulator's outbox records): stored as
 * `{"$sealed": …}` where the process has the payload key, as it is otherwise.
 */
export const textSealer = {
  async seal(plain: string, codec: EncryptionCodec | undefined = processCodec): Promise<string> {
    return codec ? JSON.stringify({ [SEALED_PROPERTY]: await sealText(plain, codec) }) : plain;
  },
  async open(stored: string, codec: EncryptionCodec | undefined = processCodec): Promise<string> {
    const outer: unknown = JSON.parse(stored);
    const sealed = outer && typeof outer === 'object' ? (outer as Record<string, unknown>)[SEALED_PROPERTY] : undefined;
    if (typeof sealed !== 'string') return stored;
    if (!codec) throw new SealedEventError('a sealed record and this process has no payload key');
    return openText(sealed, codec, 'a sealed record');
  },
};
