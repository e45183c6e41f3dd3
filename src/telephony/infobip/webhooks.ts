// The webhook ingress (`dialflow webhooks`): Infobip posts call events to POST /webhooks/infobip;
// each is authenticated (HTTP Basic, constant-time), size-limited, validated, mapped to our
// envelope and published on JetStream. It answers 2xx only once JetStream acknowledged every
// event of the body, so a lost publish makes Infobip retry; the event id is a hash of the raw body
// (also the JetStream msg-id), so a retried or duplicated webhook is deduplicated.
//
// Infobip has no "then": when a prompt whose command has a follow-up ends, the ingress runs the
// follow-up itself (InfobipActions, the command side's exactly-once path, claimed by the follow-up's
// command id), after publishing the prompt's event and before answering, so that a crash in between
// makes Infobip deliver the webhook again rather than lose the follow-up.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Histogram, type Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import type { TelephonyEvent } from '../contract.js';
import { publishEvent } from '../nats.js';
import { ObjectRecordingStore, type RecordingStore } from '../../store/recordings.js';
import { getOrCreateCounter, InfobipClient, InfobipRequestError, type RetryPolicy } from './client.js';
import { InfobipCallMap } from './calls.js';
import { InfobipActions, type FollowUpToRun } from './actions.js';
import {
  infobipEnvelopeSchema,
  InvalidWebhookError,
  mapInfobipEvent,
  webhookEventId,
  type InfobipEnvelope,
  type MappedWebhook,
  type RecordingToFetch,
} from './events.js';
import { InfobipConfigError, INFOBIP_PROVIDER, type InfobipOptions, type WebhookOptions } from './options.js';

export const WEBHOOK_PATH = '/webhooks/infobip';

export interface RunningWebhookServer {
  /** The full URL of the endpoint, e.g. http://127.0.0.1:8090/webhooks/infobip. */
  url: string;
  stop(): Promise<void>;
}

/** Compare credentials in constant time: both sides hashed first, so lengths never leak. */
export function basicAuthMatches(header: string | undefined, user: string, password: string): boolean {
  const expected = createHash('sha256').update(`${user}:${password}`).digest();
  let given = '';
  if (header && /^basic /i.test(header)) given = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const got = createHash('sha256').update(given).digest();
  // Empty credentials never match: the server refuses to start without both anyway.
  return timingSafeEqual(expected, got) && user.length > 0 && password.length > 0;
}

