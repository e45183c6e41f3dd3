// Bearer-token authentication and role checks for every /api route. Each route names the lowest
// role it needs in its config (`minRole`), or `public: true` (only the OpenAPI document). The check
// runs onRequest, before the body is read: an unauthenticated client cannot make the server parse
// a megabyte. Routes that do not exist need a valid token too (401, then 404), so the API's shape is
// not probed without one.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { roleAtLeast, type ApiRole, type ApiTokenInfo, type ApiTokenStore } from '../store/tokens.js';
import type { AuditAction, AuditEntry, AuditLog } from '../store/audit.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The lowest role that may call the route (viewer when unset). */
    minRole?: ApiRole;
    /** Served without a token. */
    public?: boolean;
  }
  interface FastifyRequest {
    /** Who is calling, set by the auth hook (null on public routes). */
    principal: Principal | null;
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

const tokenPrincipal = (t: ApiTokenInfo): Principal => ({ kind: 'token', id: t.id, name: t.name, role: t.role });

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

const bearerPattern = /^Bearer ([^\s]+)$/i;

export function authHook(tokens: ApiTokenStore) {
  // An async hook that answers returns the reply: Fastify then skips the rest of the request.
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const config = request.routeOptions.config;
    if (config.public) return undefined;
    const header = request.headers.authorization;
    const token = header ? bearerPattern.exec(header)?.[1] : undefined;
    if (!token)
      return sendError(
        reply.header('www-authenticate', 'Bearer'),
        401,
        'unauthorized',
        'send Authorization: Bearer <token>',
      );
    const info = await tokens.verify(token);
    if (!info)
      return sendError(
        reply.header('www-authenticate', 'Bearer error="invalid_token"'),
        401,
        'unauthorized',
        'the token is unknown or revoked',
      );
    request.principal = tokenPrincipal(info);
    const needed = config.minRole ?? 'viewer';
    if (!roleAtLeast(info.role, needed))
      return sendError(reply, 403, 'forbidden', `this needs the ${needed} role; token "${info.name}" is ${info.role}`);
    return undefined;
  };
}
