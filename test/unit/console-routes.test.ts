// The console's routes when console/dist has not been built: `/` and the app's paths answer 503
// with a one-line hint (run setup), /api paths are untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { consoleRoutes } from '../../src/api/routes/console.js';
import type { ApiDeps } from '../../src/api/deps.js';

let app: FastifyInstance;
let emptyDist: string;

beforeAll(async () => {
  emptyDist = mkdtempSync(join(tmpdir(), 'dialflow-console-'));
  app = Fastify();
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: 'no route' } }),
  );
  // The console's routes use none of the API's stores.
  await app.register(consoleRoutes, { consoleDist: emptyDist } as ApiDeps & { consoleDist: string });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  rmSync(emptyDist, { recursive: true, force: true });
});

describe('console routes without a build', () => {
  it('answers 503 with the setup hint on / and the app paths', async () => {
    for (const url of ['/', '/flows', '/campaigns/x']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(503);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toContain('npm run setup');
      expect(res.body.trim().split('\n')).toHaveLength(1);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('leaves /api paths to the JSON 404 and missing assets 404', async () => {
    const api = await app.inject({ method: 'GET', url: '/api/nothing' });
    expect(api.statusCode).toBe(404);
    expect(api.json()).toEqual({ error: { code: 'not_found', message: 'no route' } });
    expect((await app.inject({ method: 'GET', url: '/assets/index.js' })).statusCode).toBe(404);
  });
});
