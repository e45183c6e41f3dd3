// /api/session: console login (public), the current session, logout. Logins are rate limited per
// client address (an IPv6 address by its /64, which one subscriber usually holds whole) and per user
// name (@fastify/rate-limit's counters, in this process's memory): every attempt counts, before the
// password is checked, so parallel guesses cannot slip through between a check and its count.
// Password checks (scrypt, about 0.2 s and 32 MiB each) run a few at once; a few more wait, beyond
// that 503 login.busy. Attempts refused by a limit are not audited (an attacker could otherwise fill
// the audit log); a successful login is, as session.login, and failed ones as session.loginFailed:
// one entry per user name and client address a minute, the further failures counted in one more
// entry when that minute is over.
import { normalizeIP } from '@fastify/rate-limit';
import type { CreateRateLimitOptions } from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import pLimit from 'p-limit';
import { z } from 'zod';
import type { UserStore } from '../../store/users.js';
import type { SessionStore } from '../../store/sessions.js';
import type { AuditLog } from '../../store/audit.js';
import { SESSION_COOKIE, actorOf, audited, sendError, sessionCookieOptions, userPrincipal } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema, loginBodySchema, sessionResponseSchema } from '../schemas.js';

export interface LoginLimits {
  /** Attempts per user name in `windowMs`. */
  perUser: number;
  /** Attempts per client address (IPv6: per /64) in `windowMs`. */
  perAddress: number;
  windowMs: number;
  /** Password checks at once, and waiting for a turn; beyond them a login is 503 login.busy. */
  checksRunning: number;
  checksWaiting: number;
  /** At most one session.loginFailed entry per user name and client address in this time. */
  failedAuditWindowMs: number;
}
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perUser: 5,
  perAddress: 30,
  windowMs: 60_000,
  checksRunning: 4,
  checksWaiting: 16,
  failedAuditWindowMs: 60_000,
};

/**
 * Counters each limiter keeps (least recently used go first). Each is a few hundred bytes: 100 000
 * names or addresses are tens of MB at most, and an attacker must try that many within a window
 * before a counter in use could be dropped (with 5000, the plugin's default, a user's counter went
 * after 5000 other names).
 */
export const LOGIN_LIMIT_COUNTERS = 100_000;
/** Failed-login audit windows kept open at once: beyond this, the oldest is closed early. */
const MAX_FAILED_AUDIT_WINDOWS = 10_000;

/** The client of a login, as its limit counts it: an IPv4 address, or the /64 of an IPv6 one. */
export const loginAddressKey = (ip: string): string => normalizeIP(ip, 64);

export interface SessionRouteOptions {
  users: UserStore;
  sessions: SessionStore;
  cookieSecure: boolean;
  loginLimits: LoginLimits;
}

interface FailedWindow {
  startedAt: number;
  user: string;
  address: string;
  /** Failures after the one audited when the window opened. */
  repeats: number;
}

/**
 * session.loginFailed entries, at most one per user name and client address (its limit key) per
 * window: the first failure is written at once, the further ones are counted and written as one
 * entry (outcome `repeated`, with `attempts`) once the window is over.
 */
export class FailedLoginAudit {
  private readonly windows = new Map<string, FailedWindow>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditLog,
    private readonly windowMs: number,
    onSweepError: (err: unknown) => void,
  ) {
    this.sweeper = setInterval(
      () => void this.closeWindows(Date.now()).catch(onSweepError),
      Math.max(100, Math.min(windowMs / 2, 15_000)),
    ).unref();
  }

  async failed(user: string, address: string, now = Date.now()): Promise<void> {
    const key = `${user.toLowerCase()}\n${loginAddressKey(address)}`;
    const open = this.windows.get(key);
    if (open && now - open.startedAt < this.windowMs) {
      open.repeats += 1;
      return;
    }
    // The windows change before anything is awaited: a parallel failure sees the new window.
    const closed: FailedWindow[] = [];
    if (open) closed.push(this.take(key, open));
    if (this.windows.size >= MAX_FAILED_AUDIT_WINDOWS) {
      // Map order is insertion order: the first one is the oldest.
      const [oldestKey, oldest] = this.windows.entries().next().value as [string, FailedWindow];
      closed.push(this.take(oldestKey, oldest));
    }
    this.windows.set(key, { startedAt: now, user, address, repeats: 0 });
    await Promise.all([...closed.map((w) => this.writeRepeats(w)), this.write({ user, address }, 'wrongCredentials')]);
  }

  /** Writes the counts of the windows that are over (all of them when stopping). */
  async closeWindows(now: number, all = false): Promise<void> {
    const closed = [...this.windows]
      .filter(([, w]) => all || now - w.startedAt >= this.windowMs)
      .map(([key, w]) => this.take(key, w));
    for (const w of closed) await this.writeRepeats(w);
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.closeWindows(Date.now(), true);
  }

  private take(key: string, w: FailedWindow): FailedWindow {
    this.windows.delete(key);
    return w;
  }

  private async writeRepeats(w: FailedWindow): Promise<void> {
    if (w.repeats > 0)
      await this.write(
        { user: w.user, address: w.address, attempts: w.repeats, since: new Date(w.startedAt).toISOString() },
        'repeated',
      );
  }

  private write(target: Record<string, string | number>, outcome: string): Promise<void> {
    return this.audit.append({
      time: new Date().toISOString(),
      actor: actorOf(null),
      action: 'session.loginFailed',
      target,
      outcome,
    });
  }
}

