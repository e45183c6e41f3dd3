// /api/session: console login (public), the current session, logout. Logins are rate limited per
// client address and per user name (@fastify/rate-limit's counters, in this process's memory):
// every attempt counts, before the password is checked, so parallel guesses cannot slip through
// between a check and its count. Attempts refused by the limit are not audited (an attacker could
// otherwise fill the audit log); each checked attempt is, as session.login or session.loginFailed.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UserStore } from '../../store/users.js';
import type { SessionStore } from '../../store/sessions.js';
import { SESSION_COOKIE, audited, sendError, sessionCookieOptions, userPrincipal } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema, loginBodySchema, sessionResponseSchema } from '../schemas.js';

export interface LoginLimits {
  /** Attempts per user name in `windowMs`. */
  perUser: number;
  /** Attempts per client address in `windowMs`. */
  perAddress: number;
  windowMs: number;
}
export const DEFAULT_LOGIN_LIMITS: LoginLimits = { perUser: 5, perAddress: 30, windowMs: 60_000 };

export interface SessionRouteOptions {
  users: UserStore;
  sessions: SessionStore;
  cookieSecure: boolean;
  loginLimits: LoginLimits;
}

export const sessionRoutes: FastifyPluginAsyncZod<ApiDeps & SessionRouteOptions> = async (
  app,
  { users, sessions, audit, cookieSecure, loginLimits },
) => {
  const limitAddress = app.createRateLimit({
    max: loginLimits.perAddress,
    timeWindow: loginLimits.windowMs,
    keyGenerator: (request) => `address:${request.ip}`,
  });
  const limitUser = app.createRateLimit({
    max: loginLimits.perUser,
    timeWindow: loginLimits.windowMs,
    keyGenerator: (request) => `user:${(request.body as { username: string }).username.toLowerCase()}`,
  });

  app.post(
    '/api/session',
    {
      config: { public: true },
      schema: {
        summary: 'Log in to the console',
        description:
          'Checks the user name and password (`dialflow users add`) and sets the session cookie dialflow_session (HttpOnly, SameSite=Strict). At most 5 attempts a minute per user name and 30 per client address.',
        tags: ['session'],
        security: [],
        body: loginBodySchema,
        response: {
          200: sessionResponseSchema,
          400: errorBodySchema,
          401: errorBodySchema.describe('wrong user name or password (the same answer for both)'),
          429: errorBodySchema.describe('too many attempts: try again after retry-after seconds'),
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
      const target = { user: username.slice(0, 128), address: request.ip };
      const user = await users.verify(username, password);
      if (!user) {
        await audited(audit, request, 'session.loginFailed', target, 'wrongCredentials');
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