class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLargeError(`body larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const CONTENT_TYPES: Record<string, string> = { WAV: 'audio/wav', MP3: 'audio/mpeg', MP4: 'video/mp4' };

export async function startWebhookServer(opts: {
  nc: NatsConnection;
  options: WebhookOptions;
  registry?: Registry;
  log?: (m: string) => void;
  /** How long an event of a call not yet in the map waits for it (a forward leg's events can outrun the dialog's reply). */
  resolveWaitMs?: number;
  recordings?: RecordingStore;
  /** Retries of this process's API requests (recording downloads, prompt follow-ups). */
  retry?: Partial<RetryPolicy>;
}): Promise<RunningWebhookServer> {
  const { nc, options } = opts;
  const log = opts.log ?? ((m: string) => console.error(`webhooks: ${m}`));
  const { user, password } = options;
  if (!user || !password)
    throw new InfobipConfigError(
      'the webhook ingress needs DIALFLOW_WEBHOOK_USER and DIALFLOW_WEBHOOK_PASSWORD: it never accepts unauthenticated events',
    );
  const js = jetstream(nc);
  const calls = await InfobipCallMap.open(nc);
  const recordings = opts.recordings ?? (await ObjectRecordingStore.open(nc));
  const ib: InfobipOptions | undefined = options.infobip;
  const api =
    ib?.baseUrl && ib.apiKey
      ? new InfobipClient({
          baseUrl: ib.baseUrl,
          apiKey: ib.apiKey,
          requestsPerSecond: ib.requestsPerSecond,
          ...(opts.retry ? { retry: opts.retry } : {}),
          ...(opts.registry ? { registry: opts.registry } : {}),
          log,
        })
      : undefined;
  if (!api)
    log(
      'no Infobip API settings: recordings cannot be downloaded and prompt follow-ups cannot be sent (such webhooks will be refused with 503)',
    );
  const publish = (ev: TelephonyEvent) => publishEvent(js, INFOBIP_PROVIDER, ev, ev.id);
  const actions = api ? new InfobipActions({ client: api, calls, publish, log }) : undefined;
  const resolveWaitMs = opts.resolveWaitMs ?? 3000;
  const webhooks: Counter<'type' | 'status'> | undefined = opts.registry
    ? getOrCreateCounter(
        opts.registry,
        'dialflow_infobip_webhooks_total',
        'Infobip webhooks received, by event type and HTTP status answered',
        ['type', 'status'],
      )
    : undefined;
  const latency = opts.registry
    ? ((opts.registry.getSingleMetric('dialflow_infobip_webhook_seconds') as Histogram | undefined) ??
      new Histogram({
        name: 'dialflow_infobip_webhook_seconds',
        help: 'Time from a webhook arriving to its answer (JetStream acknowledged)',
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [opts.registry],
      }))
    : undefined;

  async function mapWithWait(env: InfobipEnvelope, id: string): Promise<MappedWebhook> {
    const deadline = Date.now() + resolveWaitMs;
    for (;;) {
      const m = await mapInfobipEvent(env, id, calls);
      if (m.kind !== 'unresolved' || Date.now() >= deadline) return m;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * CALL_RECORDING_READY carries no customData (model CallRecordingReadyProperties); the call's
   * recordings do, per file. They tell a voicemail (its command) from the whole-call recording.
   */
  async function addFileCustomData(env: InfobipEnvelope): Promise<void> {
    const rec = (env.properties as { recording?: { files?: unknown } } | null | undefined)?.recording;
    const files = Array.isArray(rec?.files) ? (rec.files as Array<Record<string, unknown>>) : [];
    if (!api || !env.callId || files.length === 0 || files.every((f) => f.customData)) return;
    let listed: Awaited<ReturnType<InfobipClient['getCallRecordings']>>;
    try {
      listed = await api.getCallRecordings(env.callId);
    } catch (err) {
      if (err instanceof InfobipRequestError) return; // not listed (yet): the KV's pending recording decides
      throw err;
    }
    for (const f of files) {
      const cd = listed.files?.find((l) => l.id === f.id)?.customData;
      if (cd && !f.customData) f.customData = cd;
    }
  }

  async function fetchRecording(r: RecordingToFetch): Promise<void> {
    if (!api) throw new InfobipConfigError('cannot download a recording without DIALFLOW_INFOBIP_BASE_URL / _API_KEY');
    const file = await api.downloadRecordingFile(r.fileId);
    const contentType = (r.fileFormat && CONTENT_TYPES[r.fileFormat]) ?? file.contentType;
    await recordings.put(
      { id: r.id, callId: r.callId, name: r.name, durationMs: r.durationMs, contentType },
      file.data,
    );
    if (r.voicemail) {
      await calls.setRecordingFile(r.name, r.fileId);
      await calls.clearPendingRecording(r.callId);
    }
  }

  /** False when the follow-up must be tried again (Infobip unavailable): the webhook is answered 503. */
  async function runFollowUp(f: FollowUpToRun): Promise<boolean> {
    if (!actions)
      throw new InfobipConfigError('cannot send a prompt follow-up without DIALFLOW_INFOBIP_BASE_URL / _API_KEY');
    const outcome = await actions.runFollowUp(f);
    if (outcome === 'retry') return false;
    if (!outcome.ok)
      log(`${f.command.action} after prompt ${f.promptCommandId} on ${f.callId} refused: ${outcome.error ?? ''}`);
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<{ status: number; type: string }> {
    const reply = (status: number, type: string, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) });
      res.end(body !== undefined ? JSON.stringify(body) : undefined);
      return { status, type };
    };
    const path = (req.url ?? '').split('?')[0];
    if (path !== WEBHOOK_PATH) return reply(404, '-', { error: 'not found' });
    if (req.method !== 'POST') return reply(405, '-', { error: 'POST only' }, { Allow: 'POST' });
    if (!basicAuthMatches(req.headers.authorization, user as string, password as string)) {
      // Nothing of the body is kept, and the connection is closed after the answer: on a kept-alive
      // connection an anonymous client could otherwise stream an endless body into the drain.
      req.resume();
      return reply(
        401,
        '-',
        { error: 'unauthorized' },
        { 'WWW-Authenticate': 'Basic realm="dialflow webhooks", charset="UTF-8"', Connection: 'close' },
      );
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > options.maxBodyBytes) {
      req.resume();
      return reply(413, '-', { error: `body larger than ${options.maxBodyBytes} bytes` }, { Connection: 'close' });
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, options.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return reply(413, '-', { error: err.message }, { Connection: 'close' });
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      return reply(400, '-', { error: 'the body is not JSON' });
    }
    const env = infobipEnvelopeSchema.safeParse(json);
    if (!env.success) return reply(400, '-', { error: z.prettifyError(env.error) });
    const type = env.data.type;
    const id = webhookEventId(raw);
    if (type === 'CALL_RECORDING_READY') await addFileCustomData(env.data);
    let mapped: MappedWebhook;
    try {
      mapped = await mapWithWait(env.data, id);
    } catch (err) {
      if (err instanceof InvalidWebhookError) return reply(400, type, { error: err.message });
      throw err;
    }
    switch (mapped.kind) {
      case 'unknownType':
        log(`unknown event type ${JSON.stringify(type).slice(0, 100)}: ignored`);
        return reply(204, 'unknown');
      case 'ignored':
        return reply(204, type);
      case 'error':
        log(`ERROR event: ${mapped.message}`);
        return reply(204, type);
      case 'unresolved':
        // Not ours yet (or not at all): Infobip retries later, when the mapping may exist.
        log(`${type} for unknown call ${mapped.infobipId ?? '?'}: asking Infobip to retry`);
        return reply(503, type, { error: 'unknown call' }, { 'Retry-After': '5' });
      case 'events': {
        if (mapped.warning) log(`ERROR event: ${mapped.warning}`);
        if (mapped.identity) await calls.link(mapped.identity, mapped.identity);
        // Before the flow hears of the call, so its next command finds the Infobip id.
        if (mapped.link && (await calls.infobipIdOf(mapped.link.callId)) === undefined)
          await calls.link(mapped.link.callId, mapped.link.infobipId, mapped.link.commandId);
        // The audio is in our store before anyone hears of it.
        for (const r of mapped.recordings) await fetchRecording(r);
        for (const ev of mapped.events) await publish(ev);
        // After the prompt's own event (the contract: SAY_FINISHED / PLAY_FINISHED first), and before
        // the answer: until Infobip has its 2xx, a crash here means the webhook comes again.
        if (mapped.followUp && !(await runFollowUp(mapped.followUp)))
          return reply(503, type, { error: 'temporarily unavailable' }, { 'Retry-After': '5' });
        return reply(204, type);
      }
    }
  }

  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(options.requestTimeoutMs ?? 30_000, headersTimeout);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      // Node checks those two timeouts only every `connectionsCheckingInterval` (30 s by default), so a
      // slow-loris client would hold its connection up to a minute; check often enough to bound it.
      connectionsCheckingInterval: Math.min(1000, headersTimeout),
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      const started = process.hrtime.bigint();
      handle(req, res)
        .then(({ status, type }) => {
          webhooks?.inc({ type, status: String(status) });
          latency?.observe(Number(process.hrtime.bigint() - started) / 1e9);
        })
        .catch((err: unknown) => {
          // Publishing, storing or the KV failed: 503 so Infobip delivers the event again.
          log(`webhook failed: ${(err as Error).message}`);
          webhooks?.inc({ type: 'error', status: '503' });
          if (!res.headersSent) {
            res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '5' });
            res.end(JSON.stringify({ error: 'temporarily unavailable' }));
          } else res.end();
        });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}${WEBHOOK_PATH}`,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
