// Authentication and role checks for every /api route. A caller is an API token (`Authorization:
// Bearer …`) or a console user with a session cookie (POST /api/session). Each route names the
// lowest role it needs in its config (`minRole`), or `public: true` (the OpenAPI document, the
// login, the console's page). The check runs onRequest, before the body is read: an unauthenticated
// client cannot make the server parse a megabyte. Routes that do not exist need credentials too
// (401, then 404), so the API's shape is not probed without them.
//
// Cookies and CSRF: the session cookie is HttpOnly, SameSite=Strict, Path=/ (and Secure behind
// HTTPS). A browser sends it on its own, so every request with it whose method changes something
// (anything but GET, HEAD, OPTIONS) must also carry the session's CSRF token in `x-csrf-token`,
// which only the console's own page can read (from the login answer or GET /api/session).
// SameSite=Strict already keeps other sites' requests from carrying the cookie; the token covers
// browsers and setups where it does not. Bearer requests need no token: a browser never adds the
// Authorization header by itself.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import { roleAtLeast, type ApiRole, type ApiTokenInfo, type ApiTokenStore } from '../store/tokens.js';
import type { AuditAction, AuditEntry, AuditLog } from '../store/audit.js';
import type { UserInfo, UserStore } from '../store/users.js';
import type { SessionRecord, SessionStore } from '../store/sessions.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The lowest role that may call the route (viewer when unset). */
    minRole?: ApiRole;
    /** Served without credentials (for a path under /api/, only when the route itself is an /api/ route). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** Who is calling, set by the auth hook (null on public routes). */
    principal: Principal | null;
    /** The console session the request came with (null for bearer tokens and public routes). */
    consoleSession: (SessionRecord & { id: string }) | null;
  }
}

/** The caller of a request: an API token, or a console user signed in with a session. */
export interface Principal {
  kind: 'token' | 'user';
  /** The token's id, or the user's name. */
  id: string;
  name: string;
  role: ApiRole;
}

export const SESSION_COOKIE = 'dialflow_session';
export const CSRF_HEADER = 'x-csrf-token';
/** Methods that change nothing: a request with the cookie needs no CSRF token for them. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const tokenPrincipal = (t: ApiTokenInfo): Principal => ({ kind: 'token', id: t.id, name: t.name, role: t.role });
export const userPrincipal = (u: Pick<UserInfo, 'name' | 'role'>): Principal => ({
  kind: 'user',
  id: u.name,
  name: u.name,
  role: u.role,
});

/** The audit log's `actor` of a request. */
export function actorOf(p: Principal | null): AuditEntry['actor'] {
  if (!p) return { name: 'unknown' };
  return p.kind === 'token'
    ? { tokenId: p.id, name: p.name, role: p.role }
    : { user: p.id, name: p.name, role: p.role };
}

/** Append one entry for the request's caller, now. */
export function audited(
  audit: AuditLog,
  request: FastifyRequest,
  action: AuditAction,
  target: AuditEntry['target'],
  outcome: string,
): Promise<void> {
  return audit.append({ time: new Date().toISOString(), actor: actorOf(request.principal), action, target, outcome });
}

export const sendError = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply =>
  reply.code(status).send({ error: { code, message } });

/** The session cookie's attributes (also to clear it: a browser matches on name, path and domain). */
export const sessionCookieOptions = (secure: boolean): CookieSerializeOptions => ({
  httpOnly: true,
  sameSite: 'strict',
  path: '/',
  secure,
});

const sameSecret = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export interface AuthStores {
  tokens: ApiTokenStore;
  users: UserStore;
  sessions: SessionStore;
}

/**
 * The user of a session cookie, or undefined when the session is unknown or over, its user is
 * removed, or the password changed since the login (the session is deleted then). The role is the
 * user record's of now, not the login's.
 */
export async function sessionUser(
  stores: Pick<AuthStores, 'users' | 'sessions'>,
  id: string,
): Promise<{ session: SessionRecord; user: UserInfo } | undefined> {
  const session = await stores.sessions.get(id);
  if (!session) return undefined;
  const user = await stores.users.get(session.user);
  if (!user || Date.parse(user.passwordChanged) > Date.parse(session.created)) {
    await stores.sessions.delete(id);
    return undefined;
  }
  return { session, user };
}

const bearerPattern = /^Bearer ([^\s]+)$/i;
/** Whether a request URL is under /api (the routes of this hook), rather than one of the console's pages. */
export const isApiPath = (url: string): boolean => url === '/api' || url.startsWith('/api/') || url.startsWith('/api?');

export function authHook(stores: AuthStores, opts: { cookieSecure: boolean }) {
  // An async hook that answers returns the reply: Fastify then skips the rest of the request.
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const config = request.routeOptions.config;
    // A public wildcard outside /api (the console's pages) does not make an /api path public.
    if (config.public && (!isApiPath(request.url) || (request.routeOptions.url ?? '').startsWith('/api/')))
      return undefined;
    const header = request.headers.authorization;
    const cookie = request.cookies[SESSION_COOKIE];
    if (header === undefined && cookie !== undefined) {
      const found = await sessionUser(stores, cookie);
      if (!found)
        return sendError(
          reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(opts.cookieSecure)),
          401,
          'unauthorized',
          'the session has ended: log in again',
        );
      request.principal = userPrincipal(found.user);
      request.consoleSession = { ...found.session, id: cookie };
      if (!SAFE_METHODS.has(request.method)) {
        const sent = request.headers[CSRF_HEADER];
        if (typeof sent !== 'string' || !sameSecret(sent, found.session.csrfToken))
          return sendError(
            reply,
            403,
            'csrf',
            `a ${request.method} with the session cookie needs the session's CSRF token in ${CSRF_HEADER}`,
          );
      }
    } else {
      const token = header ? bearerPattern.exec(header)?.[1] : undefined;
      if (!token)
        return sendError(
          reply.header('www-authenticate', 'Bearer'),
          401,
          'unauthorized',
          'send Authorization: Bearer <token>, or log in (POST /api/session)',
        );
      const info = await stores.tokens.verify(token);
      if (!info)
        return sendError(
          reply.header('www-authenticate', 'Bearer error="invalid_token"'),
          401,
          'unauthorized',
          'the token is unknown or revoked',
        );
      request.principal = tokenPrincipal(info);
    }
    const needed = config.minRole ?? 'viewer';
    const { principal } = request;
    if (!roleAtLeast(principal.role, needed))
      return sendError(
        reply,
        403,
        'forbidden',
        `this needs the ${needed} role; ${principal.kind === 'token' ? 'token' : 'user'} "${principal.name}" is ${principal.role}`,
      );
    return undefined;
  };
}
