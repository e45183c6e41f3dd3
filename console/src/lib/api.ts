// The console's typed fetch client. Same-origin cookie session: every non-GET request carries the
// session's CSRF token (the API answers 403 `csrf` without it). Every error becomes an ApiError with
// the API's `{ error: { code, message } }` (and `problems` when the answer lists validator problems).

export interface Problem {
  severity?: 'error' | 'warning';
  code: string;
  path?: string;
  elementId?: string;
  message: string;
  row?: number;
  line?: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly problems?: Problem[],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | undefined;

/** Set by the session (login, GET /api/session); cleared on logout. */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when any request answers 401 (session expired): the shell shows the login form. */
let onUnauthorized: (() => void) | undefined;
export function setUnauthorizedHandler(handler: (() => void) | undefined): void {
  onUnauthorized = handler;
}

async function toApiError(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let problems: Problem[] | undefined;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string }; problems?: Problem[] };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
    if (Array.isArray(body.problems)) problems = body.problems;
  } catch (err) {
    // Not JSON (a proxy's page): keep the status text.
    if (!(err instanceof SyntaxError)) throw err;
  }
  return new ApiError(response.status, code, message, problems);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  signal?: AbortSignal;
  /** Do not call the unauthorized handler on 401 (the session probe itself). */
  quiet401?: boolean;
}

/** The raw response (for downloads, streams); throws ApiError unless 2xx. */
export async function requestRaw(
  path: string,
  init: RequestInit & { method?: string; quiet401?: boolean } = {},
): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers.set('x-csrf-token', csrfToken);
  const response = await fetch(path, { ...init, method, headers, credentials: 'same-origin' });
  if (!response.ok) {
    if (response.status === 401 && !init.quiet401) onUnauthorized?.();
    throw await toApiError(response);
  }
  return response;
}

/** JSON in, JSON out. A 204 answers undefined. */
export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const response = await requestRaw(path, {
    method: opts.method ?? 'GET',
    headers,
    body,
    signal: opts.signal ?? null,
    quiet401: opts.quiet401,
  });
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal): Promise<T> => api<T>(path, { signal });
export const post = <T>(path: string, body?: unknown): Promise<T> => api<T>(path, { method: 'POST', body });
export const put = <T>(path: string, body?: unknown): Promise<T> => api<T>(path, { method: 'PUT', body });
export const del = <T>(path: string): Promise<T> => api<T>(path, { method: 'DELETE' });

/** A raw-body upload (a CSV of recipients, a WAV asset): the file as is, with its content type. */
export async function upload<T>(
  path: string,
  file: Blob,
  contentType: string,
  method: 'POST' | 'PUT' = 'PUT',
): Promise<T> {
  const response = await requestRaw(path, {
    method,
    headers: { 'content-type': contentType, accept: 'application/json' },
    body: file,
  });
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** A path segment, encoded (call ids contain ':'). */
export const seg = (value: string): string => encodeURIComponent(value);

// The session (contract: /api/session).
export interface SessionUser {
  name: string;
  role: 'viewer' | 'operator' | 'admin';
}
export interface Session {
  user: SessionUser;
  csrfToken: string;
}

export async function fetchSession(): Promise<Session | undefined> {
  try {
    const session = await api<Session>('/api/session', { quiet401: true });
    setCsrfToken(session.csrfToken);
    return session;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    throw err;
  }
}

export async function login(username: string, password: string): Promise<Session> {
  const session = await api<Session>('/api/session', {
    method: 'POST',
    body: { username, password },
    quiet401: true,
  });
  setCsrfToken(session.csrfToken);
  return session;
}

export async function logout(): Promise<void> {
  try {
    await api<void>('/api/session', { method: 'DELETE', quiet401: true });
  } finally {
    setCsrfToken(undefined);
  }
}
