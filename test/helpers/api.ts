// Requests to the HTTP API in tests, as a client sends them: a bearer token, a session cookie and
// its CSRF token, or a raw Authorization header; JSON or raw bodies. The answer keeps the status,
// the headers, the body as text and bytes, and the body parsed as JSON when it is JSON.
import type { NatsConnection } from '@nats-io/transport-node';
import { ApiTokenStore, API_ROLES, type ApiRole } from '../../src/store/tokens.js';

export interface Answer {
  status: number;
  headers: Headers;
  /** The body parsed as JSON; undefined when it is not JSON. */
  body: unknown;
  text: string;
  bytes: Buffer;
}

export interface ApiRequestOptions {
  token?: string;
  /** A whole Authorization header (another scheme, a malformed token). */
  auth?: string;
  /** A session id, sent as the console's cookie. */
  cookie?: string;
  csrf?: string;
  json?: unknown;
  raw?: string | Uint8Array;
  /** The raw body's type (default application/json). */
  contentType?: string;
  headers?: Record<string, string>;
}

export async function apiRequest(
  baseUrl: string,
  method: string,
  path: string,
  opts: ApiRequestOptions = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  const authorization = opts.auth ?? (opts.token ? `Bearer ${opts.token}` : undefined);
  if (authorization) headers.authorization = authorization;
  if (opts.cookie) headers.cookie = `dialflow_session=${opts.cookie}`;
  if (opts.csrf !== undefined) headers['x-csrf-token'] = opts.csrf;
  let body: string | Uint8Array | undefined;
  if (opts.json !== undefined) body = JSON.stringify(opts.json);
  if (opts.raw !== undefined) body = opts.raw;
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return { status: res.status, headers: res.headers, body: parsed, text, bytes };
}

/** The `error.code` of an error answer. */
export const errorCode = (a: Answer): string | undefined =>
  (a.body as { error?: { code?: string } } | undefined)?.error?.code;

/** One token per role, named `test-<role>`. */
export async function roleTokens(nc: NatsConnection): Promise<Record<ApiRole, string>> {
  const store = await ApiTokenStore.open(nc);
  const tokens = {} as Record<ApiRole, string>;
  for (const role of API_ROLES) tokens[role] = (await store.create(role, `test-${role}`)).token;
  return tokens;
}