/** A rate limiter of the login: the plugin's, with its own LRU of LOGIN_LIMIT_COUNTERS counters. */
function loginLimiter(app: FastifyInstance, options: CreateRateLimitOptions) {
  // createRateLimit hands its options to the store's child(), which takes `cache` from them; the
  // type leaves it out (it names it on the plugin's and the routes' options only).
  const withCache: CreateRateLimitOptions & { cache: number } = { ...options, cache: LOGIN_LIMIT_COUNTERS };
  return app.createRateLimit(withCache);
}

export const sessionRoutes: FastifyPluginAsyncZod<ApiDeps & SessionRouteOptions> = async (
  app,
  { users, sessions, audit, cookieSecure, loginLimits },
) => {
  const limitAddress = loginLimiter(app, {
    max: loginLimits.perAddress,
    timeWindow: loginLimits.windowMs,
    keyGenerator: (request) => `address:${loginAddressKey(request.ip)}`,
  });
  const limitUser = loginLimiter(app, {
    max: loginLimits.perUser,
    timeWindow: loginLimits.windowMs,
    keyGenerator: (request) => `user:${(request.body as { username: string }).username.toLowerCase()}`,
  });
  const passwordChecks = pLimit(loginLimits.checksRunning);
  const failedLogins = new FailedLoginAudit(audit, loginLimits.failedAuditWindowMs, (err) =>
    app.log.error({ err }, 'could not audit repeated failed logins'),
  );
  app.addHook('onClose', () => failedLogins.stop());

  app.post(
    '/api/session',
    {
      config: { public: true },
      schema: {
        summary: 'Log in to the console',
        description:
          'Checks the user name and password (`dialflow users add`) and sets the session cookie dialflow_session (HttpOnly, SameSite=Strict). At most 5 attempts a minute per user name and 30 per client address (an IPv6 address counts by its /64). A few passwords are checked at once, a few more wait: beyond that 503 login.busy with retry-after.',
        tags: ['session'],
        security: [],
        body: loginBodySchema,
        response: {
          200: sessionResponseSchema,
          400: errorBodySchema,
          401: errorBodySchema.describe('wrong user name or password (the same answer for both)'),
          429: errorBodySchema.describe('too many attempts: try again after retry-after seconds'),
          503: errorBodySchema.describe('login.busy: too many logins at once; try again after retry-after seconds'),
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const limits = await Promise.all([limitAddress(request), limitUser(request)]);
      const exceeded = limits.filter((l) => !l.isAllowed && l.isExceeded);
      if (exceeded.length > 0) {
        const retryAfter = Math.max(1, ...exceeded.map((l) => (l.isAllowed ? 0 : l.ttlInSeconds)));
        return sendError(
          reply.header('retry-after', String(retryAfter)),
          429,
          'rate_limited',
          `too many login attempts: try again in ${retryAfter} s`,
        );
      }
      // p-limit counts a check as pending from the moment it is given: the check of the queue's
      // length and the enqueue happen in one turn, so parallel logins cannot overfill it.
      if (
        passwordChecks.activeCount + passwordChecks.pendingCount >=
        loginLimits.checksRunning + loginLimits.checksWaiting
      )
        return sendError(
          reply.header('retry-after', '1'),
          503,
          'login.busy',
          'too many logins at once: try again in a moment',
        );
      const target = { user: username.slice(0, 128), address: request.ip };
      const user = await passwordChecks(() => users.verify(username, password));
      if (!user) {
        await failedLogins.failed(target.user, target.address);
        request.log.info({ user: target.user, address: request.ip }, 'login failed');
        return sendError(reply, 401, 'login_failed', 'wrong user name or password');
      }
      // A login from a browser that still had a session replaces it.
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) await sessions.delete(previous);
      const { id, record } = await sessions.create(user.name);
      request.principal = userPrincipal(user);
      await audited(audit, request, 'session.login', target, 'ok');
      reply.setCookie(SESSION_COOKIE, id, sessionCookieOptions(cookieSecure));
      return { user: { name: user.name, role: user.role }, csrfToken: record.csrfToken };
    },
  );

  const noSession = 'no console session: this request used a bearer token';

  app.get(
    '/api/session',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'The current console session',
        description: 'Its user (with the role as of now) and its CSRF token; 401 when not logged in.',
        tags: ['session'],
        response: { 200: sessionResponseSchema, 401: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { principal, consoleSession } = request;
      if (!consoleSession || !principal) return sendError(reply, 401, 'unauthorized', noSession);
      return { user: { name: principal.name, role: principal.role }, csrfToken: consoleSession.csrfToken };
    },
  );

  app.delete(
    '/api/session',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Log out',
        description: 'Ends the session on the server and clears the cookie. Needs x-csrf-token.',
        tags: ['session'],
        response: { 204: z.null().describe('logged out'), 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async (request, reply) => {
      const session = request.consoleSession;
      if (!session) return sendError(reply, 401, 'unauthorized', noSession);
      await sessions.delete(session.id);
      request.log.info({ user: session.user }, 'logged out');
      return reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(cookieSecure)).code(204).send(null);
    },
  );
};
