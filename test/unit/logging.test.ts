// The services' logger: one JSON line per record (time, level, component, msg, fields), levels from
// config, masked input redacted by field name and, given a Redactor, by value; Temporal's logs
// through the same logger.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, REDACTED, temporalLevel, temporalLogger, type LogLevel } from '../../src/logging.js';
import { Redactor } from '../../src/cli/masking.js';

function capture(level: LogLevel, redactor?: Redactor) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger('worker', level, { destination, ...(redactor ? { redactor } : {}) });
  return { log, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), lines };
}

describe('createLogger', () => {
  it('writes one JSON line per record with time, level, component, fields and msg', () => {
    const { log, records, lines } = capture('info');
    log.info({ callId: 'call:c:r1~+385', attempt: 2 }, 'signal refused');
    log.warn('alone');
    expect(lines).toHaveLength(2);
    const [first, second] = records();
    expect(first).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      component: 'worker',
      callId: 'call:c:r1~+385',
      attempt: 2,
      msg: 'signal refused',
    });
    expect(second).toMatchObject({ level: 'warn', component: 'worker', msg: 'alone' });
  });

  it('drops records below the configured level', () => {
    const { log, records } = capture('warn');
    log.debug('no');
    log.info('no');
    log.warn('yes');
    log.error('yes');
    expect(records().map((r) => r.level)).toEqual(['warn', 'error']);
  });

  it('serialises errors with their name, message and stack', () => {
    const { log, records } = capture('info');
    log.error({ err: new TypeError('boom') }, 'failed');
    expect(records()[0]?.err).toMatchObject({ type: 'TypeError', message: 'boom', stack: expect.any(String) });
  });

  it('redacts digits, prompt texts, bodies and credentials by field name, nested too', () => {
    const { log, lines } = capture('info');
    log.info(
      {
        dtmf: '4711',
        event: { type: 'DTMF_CAPTURED', properties: { dtmf: '4711' } },
        batch: { events: { first: { properties: { dtmf: '4711' } } } },
        command: { action: 'say', text: 'You entered 4711' },
        request: { headers: { authorization: 'Bearer s3cret' }, body: '{"pin":"4711"}' },
        password: 's3cret',
      },
      'event',
    );
    expect(lines[0]).not.toContain('4711');
    expect(lines[0]).not.toContain('s3cret');
    expect(lines[0]).toContain(REDACTED);
    expect(lines[0]).toContain('DTMF_CAPTURED');
  });

  it('redacts the bindings of a child logger too', () => {
    const { log, records } = capture('info');
    log.child({ module: 'outbox', event: { properties: { dtmf: '4711' } } }).info('published');
    expect(records()[0]).toMatchObject({
      component: 'worker',
      module: 'outbox',
      event: { properties: { dtmf: REDACTED } },
      msg: 'published',
    });
  });

  it("redacts known masked values everywhere with the CLI's Redactor", () => {
    const redactor = new Redactor();
    redactor.add('4711#', 'masked');
    const { log, lines } = capture('info', redactor);
    log.warn({ note: 'typed 4711', err: new Error('expression failed on 4711') }, 'caller said 4711');
    log.info('plain 4711');
    expect(lines.join('\n')).not.toContain('4711');
    expect(lines[0]).toContain('typed xxxx');
    expect(lines[0]).toContain('caller said xxxx');
    expect(lines[0]).toContain('"type":"Error"');
  });
});

describe("Temporal's logs", () => {
  it('arrive as records of the same logger, with their metadata as fields', () => {
    const { log, records } = capture('info');
    const temporal = temporalLogger(log);
    temporal.info('Worker state changed', { sdkComponent: 'worker', state: 'RUNNING' });
    temporal.debug('Activity started', { sdkComponent: 'activity' });
    temporal.log('WARN', 'call failed', { sdkComponent: 'workflow', workflowId: 'call:c:r1', [Symbol('t')]: 1n });
    expect(records()).toEqual([
      expect.objectContaining({ level: 'info', sdkComponent: 'worker', state: 'RUNNING', msg: 'Worker state changed' }),
      expect.objectContaining({ level: 'warn', sdkComponent: 'workflow', workflowId: 'call:c:r1', msg: 'call failed' }),
    ]);
  });

  it("take the SDK's level from the config's", () => {
    expect(temporalLevel('debug')).toBe('DEBUG');
    expect(temporalLevel('info')).toBe('INFO');
    expect(temporalLevel('warn')).toBe('WARN');
    expect(temporalLevel('error')).toBe('ERROR');
  });
});
