// Placeholder: the routes of this group are being written.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';

export const recordingRoutes: FastifyPluginAsyncZod<ApiDeps> = async () => {};
