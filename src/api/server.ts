// The HTTP API (`dialflow api`) and the web console: Fastify with zod schemas
// (fastify-type-provider-zod), the OpenAPI 3.1 document generated from the same schemas, bearer
// tokens or console sessions (a cookie and a CSRF token) with roles (auth.ts), JSON unless a route
// says otherwise. Every error is `{ error: { code, message } }`; a failure of ours is a 500 with no
// detail (the log has it), never a stack trace.
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import type { Logger } from '../logging.js';
import type { EncryptionCodec } from '../codec/encryption.js';
import { KvFlowStore } from '../store/flows.js';
import { AudioAssetStore } from '../store/assets.js';
import { AuditLog } from '../store/audit.js';
import { ApiTokenStore } from '../store/tokens.js';
import { UserStore } from '../store/users.js';
import { SessionStore } from '../store/sessions.js';
import { authHook, sendError, SESSION_COOKIE } from './auth.js';
import { flowRoutes } from './routes/flows.js';
import { auditRoutes } from './routes/audit.js';
import { callRoutes } from './routes/calls.js';
import { simulateRoutes } from './routes/simulate.js';
import { campaignRoutes } from './routes/campaigns.js';
import { recordingRoutes } from './routes/recordings.js';
import { dncRoutes } from './routes/dnc.js';
import { assetRoutes } from './routes/assets.js';
import { DEFAULT_LOGIN_LIMITS, sessionRoutes, type LoginLimits } from './routes/session.js';
import { consoleRoutes } from './routes/console.js';
import type { ApiDeps } from './deps.js';

/** A flow document is at most a few hundred kB (src/flow/document.ts); 1 MB leaves room and bounds parsing. */
export const API_BODY_LIMIT = 1024 * 1024;

export interface ApiServerOptions {
  nc: NatsConnection;
  /** A client with dialflow's payload codec (calls, campaigns). */
  temporal: { client: Client; codec: EncryptionCodec; taskQueue: string };
  logger: Logger;
  bodyLimit?: number;
  /** Mark the session cookie Secure: the API is reached over HTTPS (a TLS-terminating proxy). */
  cookieSecure?: boolean;
  /** Login attempts allowed per user name and per client address (tests lower or raise them). */
  loginLimits?: Partial<LoginLimits>;
  /** Simulations at once and waiting beyond them (then 503); 2 and 4 by default. */
  simulations?: { running: number; waiting: number };
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

const isFastifyError = (err: unknown): err is FastifyError =>
  err instanceof Error && typeof (err as { code?: unknown }).code === 'string';

export async function buildApiServer(opts: ApiServerOptions): Promise<FastifyInstance> {
  const [tokens, flows, assets, audit, users, sessions] = await Promise.all([
    ApiTokenStore.open(opts.nc),
    KvFlowStore.open(opts.nc),
    AudioAssetStore.open(opts.nc),
    AuditLog.open(opts.nc),
    UserStore.open(opts.nc),
    SessionStore.open(opts.nc),
  ]);
  const cookieSecure = opts.cookieSecure ?? false;
  const app = Fastify({
    // pino's Logger is Fastify's logger; typed as Fastify's base so the instance is a plain FastifyInstance.
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit ?? API_BODY_LIMIT,
    // No proxy headers trusted: request.ip (the login rate limit's key) is the peer's address. Behind
    // a reverse proxy every login then counts against the proxy's address (the per-user limit still
    // applies per name).
    trustProxy: false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: Fastify also parses text/plain by default; without a parser it answers 415.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('principal', null);
  app.decorateRequest('consoleSession', null);
  // Unsigned cookies: the session id is a random secret looked up on the server, nothing to sign.
  await app.register(fastifyCookie);
  // Only the login uses it (routes/session.ts, per user name and per address), not every route.
  await app.register(fastifyRateLimit, { global: false });

  app.setErrorHandler((err: unknown, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) return sendError(reply, 400, 'bad_request', err.message);
    const status = isFastifyError(err) ? (err.statusCode ?? 500) : 500;
    if (status >= 400 && status < 500 && err instanceof Error)
      return sendError(reply, status, STATUS_CODES[status] ?? 'bad_request', err.message);
    request.log.error({ err }, 'request failed');
    return sendError(reply, 500, 'internal', 'internal error (logged by the server)');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'dialflow API',
        version: '1',
        description:
          'Flows, calls, campaigns and audit of a dialflow installation. Every route but this document and the login needs a bearer token (`dialflow tokens create`) or the console session cookie; with the cookie, every request but GET and HEAD also needs the header x-csrf-token (the csrfToken of POST or GET /api/session).',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });
  app.addHook('onRequest', authHook({ tokens, users, sessions }, { cookieSecure }));

  app.get(
    '/api/openapi.json',
    { config: { public: true }, schema: { hide: true } },
    async () => app.swagger() as unknown as Record<string, unknown>,
  );
  const deps: ApiDeps = {
    nc: opts.nc,
    client: opts.temporal.client,
    codec: opts.temporal.codec,
    taskQueue: opts.temporal.taskQueue,
    logger: opts.logger,
    tokens,
    flows,
    assets,
    audit,
    ...(opts.simulations ? { simulations: opts.simulations } : {}),
  };
  await app.register(flowRoutes, deps);
  await app.register(auditRoutes, deps);
  await app.register(sessionRoutes, {
    ...deps,
    users,
    sessions,
    cookieSecure,
    loginLimits: { ...DEFAULT_LOGIN_LIMITS, ...opts.loginLimits },
  });
  await app.register(callRoutes, deps);
  await app.register(simulateRoutes, deps);
  await app.register(campaignRoutes, deps);
  await app.register(recordingRoutes, deps);
  await app.register(dncRoutes, deps);
  await app.register(assetRoutes, deps);
  await app.register(consoleRoutes, deps);
  // Unknown /api paths answer JSON 404 after authentication, also when the console serves every
  // other path (its wildcard is public: without this, /api/nothing would be the console's page).
  app.all('/api/*', { config: { minRole: 'viewer' }, schema: { hide: true } }, (request, reply) =>
    sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );
  await app.ready();
  return app;
}

export interface StartedApiServer {
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(
  opts: ApiServerOptions & { host: string; port: number },
): Promise<StartedApiServer> {
  const app = await buildApiServer(opts);
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = address && typeof address === 'object' ? address.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      // A connection that never sent a request is not idle to Node: close() would wait for it up to
      // headersTimeout (60 s; seen after a 100 MiB upload whose client kept a spare connection).
      const grace = setTimeout(() => app.server.closeAllConnections(), 5_000);
      try {
        await app.close();
      } finally {
        clearTimeout(grace);
      }
    },
  };
}
