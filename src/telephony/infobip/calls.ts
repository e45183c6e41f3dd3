// What the Infobip adapter remembers about calls, in a NATS KV bucket shared by every provider and
// webhook instance: our call id ↔ Infobip's call id, the claim that makes a dial or an action happen
// once per command id (create-if-absent before the API request), forward dialogs, pending
// voicemail recordings and where a recorded voicemail lives at Infobip (to play it back). A
// command's record also keeps what its webhooks need later: the events it asked to hold, and a
// prompt's follow-up, which the webhook ingress runs when the prompt ends (Infobip has no "then").
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { storageReplicas } from '../../store/replicas.js';
import { isWrongLastSequence } from '../../store/nats-errors.js';
import type { PromptFollowUp, TelephonyEventType } from '../contract.js';

export const INFOBIP_CALLS_BUCKET = 'dialflow_infobip_calls';
/** Long enough for the longest call (validity period 48 h + call time) and its late events. */
const TTL_MS = 4 * 24 * 3600_000;

export type Claim<T> = { claimed: true; revision: number } | { claimed: false; existing: T };

/**
 * What a command's webhooks need to know about it, kept with its claim from before its request
 * leaves until the record expires: a webhook may come before the request's answer, and may be
 * handled by another process (or a restarted one).
 */
export interface CommandMemo {
  /** The command's `holdEvents`: its webhooks of these types are marked `hold: true`. */
  holdEvents?: TelephonyEventType[];
  /** A prompt's follow-up, run by the webhook ingress when the prompt's *_FINISHED arrives. */
  then?: PromptFollowUp;
  /** A prompt's `interruptible`: keys reported at the end of a prompt that was not are dropped. */
  interruptible?: boolean;
}
export interface DialRecord extends Pick<CommandMemo, 'holdEvents'> {
  state: 'creating' | 'created' | 'failed';
  commandId: string;
  infobipId?: string;
  error?: string;
  at: string;
}
export interface CommandRecord extends CommandMemo {
  state: 'sending' | 'sent' | 'failed';
  error?: string;
}
export interface InfobipIdRecord {
  /** Our call id (the leg id for a forward's second leg). */
  callId: string;
  /** The command that created it (dial or forward). */
  commandId?: string;
}
export interface PendingRecording {
  commandId: string;
  name: string;
}
/**
 * The last prompt or capture sent on a call. Infobip's ERROR event names only the call and the
 * action type (model CallsErrorProperties has no customData), so this is how it finds the command.
 */
export interface MediaAction {
  action: 'say' | 'play' | 'captureDtmf';
  commandId: string;
}

// KV keys allow [-/_=.a-zA-Z0-9]; our call ids contain ':' and '~', so ids are base64url-encoded.
const enc = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

export class InfobipCallMap {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<InfobipCallMap> {
    return InfobipCallMap.fromKv(
      await new Kvm(nc).create(INFOBIP_CALLS_BUCKET, { history: 1, replicas: storageReplicas(), ttl: TTL_MS }),
    );
  }

  /** Over an opened bucket (tests give a KV whose answers get lost). */
  static fromKv(kv: KV): InfobipCallMap {
    return new InfobipCallMap(kv);
  }

  private async getJson<T>(key: string): Promise<T | undefined> {
    const e = await this.kv.get(key);
    return e && e.operation === 'PUT' ? (e.json<T>() as T) : undefined;
  }

  /**
   * Create-if-absent: exactly one of several concurrent claimants gets `claimed: true`. Each attempt
   * writes a fresh token, so when `create` fails (the key exists — or the server's answer was lost
   * after it stored ours, e.g. a timeout) the record tells whose claim it is. Without it, a lost
   * answer would read our own claim as someone else's, and the dial would never be placed.
   */
  private async claim<T extends object>(key: string, value: T): Promise<Claim<T>> {
    const claimToken = randomUUID();
    try {
      return { claimed: true, revision: await this.kv.create(key, JSON.stringify({ ...value, claimToken })) };
    } catch (err) {
      // The key exists, or the answer was lost (the server may have stored ours): the record decides.
      if (!isWrongLastSequence(err) && !(err instanceof errors.TimeoutError)) throw err;
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT') throw err;
      const existing = e.json<T & { claimToken?: string }>();
      if (existing.claimToken === claimToken) return { claimed: true, revision: e.revision };
      return { claimed: false, existing };
    }
  }

