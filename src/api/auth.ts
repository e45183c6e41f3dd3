// Bearer-token authentication and role checks for every /api route. Each route names the lowest
// role it needs in its config (`minRole`), or `public: true` (only the OpenAPI document). The check
// runs onRequest, before the body is read: an unauthenticated client cannot make the server parse
// a megabyte. Routes that do not exist need a valid token too (401, then 404), so the API's shape is
// not probed without one.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { roleAtLeast, type ApiRole, type ApiTokenInfo, type ApiTokenStore } from '../store/tokens.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The lowest role that may call the route (viewer when unset). */
    minRole?: ApiRole;
    /** Served without a token. */
    public?: boolean;
  }
  interface FastifyRequest {
    /** The caller's token, set by the auth hook (null on public routes). */
    apiToken: ApiTokenInfo | null;
  }
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
    request.apiToken = info;
    const needed = config.minRole ?? 'viewer';
    if (!roleAtLeast(info.role, needed))
      return sendError(reply, 403, 'forbidden', `this needs the ${needed} role; token "${info.name}" is ${info.role}`);
    return undefined;
  };
}
