// Events at rest carry what callers typed (DTMF digits, including masked and hidden input) and
// what they said (recording names). JetStream keeps events for a day and dead letters for two
// weeks, so a provider seals each event's `properties` with the payload key before publishing,
// and the bridge opens them just before signalling. Routing fields (id, type, callId, timestamp)
// stay readable: the bridge dead-letters and orders events without the key.
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

export async function sealEvent(ev: TelephonyEvent, codec: EncryptionCodec | undefined = processCodec): Promise<TelephonyEvent> {
  if (!codec) return ev;
  const [sealed] = await codec.encode([{ metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode(JSON.stringify(ev.properties)) }]);
  if (!sealed) throw new SealedEventError('the codec returned no payload');
  return { ...ev, properties: { [SEALED_PROPERTY]: Buffer.from(temporal.api.common.v1.Payload.encode(sealed).finish()).toString('base64') } };
}

export function isSealed(ev: TelephonyEvent): boolean {
  return typeof ev.properties[SEALED_PROPERTY] === 'string';
}

/** The event with its properties readable; an unsealed event is returned as it is. */
export async function openEvent(ev: TelephonyEvent, codec: EncryptionCodec | undefined = processCodec): Promise<TelephonyEvent> {
  const sealed = ev.properties[SEALED_PROPERTY];
  if (typeof sealed !== 'string') return ev;
  if (!codec) throw new SealedEventError(`event ${ev.id} is sealed and this process has no payload key`);
  let properties: unknown;
  try {
    const [plain] = await codec.decode([temporal.api.common.v1.Payload.decode(Buffer.from(sealed, 'base64'))]);
    properties = JSON.parse(new TextDecoder().decode(plain?.data ?? new Uint8Array()));
  } catch (err) {
    throw new SealedEventError(`event ${ev.id} cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  if (!properties || typeof properties !== 'object' || Array.isArray(properties)) throw new SealedEventError(`event ${ev.id}: sealed properties are not an object`);
  return { ...ev, properties: properties as Record<string, unknown> };
}
