// /api/assets: audio files for Play's `audio.file` (the NATS object store `dialflow flows publish`
// uploads to), uploaded as a raw body, checked by content, listed and streamed; and
// /api/tts/preview: a play element's text-to-speech, rendered as the SIP provider renders it.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AudioAssetError, UPLOAD_NAME, contentTypeOfAudio } from '../../store/assets.js';
import { AUDIO_MAX_BYTES, ttsSchema } from '../../flow/schema.js';
import { InvalidWavError, parseWav, sniffAudio, type AudioKind } from '../../telephony/sip/wav.js';
import { TtsBusyError, TtsPreviewer, TtsUnavailableError } from '../../telephony/tts-preview.js';
import { audited, sendError } from '../auth.js';
import { mediaTypeOf } from '../uploads.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema } from '../schemas.js';
import { objectResponses, sendObject } from './byte-ranges.js';

/** The longest text a preview renders (a play element takes up to 160 characters; a preview may try more). */
export const TTS_PREVIEW_MAX_CHARS = 500;

/** Content types an upload may declare, and the audio they declare. */
const UPLOAD_TYPES: Record<string, AudioKind> = {
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/wave': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/mpeg': 'mp3',
  'audio/mp3': 'mp3',
};

const assetSchema = z.object({
  file: z.string().describe("the name Play's `audio.file` uses"),
  size: z.number().int().describe('bytes'),
  kind: z.enum(['wav', 'mp3']),
  contentType: z.string(),
  created: z.string().describe('ISO 8601 time it was stored'),
});

const nameParamsSchema = z.object({ name: z.string().min(1).max(400) });

const ttsPreviewBodySchema = z
  .object({
    text: z.string().trim().min(1).max(TTS_PREVIEW_MAX_CHARS),
    language: ttsSchema.shape.language,
    voice: ttsSchema.shape.voice,
    rate: ttsSchema.shape.speechRate.describe('1 is 175 words per minute'),
  })
  .strict();

/** Why bytes declared as `kind` are not that audio, or undefined when they are. */
function contentProblem(data: Buffer, kind: AudioKind): string | undefined {
  const sniffed = sniffAudio(data);
  if (!sniffed) return 'not a WAV or MP3 file (by its content)';
  if (sniffed !== kind)
    return `declared ${kind.toUpperCase()} (by its name and type) but its content is ${sniffed.toUpperCase()}`;
  if (kind === 'wav')
    try {
      parseWav(data);
    } catch (err) {
      // Encodings other than 16-bit PCM are converted when played; a broken structure is not audio.
      // Anything else the parser throws is a fault of ours, not of the file: a 500, not a pass.
      if (!(err instanceof InvalidWavError)) throw err;
      return `not a valid WAV file: ${err.message}`;
    }
  return undefined;
}

