// /api/audit: the newest audit entries (admin only).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditEntrySchema, type AuditLog } from '../../store/audit.js';
import { auditQuerySchema, errorBodySchema } from '../schemas.js';

export const auditRoutes: FastifyPluginAsyncZod<{ audit: AuditLog }> = async (app, { audit }) => {
  app.get(
    '/api/audit',
    {
      config: { minRole: 'admin' },
      schema: {
        summary: 'The audit log, newest first',
        description: 'Who published which flow version, and token changes made with `dialflow tokens`.',
        tags: ['audit'],
        querystring: auditQuerySchema,
        response: {
          200: z.object({ entries: z.array(auditEntrySchema) }),
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
        },
      },
    },
    async (request) => ({ entries: await audit.recent(request.query.limit) }),
  );
};
