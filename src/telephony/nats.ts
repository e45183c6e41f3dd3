// The NATS side of the telephony contract.
//  - commands: core NATS request/reply on `dialflow.telephony.{provider}.commands` (queue group),
//    so an activity knows the provider accepted the command;
//  - events: JetStream stream DIALFLOW_EVENTS on `dialflow.events.{provider}.{TYPE}`, published with
//    the event id as msg-id so the server drops duplicates inside its window;
//  - poison events go to DIALFLOW_DEADLETTER on `dialflow.deadletter.events`.
import { storageReplicas } from '../store/replicas.js';
import { isNatsFailure, isStreamNotFound } from '../store/nats-errors.js';
import {
  connect,
  nanos,
  RequestError,
  tokenAuthenticator,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import {
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamClient,
} from '@nats-io/jetstream';
import type { CommandAck, TelephonyCommand, TelephonyEvent } from './contract.js';
import { sealEvent } from './event-seal.js';
import { defaultNatsAuth, natsConnectOptions, type NatsAuth, type NatsSettings } from './nats-auth.js';
import { readConfiguredFile } from '../config/errors.js';
import {
  InvalidCommandError,
  ProviderUnavailableError,
  type SmsMessage,
  type SmsSender,
  type TelephonyProvider,
} from './provider.js';

export const EVENTS_STREAM = 'DIALFLOW_EVENTS';
export const DEADLETTER_STREAM = 'DIALFLOW_DEADLETTER';
export const DEADLETTER_SUBJECT = 'dialflow.deadletter.events';
export const BRIDGE_CONSUMER = 'dialflow-bridge';
// The simulator keeps its short subject token `sim` (deployed streams, dashboards and tests use it).
const subjectToken = (provider: string) => (provider === 'simulator' ? 'sim' : provider);
export const commandSubject = (provider: string) => `dialflow.telephony.${subjectToken(provider)}.commands`;
export const smsSubject = (provider: string) => `dialflow.telephony.${subjectToken(provider)}.sms`;
export const eventSubject = (provider: string, type: string) => `dialflow.events.${subjectToken(provider)}.${type}`;

/** Connection settings with everything `config.nats` may say: a token is the one identity NatsAuth has no field for. */
export interface NatsConnectSettings extends NatsSettings {
  token?: string;
}

/** The credentials a connection uses: those given (a token, or `auth` as it is), else found as defaultNatsAuth says. */
function connectionAuth(servers: string[], settings: NatsConnectSettings | undefined): NatsAuth | undefined {
  if (settings?.token) return settings.auth;
  return settings?.auth ?? defaultNatsAuth(servers);
}

/**
 * Every file the credentials name must be readable, checked before dialling: nats.js would report a
 * TLS file only once connected, without saying which setting named it.
 */
function checkCredentialFiles(auth: NatsAuth | undefined): void {
  const files: Array<[string | undefined, string, string]> = [
    [auth?.credsFile, 'NATS creds file', 'DIALFLOW_NATS_CREDS or --nats-creds'],
    [auth?.nkeySeedFile, 'NATS nkey seed file', 'DIALFLOW_NATS_NKEY_SEED_FILE or --nats-nkey-seed-file'],
    [auth?.tls?.caFile, 'NATS TLS CA certificate', 'DIALFLOW_NATS_TLS_CA or --nats-tls-ca'],
    [auth?.tls?.certFile, 'NATS TLS client certificate', 'DIALFLOW_NATS_TLS_CERT or --nats-tls-cert'],
    [auth?.tls?.keyFile, 'NATS TLS client key', 'DIALFLOW_NATS_TLS_KEY or --nats-tls-key'],
  ];
  for (const [file, what, source] of files) if (file) readConfiguredFile(file, what, source);
}

/**
 * The nats.js options of these settings: servers, the authenticator (its files read), TLS, inbox prefix.
 * Throws ConfigFileError naming a file that cannot be read, NatsAuthError on one that holds no
 * usable credentials.
 */
export function natsConnectionOptions(
  target: string | string[] | NatsConnectSettings,
): Pick<ConnectionOptions, 'servers' | 'authenticator' | 'tls' | 'inboxPrefix'> {
  const settings = typeof target === 'string' || Array.isArray(target) ? undefined : target;
  const servers = typeof target === 'string' ? [target] : Array.isArray(target) ? target : target.servers;
  const auth = connectionAuth(servers, settings);
  checkCredentialFiles(auth);
  return {
    servers,
    ...natsConnectOptions(auth),
    ...(settings?.token ? { authenticator: tokenAuthenticator(settings.token) } : {}),
  };
}

/**
 * Connect as this process's NATS identity. Pass `config.nats` (servers, the DIALFLOW_NATS_*
 * credentials and TLS, or a token); with only a URL, the credentials are found as defaultNatsAuth
 * says (a server this process started, DIALFLOW_NATS_* of the environment, or dev's operator
 * identity). Every NATS connection of dialflow is opened here.
 */
export async function connectNats(
  target: string | string[] | NatsConnectSettings,
  name: string,
): Promise<NatsConnection> {
  return connect({ name, maxReconnectAttempts: -1, reconnectTimeWait: 500, ...natsConnectionOptions(target) });
}

/** Create or update the streams dialflow needs. Idempotent: every process may call it at start. */
export async function ensureStreams(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams = [
    {
      name: EVENTS_STREAM,
      subjects: ['dialflow.events.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(24 * 3600_000),
      duplicate_window: nanos(2 * 60_000),
      num_replicas: storageReplicas(),
    },
    {
      name: DEADLETTER_STREAM,
      subjects: ['dialflow.deadletter.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(14 * 24 * 3600_000),
      num_replicas: storageReplicas(),
    },
  ];
  for (const cfg of streams) {
    let current: Record<string, unknown>;
    try {
      current = (await jsm.streams.info(cfg.name)).config as unknown as Record<string, unknown>;
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      await jsm.streams.add(cfg);
      continue;
    }
    // Only the worker and operators may update these streams (telephony/nats-auth.ts): the others
    // update nothing when the stream is already as wanted.
    if (Object.entries(cfg).some(([k, v]) => JSON.stringify(current[k]) !== JSON.stringify(v)))
      await jsm.streams.update(cfg.name, cfg);
  }
}

export class NatsTelephonyProvider implements TelephonyProvider, SmsSender {
  constructor(
    private readonly nc: NatsConnection,
    private readonly provider: string,
    private readonly timeoutMs = 5_000,
  ) {}

  private async request(subject: string, payload: unknown, what: string): Promise<CommandAck & { messageId?: string }> {
    let reply: Msg;
    try {
      reply = await this.nc.request(subject, JSON.stringify(payload), { timeout: this.timeoutMs });
    } catch (err) {
      // No answer in time, nobody listening, or the connection is away: the activity retries.
      if (!isNatsFailure(err)) throw err;
      const why =
        err instanceof RequestError && err.isNoResponders()
          ? `no telephony provider "${this.provider}" is listening`
          : `provider "${this.provider}" did not answer: ${err.message}`;
      throw new ProviderUnavailableError(why, { cause: err });
    }
    let ack: CommandAck & { messageId?: string };
    try {
      ack = reply.json<CommandAck & { messageId?: string }>();
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new ProviderUnavailableError(`provider "${this.provider}" answered with something other than JSON`, {
        cause: err,
      });
    }
    if (!ack.ok)
      throw new InvalidCommandError(`provider "${this.provider}" refused ${what}: ${ack.error ?? 'no reason given'}`);
    return ack;
  }

  async send(command: TelephonyCommand): Promise<void> {
    await this.request(commandSubject(this.provider), command, command.action);
  }

  async sendSms(message: SmsMessage): Promise<{ messageId: string }> {
    const ack = await this.request(smsSubject(this.provider), message, 'sms');
    return { messageId: ack.messageId ?? '' };
  }
}

/**
 * Publish an event; JetStream dedupes on `msgId` (the event id unless a deliberate copy). Its
 * properties are sealed with the payload key where the process has one (see event-seal.ts).
 */
export async function publishEvent(
  js: JetStreamClient,
  provider: string,
  event: TelephonyEvent,
  msgId: string = event.id,
): Promise<void> {
  await js.publish(eventSubject(provider, event.type), JSON.stringify(await sealEvent(event)), { msgID: msgId });
}