export const assetRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { assets, audit }) => {
  const tts = new TtsPreviewer();
  // Uploads are at most 4 MB: read whole (the store checks the content before anything is written).
  app.addContentTypeParser(
    Object.keys(UPLOAD_TYPES),
    { parseAs: 'buffer', bodyLimit: AUDIO_MAX_BYTES },
    (_request, body, done) => done(null, body),
  );

  app.post(
    '/api/assets',
    {
      config: { minRole: 'operator' },
      bodyLimit: AUDIO_MAX_BYTES,
      schema: {
        summary: 'Upload an audio file for play elements',
        description:
          "The raw file as the body, `Content-Type: audio/wav` or `audio/mpeg`, at most 4 MB, checked by its content. The name (letters, digits, '.', '-', '_', ending in .wav or .mp3) is what a play element's `audio.file` names; uploading a name again replaces the file.",
        tags: ['assets'],
        querystring: z.object({ name: z.string().min(1).max(200).describe('e.g. greeting.wav') }),
        response: {
          201: assetSchema.extend({ replaced: z.boolean().describe('a file of this name was replaced') }),
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
          413: errorBodySchema,
          415: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { name } = request.query;
      if (!UPLOAD_NAME.test(name))
        return sendError(
          reply,
          400,
          'asset.invalidName',
          `${JSON.stringify(name.slice(0, 60))}: a file name of letters, digits, ".", "-" and "_" (no folders), ending in .wav or .mp3`,
        );
      // Only the audio parsers above hand on a Buffer: JSON (Fastify's own parser) arrives parsed,
      // and a request without a body has none. Neither is a file to check.
      const data: unknown = request.body;
      if (!Buffer.isBuffer(data))
        return sendError(
          reply,
          415,
          'unsupported_media_type',
          'send the file as the raw body, with Content-Type audio/wav or audio/mpeg',
        );
      const declared = UPLOAD_TYPES[mediaTypeOf(request.headers['content-type'])];
      const byName: AudioKind = /\.mp3$/i.test(name) ? 'mp3' : 'wav';
      const problem =
        declared !== undefined && declared !== byName
          ? `the name ${name} says ${byName.toUpperCase()} but the Content-Type is ${contentTypeOfAudio(declared)}`
          : contentProblem(data, byName);
      if (problem) return sendError(reply, 400, 'asset.invalid', `${name}: ${problem}`);
      const replaced = (await assets.open(name)) !== undefined;
      let stored;
      try {
        stored = await assets.put(name, data);
      } catch (err) {
        if (!(err instanceof AudioAssetError)) throw err;
        return sendError(reply, 400, 'asset.invalid', err.message);
      }
      await audited(
        audit,
        request,
        'asset.upload',
        { file: name, size: stored.size },
        replaced ? 'replaced' : 'uploaded',
      );
      return reply.code(201).send({ ...stored, replaced });
    },
  );

  app.get(
    '/api/assets',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List uploaded audio files',
        tags: ['assets'],
        response: { 200: z.object({ assets: z.array(assetSchema) }), 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async () => ({ assets: await assets.list() }),
  );

  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/assets/:name',
    config: { minRole: 'viewer' },
    schema: {
      summary: 'An uploaded audio file',
      description: 'With `Accept-Ranges: bytes` and single byte ranges, as GET /api/recordings/{name}.',
      tags: ['assets'],
      params: nameParamsSchema,
      response: objectResponses,
    },
    handler: async (request, reply) => {
      const opened = await assets.open(request.params.name);
      if (!opened)
        return sendError(reply, 404, 'not_found', `no audio file "${request.params.name}" (see GET /api/assets)`);
      return sendObject(request, reply, {
        size: opened.info.size,
        contentType: opened.info.contentType,
        fileName: opened.info.file,
        read: opened.read,
      });
    },
  });

  app.post(
    '/api/tts/preview',
    {
      // Operator: each preview runs espeak-ng and sox on this host.
      config: { minRole: 'operator' },
      schema: {
        summary: "Hear a play element's text-to-speech",
        description: `Renders the text (at most ${TTS_PREVIEW_MAX_CHARS} characters) as the SIP provider renders a play element's \`tts\`: espeak-ng, 8 kHz mono 16-bit WAV. Headers: \`x-tts-voice\` (the espeak-ng voice used), \`x-tts-duration-ms\`, and \`x-tts-warnings\` (TTS_LANGUAGE_FALLBACK …) when a fallback was taken. At most two previews render at once; a few more wait, beyond that 503 \`tts.busy\`.`,
        tags: ['assets'],
        body: ttsPreviewBodySchema,
        response: {
          200: z.unknown().describe('audio/wav'),
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
          415: errorBodySchema,
          501: errorBodySchema.describe(
            'no text-to-speech engine (espeak-ng and sox) on the API host: tts.unavailable',
          ),
          503: errorBodySchema.describe('too many previews at once: tts.busy, with retry-after'),
        },
      },
    },
    async (request, reply) => {
      const { text, language, voice, rate } = request.body;
      let preview;
      try {
        preview = await tts.render({ text, language, voice, speechRate: rate });
      } catch (err) {
        if (err instanceof TtsUnavailableError) return sendError(reply, 501, 'tts.unavailable', err.message);
        if (err instanceof TtsBusyError)
          return sendError(reply.header('retry-after', '1'), 503, 'tts.busy', `try again in a moment: ${err.message}`);
        throw err;
      }
      reply
        .type('audio/wav')
        .header('cache-control', 'no-store')
        .header('x-tts-voice', preview.voice)
        .header('x-tts-duration-ms', String(preview.durationMs));
      if (preview.warnings.length > 0) reply.header('x-tts-warnings', preview.warnings.map((w) => w.code).join(', '));
      return reply.send(preview.wav);
    },
  );
};
