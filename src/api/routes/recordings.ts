// /api/recordings: call and voicemail recordings (the NATS object store `dialflow recordings`
// reads), listed by campaign or call, and streamed with byte ranges so a browser can play and seek.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ObjectRecordingStore, type StoredRecording } from '../../store/recordings.js';
import { workflowIdOfCallId } from '../../telephony/ids.js';
import { recordsNameOfWorkflowId } from '../../workflows/messages.js';
import { sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema } from '../schemas.js';
import { objectResponses, sendObject } from './byte-ranges.js';

const recordingSchema = z.object({
  name: z.string().describe('the recording id: GET /api/recordings/{name} (URL-encoded) streams it'),
  callId: z.string().describe('the call (workflow id, as in /api/calls) the recording belongs to'),
  legId: z.string().describe('the provider call leg it was recorded on: `{callId}~{dial attempt}`'),
  campaignId: z.string().optional().describe('the campaign (or direct-call label, or "inbound") of the call'),
  label: z.string().describe('the file name of the recordVoicemail element, or "call" for a whole-call recording'),
  durationMs: z.number(),
  size: z.number().int().describe('bytes'),
  contentType: z.string(),
  created: z.string().describe('ISO 8601 time it was stored'),
});

const listQuerySchema = z.object({
  campaignId: z.string().min(1).max(200).optional().describe('only recordings of calls of this campaign'),
  callId: z.string().min(1).max(400).optional().describe('only recordings of this call (its workflow id)'),
});

const nameParamsSchema = z.object({ name: z.string().min(1).max(400) });

function describeRecording(r: StoredRecording): z.infer<typeof recordingSchema> {
  const callId = workflowIdOfCallId(r.callId) ?? r.callId;
  const campaignId = recordsNameOfWorkflowId(callId);
  return {
    name: r.id,
    callId,
    legId: r.callId,
    ...(campaignId !== undefined ? { campaignId } : {}),
    label: r.name,
    durationMs: r.durationMs,
    size: r.size,
    contentType: r.contentType,
    created: r.storedAt,
  };
}

export const recordingRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { nc }) => {
  const recordings = await ObjectRecordingStore.open(nc);

  app.get(
    '/api/recordings',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List recordings, oldest first',
        description: 'As `dialflow recordings list` lists them; filter by campaign, by call, or both.',
        tags: ['recordings'],
        querystring: listQuerySchema,
        response: {
          200: z.object({ recordings: z.array(recordingSchema) }),
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { campaignId, callId } = request.query;
      const stored = await recordings.list(callId !== undefined ? { workflowId: callId } : {});
      const listed = stored
        .map(describeRecording)
        .filter((r) => campaignId === undefined || r.campaignId === campaignId);
      return { recordings: listed };
    },
  );

  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/recordings/:name',
    config: { minRole: 'viewer' },
    schema: {
      summary: 'The audio of a recording',
      description:
        'The audio file (usually audio/wav), with `Accept-Ranges: bytes`: one `Range` gives 206 with `Content-Range`; several ranges give the whole file (200); a range past the end gives 416. HEAD gives the headers only.',
      tags: ['recordings'],
      params: nameParamsSchema,
      response: objectResponses,
    },
    handler: async (request, reply) => {
      const opened = await recordings.open(request.params.name);
      if (!opened)
        return sendError(reply, 404, 'not_found', `no recording "${request.params.name}" (see GET /api/recordings)`);
      const ext = opened.meta.contentType === 'audio/mpeg' ? 'mp3' : 'wav';
      return sendObject(request, reply, {
        size: opened.meta.size,
        contentType: opened.meta.contentType,
        fileName: `${opened.meta.id}.${ext}`,
        read: opened.read,
      });
    },
  });
};
