// /api/dnc: the do-not-call list every outbound call is checked against (the NATS KV bucket
// `dialflow dnc` manages): check a number, add one with a reason, remove one, and import a file in
// the format of `dialflow dnc add --file` (one number per line, or CSV with the number first),
// streamed line by line with the bad lines reported and the good ones applied.
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DoNotCallList, readDoNotCallLines } from '../../store/dnc.js';
import { normaliseInternationalNumber } from '../../store/phones.js';
import { audited, sendError } from '../auth.js';
import { limitedBody, UploadTooLargeError } from '../uploads.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema } from '../schemas.js';

/** A do-not-call file of a million numbers is about 15 MB; twice that bounds what one import reads. */
export const DNC_IMPORT_MAX_BYTES = 32 * 1024 * 1024;
/** Problems listed in an import's answer (all are counted). */
const MAX_LISTED_PROBLEMS = 100;
/** Numbers written to the KV bucket at once during an import. */
const IMPORT_BATCH = 256;

const phoneParamsSchema = z.object({
  phone: z
    .string()
    .min(1)
    .max(40)
    .describe('an international number, e.g. +14155550100 (URL-encode the "+" as %2B or keep it)'),
});

const entrySchema = z.object({
  phone: z.string().describe('the number in E.164'),
  listed: z.boolean(),
  addedAt: z.string().optional().describe('ISO 8601 time it was added'),
  by: z.string().optional().describe('who added it: a token or user name, or "cli"'),
  reason: z.string().optional(),
});

const addBodySchema = z
  .object({ reason: z.string().trim().min(1).max(200).optional().describe('why, e.g. "asked on 2026-11-20"') })
  .strict()
  .nullish();

const importResponseSchema = z.object({
  added: z.number().int().describe('numbers added (or whose entry was refreshed)'),
  problemCount: z.number().int().describe('lines with digits but no valid international number'),
  problems: z
    .array(z.object({ line: z.number().int(), message: z.string() }))
    .describe(`the first ${MAX_LISTED_PROBLEMS} bad lines; the others were applied`),
});

export const dncRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { nc, audit }) => {
  const list = await DoNotCallList.open(nc);
  // The import reads the request as it arrives: the parser hands the raw stream on.
  for (const type of ['text/csv', 'text/plain'])
    app.addContentTypeParser(type, (_request, payload, done) => done(null, payload));

  const invalidPhone = (raw: string) =>
    `${JSON.stringify(raw.slice(0, 40))} is not a valid international number (E.164, e.g. +14155550100)`;
  const commonErrors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema };

  app.get(
    '/api/dnc/:phone',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Is a number on the do-not-call list?',
        tags: ['do-not-call'],
        params: phoneParamsSchema,
        response: { 200: entrySchema, ...commonErrors },
      },
    },
    async (request, reply) => {
      const phone = normaliseInternationalNumber(request.params.phone);
      if (!phone) return sendError(reply, 400, 'phone.invalid', invalidPhone(request.params.phone));
      const entry = await list.get(phone);
      return { phone, listed: entry !== undefined, ...entry };
    },
  );

  app.put(
    '/api/dnc/:phone',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Add a number to the do-not-call list',
        description: 'From now on no call, of any campaign or direct, dials it. A JSON body with a reason is optional.',
        tags: ['do-not-call'],
        params: phoneParamsSchema,
        body: addBodySchema,
        response: {
          200: entrySchema.describe('it was listed already: its entry now has this reason'),
          201: entrySchema.describe('added'),
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const phone = normaliseInternationalNumber(request.params.phone);
      if (!phone) return sendError(reply, 400, 'phone.invalid', invalidPhone(request.params.phone));
      const before = await list.get(phone);
      const reason = request.body?.reason;
      const entry = await list.add(phone, {
        ...(request.principal ? { by: request.principal.name } : {}),
        ...(reason !== undefined ? { reason } : {}),
      });
      await audited(audit, request, 'dnc.add', { phone }, before ? 'updated' : 'added');
      return reply.code(before ? 200 : 201).send({ phone, listed: true, ...entry });
    },
  );

  app.delete(
    '/api/dnc/:phone',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Remove a number from the do-not-call list',
        tags: ['do-not-call'],
        params: phoneParamsSchema,
        response: {
          204: z.null().describe('removed'),
          ...commonErrors,
          404: errorBodySchema.describe('the number is not listed'),
        },
      },
    },
    async (request, reply) => {
      const phone = normaliseInternationalNumber(request.params.phone);
      if (!phone) return sendError(reply, 400, 'phone.invalid', invalidPhone(request.params.phone));
      if (!(await list.remove(phone)))
        return sendError(reply, 404, 'not_found', `${phone} is not on the do-not-call list`);
      await audited(audit, request, 'dnc.remove', { phone }, 'removed');
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/dnc/import',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Add the numbers of a file to the do-not-call list',
        description: `Content-Type text/csv (or text/plain): one number per line, or CSV with the number in the first column, as \`dialflow dnc add --file\` reads it; lines without a digit (header, blank) are skipped. Each number must be international and valid (E.164 once spaces and punctuation are gone, as PUT /api/dnc/{phone} takes it): a national number such as 091 555 0000 is a bad line. Streamed, at most ${DNC_IMPORT_MAX_BYTES / 2 ** 20} MB. Bad lines are reported with their line number; the good ones are added.`,
        tags: ['do-not-call'],
        response: { 200: importResponseSchema, ...commonErrors, 413: errorBodySchema, 415: errorBodySchema },
      },
    },
    async (request, reply) => {
      const declared = Number(request.headers['content-length'] ?? NaN);
      if (declared > DNC_IMPORT_MAX_BYTES)
        return sendError(reply, 413, 'payload_too_large', `the file is larger than ${DNC_IMPORT_MAX_BYTES} bytes`);
      const body = request.body;
      // Only the CSV parsers of this route hand the stream on; JSON would arrive parsed.
      if (!(body instanceof Readable))
        return sendError(reply, 415, 'unsupported_media_type', 'send the file as text/csv (or text/plain)');
      const limited = limitedBody(body, DNC_IMPORT_MAX_BYTES, `the file is larger than ${DNC_IMPORT_MAX_BYTES} bytes`);
      const by = request.principal?.name;
      let added = 0;
      let problemCount = 0;
      const problems: Array<{ line: number; message: string }> = [];
      let batch: Array<Promise<unknown>> = [];
      try {
        for await (const parsed of readDoNotCallLines(limited)) {
          if ('problem' in parsed) {
            problemCount += 1;
            if (problems.length < MAX_LISTED_PROBLEMS) problems.push({ line: parsed.line, message: parsed.problem });
            continue;
          }
          batch.push(list.add(parsed.phone, { ...(by ? { by } : {}), reason: 'import' }));
          added += 1;
          if (batch.length >= IMPORT_BATCH) {
            await Promise.all(batch);
            batch = [];
          }
        }
        await Promise.all(batch);
      } catch (err) {
        await Promise.allSettled(batch);
        if (!(err instanceof UploadTooLargeError)) throw err;
        // What was read before the limit is in the list: the audit log says how much.
        await audited(audit, request, 'dnc.import', { added, problems: problemCount }, 'tooLarge');
        // The client is still sending: close the connection once answered rather than read the rest.
        reply.raw.once('finish', () => request.raw.destroy());
        return sendError(
          reply.header('connection', 'close'),
          413,
          'payload_too_large',
          `${err.message}; ${added} number(s) were added before it`,
        );
      }
      await audited(audit, request, 'dnc.import', { added, problems: problemCount }, 'imported');
      return { added, problemCount, problems };
    },
  );
};