  claimDial(callId: string, commandId: string, memo: Pick<CommandMemo, 'holdEvents'> = {}): Promise<Claim<DialRecord>> {
    return this.claim<DialRecord>(`o.${enc(callId)}`, {
      state: 'creating',
      commandId,
      at: new Date().toISOString(),
      ...memo,
    });
  }
  async setDial(callId: string, rec: DialRecord): Promise<void> {
    await this.kv.put(`o.${enc(callId)}`, JSON.stringify(rec));
  }
  dial(callId: string): Promise<DialRecord | undefined> {
    return this.getJson<DialRecord>(`o.${enc(callId)}`);
  }

  /** `memo` is written with the claim, so it is there before the request leaves (see CommandMemo). */
  claimCommand(commandId: string, memo: CommandMemo = {}): Promise<Claim<CommandRecord>> {
    return this.claim<CommandRecord>(`c.${enc(commandId)}`, { state: 'sending', ...memo });
  }
  /** Replaces the record: pass the command's memo again to keep it. */
  async setCommand(commandId: string, rec: CommandRecord): Promise<void> {
    await this.kv.put(`c.${enc(commandId)}`, JSON.stringify(rec));
  }
  command(commandId: string): Promise<CommandRecord | undefined> {
    return this.getJson<CommandRecord>(`c.${enc(commandId)}`);
  }
  /** Forget a claim so a redelivery may try again (the request provably did not happen). */
  async releaseCommand(commandId: string): Promise<void> {
    await this.kv.delete(`c.${enc(commandId)}`);
  }

  /** Our call id → Infobip's, and back. */
  async link(callId: string, infobipId: string, commandId?: string): Promise<void> {
    await this.kv.put(
      `i.${enc(infobipId)}`,
      JSON.stringify({ callId, ...(commandId ? { commandId } : {}) } satisfies InfobipIdRecord),
    );
    await this.kv.put(`b.${enc(callId)}`, infobipId);
  }
  byInfobipId(infobipId: string): Promise<InfobipIdRecord | undefined> {
    return this.getJson<InfobipIdRecord>(`i.${enc(infobipId)}`);
  }
  async infobipIdOf(callId: string): Promise<string | undefined> {
    const e = await this.kv.get(`b.${enc(callId)}`);
    return e && e.operation === 'PUT' ? e.string() : undefined;
  }

  async linkDialog(dialogId: string, legCallId: string, commandId: string): Promise<void> {
    await this.kv.put(`d.${enc(dialogId)}`, JSON.stringify({ callId: legCallId, commandId } satisfies InfobipIdRecord));
  }
  byDialogId(dialogId: string): Promise<InfobipIdRecord | undefined> {
    return this.getJson<InfobipIdRecord>(`d.${enc(dialogId)}`);
  }

  async setPendingRecording(callId: string, rec: PendingRecording): Promise<void> {
    await this.kv.put(`r.${enc(callId)}`, JSON.stringify(rec));
  }
  pendingRecording(callId: string): Promise<PendingRecording | undefined> {
    return this.getJson<PendingRecording>(`r.${enc(callId)}`);
  }
  async clearPendingRecording(callId: string): Promise<void> {
    await this.kv.delete(`r.${enc(callId)}`);
  }

  async setLastMediaAction(callId: string, rec: MediaAction): Promise<void> {
    await this.kv.put(`a.${enc(callId)}`, JSON.stringify(rec));
  }
  lastMediaAction(callId: string): Promise<MediaAction | undefined> {
    return this.getJson<MediaAction>(`a.${enc(callId)}`);
  }

  /** A stored voicemail by its element name → the Infobip file id, so `play.audio.voicemail` works. */
  async setRecordingFile(name: string, fileId: string): Promise<void> {
    await this.kv.put(`f.${enc(name)}`, fileId);
  }
  async recordingFile(name: string): Promise<string | undefined> {
    const e = await this.kv.get(`f.${enc(name)}`);
    return e && e.operation === 'PUT' ? e.string() : undefined;
  }
}
