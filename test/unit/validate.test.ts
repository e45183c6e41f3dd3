import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { validateFlow, AUTO_HANGUP_ID } from '../../src/flow/validate.js';
import type { FlowInput } from '../../src/flow/schema.js';

type Els = FlowInput['elements'];
const flow = (elements: unknown[], extra: Record<string, unknown> = {}) => ({
  id: 'f',
  version: 1,
  start: (elements[0] as { id: string }).id,
  elements,
  ...extra,
});
const call = (next: Record<string, unknown> = { answered: 'end' }, more: Record<string, unknown> = {}) => ({
  id: 'call',
  type: 'startOutgoingCall',
  from: '+14155550100',
  next,
  ...more,
});
const end = { id: 'end', type: 'hangUp' };
const codes = (doc: unknown) => validateFlow(doc).issues.map((i) => `${i.severity}:${i.code}`);
const issue = (doc: unknown, code: string) => validateFlow(doc).issues.find((i) => i.code === code);

describe('validator: fields and limits (schema)', () => {
  it('accepts a minimal outbound flow', () => {
    expect(validateFlow(flow([call(), end])).ok).toBe(true);
  });
  it('at most 100 elements', () => {
    const many = Array.from({ length: 101 }, (_, i) => ({
      id: `h${i}`,
      type: 'hangUp',
      ...(i < 100 ? { next: `h${i + 1}` } : {}),
    }));
    expect(codes(flow(many))).toContain('error:flow.tooManyElements');
  });
  it('TTS text is at most 160 characters', () => {
    const r = issue(
      flow([call({ answered: 'p' }), { id: 'p', type: 'play', tts: { text: 'x'.repeat(161) } }]),
      'field.tooBig',
    );
    expect(r).toMatchObject({ elementId: 'p', path: 'elements[1].tts.text' });
  });
  it('unsupported audio type names the element and the field', () => {
    const r = issue(
      flow([call({ answered: 'p' }), { id: 'p', type: 'play', audio: { url: 'https://x.example.com/a.ogg' } }]),
      'audio.unsupportedType',
    );
    expect(r).toMatchObject({ elementId: 'p', path: 'elements[1].audio.url' });
    expect(
      issue(
        flow([call({ answered: 'p' }), { id: 'p', type: 'play', audio: { file: 'a.flac' } }]),
        'audio.unsupportedType',
      ),
    ).toBeDefined();
    expect(
      issue(
        flow([call({ answered: 'p' }), { id: 'p', type: 'play', audio: { file: 'a.mp3', sizeBytes: 5_000_000 } }]),
        'field.tooBig',
      )?.message,
    ).toMatch(/4 MB/);
  });
  it('play needs exactly one audio source', () => {
    expect(codes(flow([call({ answered: 'p' }), { id: 'p', type: 'play' }]))).toContain('error:play.audioSource');
  });
  it('pause before the first play is 0–5 s', () => {
    expect(
      issue(
        flow([call({ answered: 'p' }), { id: 'p', type: 'play', tts: { text: 'a' }, pauseSeconds: 6 }]),
        'field.tooBig',
      )?.path,
    ).toBe('elements[1].pauseSeconds');
  });
  it('# can never be a response; responses are not longer than maxDigits', () => {
    const c = codes(
      flow([
        call({ answered: 'c' }),
        { id: 'c', type: 'collect', maxDigits: 2, responses: { '1#': 'end', '123': 'end', a: 'end' } },
        end,
      ]),
    );
    expect(c).toEqual(
      expect.arrayContaining([
        'error:collect.hashResponse',
        'error:collect.responseTooLong',
        'error:collect.responseFormat',
      ]),
    );
  });
  it('maxDigits is at least 1', () => {
    expect(
      issue(flow([call({ answered: 'c' }), { id: 'c', type: 'collect', maxDigits: 0 }]), 'field.tooSmall')?.path,
    ).toBe('elements[1].maxDigits');
  });
  it('validity period at most 48 h; retry range ordered', () => {
    expect(codes(flow([call({}, { validityPeriod: { value: 49, unit: 'hours' } })]))).toContain(
      'error:validity.tooLong',
    );
    expect(codes(flow([call({}, { validityPeriod: { value: 2881, unit: 'minutes' } })]))).toContain(
      'error:validity.tooLong',
    );
    expect(codes(flow([call({}, { retry: { minMinutes: 10, maxMinutes: 5, count: 1 } })]))).toContain(
      'error:retry.range',
    );
  });
  it('delivery window: valid zone, from before to', () => {
    expect(
      codes(
        flow([call({}, { deliveryWindow: { days: ['MON'], from: '09:00', to: '17:00', timeZone: 'Mars/Olympus' } })]),
      ),
    ).toContain('error:field.timeZone');
    expect(codes(flow([call({}, { deliveryWindow: { days: ['MON'], from: '18:00', to: '09:00' } })]))).toContain(
      'error:window.empty',
    );
    expect(codes(flow([call({}, { deliveryWindow: { days: ['MON'], from: '9:00', to: '17:00' } })]))).toContain(
      'error:field.format',
    );
  });
  it('forward destinations: phone, SIP, WebRTC or a placeholder', () => {
    const f = (to: string) =>
      flow([
        call({ answered: 'f' }),
        {
          id: 'f',
          type: 'forwardCall',
          from: '+14155550100',
          to,
          next: { forwarded: 'end', notForwarded: 'end', callEnded: 'end' },
        },
        end,
      ]);
    for (const ok of ['+385915550000', 'sip:agent@pbx.example.com', 'webrtc:alice', '{{profile.vipManager}}'])
      expect(validateFlow(f(ok)).ok, ok).toBe(true);
    expect(codes(f('agent'))).toContain('error:field.destination');
  });
  it('unknown element type and unknown fields', () => {
    expect(codes(flow([call({ answered: 'x' }), { id: 'x', type: 'dance' }]))).toContain('error:element.unknownType');
    expect(issue(flow([call({}, { colour: 'red' })]), 'field.unknown')).toMatchObject({
      path: 'elements[0].colour',
      message: 'unknown field "colour"',
    });
  });
  it('missing required fields', () => {
    expect(issue(flow([{ id: 'call', type: 'startOutgoingCall' }]), 'field.required')).toMatchObject({
      elementId: 'call',
      path: 'elements[0].from',
    });
  });
});

describe('validator: graph rules', () => {
  it('unique ids', () => {
    expect(issue(flow([call(), end, { id: 'end', type: 'hangUp' }]), 'element.duplicateId')).toMatchObject({
      path: 'elements[2].id',
    });
  });
  it('every next target exists', () => {
    expect(issue(flow([call({ answered: 'nowhere' })]), 'next.unknownTarget')).toMatchObject({
      elementId: 'call',
      path: 'elements[0].next.answered',
    });
  });
  it('no unreachable elements', () => {
    expect(issue(flow([call(), end, { id: 'orphan', type: 'hangUp' }]), 'element.unreachable')).toMatchObject({
      elementId: 'orphan',
    });
  });
  it('IVR elements only inside a call session', () => {
    const r = issue(flow([{ id: 'p', type: 'play', tts: { text: 'hi' } }]), 'session.ivrOutsideSession');
    expect(r).toMatchObject({ elementId: 'p' });
    // After busy (the session never started) and after hangUp.
    expect(
      codes(flow([call({ answered: 'end', busy: 'p' }), end, { id: 'p', type: 'play', tts: { text: 'x' } }])),
    ).toContain('error:session.ivrOutsideSession');
    expect(
      codes(
        flow([
          call({ answered: 'end' }),
          { id: 'end', type: 'hangUp', next: 'c' },
          { id: 'c', type: 'collect', maxDigits: 1 },
        ]),
      ),
    ).toContain('error:session.ivrOutsideSession');
  });
  it('no startOutgoingCall inside an inbound session', () => {
    const r = issue(
      {
        id: 'i',
        version: 1,
        elements: [{ id: 'in', type: 'startIncomingCall', number: '+14155550111', next: 'call' }, call()],
      },
      'session.outgoingInInbound',
    );
    expect(r).toMatchObject({ elementId: 'call' });
  });
  it('no call inside a call; startIncomingCall is only an entry; no pause inside a session', () => {
    expect(codes(flow([call({ answered: 'again' }), { ...call(), id: 'again' }, end]))).toContain(
      'error:session.nestedCall',
    );
    expect(
      codes({
        id: 'i',
        version: 1,
        start: 'a',
        elements: [
          { id: 'a', type: 'setVariable', variable: 'x', value: '1', next: 'in' },
          { id: 'in', type: 'startIncomingCall', number: '+14155550111' },
        ],
      }),
    ).toContain('error:session.incomingNotEntry');
    expect(
      codes(flow([call({ answered: 'wait' }), { id: 'wait', type: 'pause', duration: 'PT1M', next: 'end' }, end])),
    ).toContain('error:session.notAllowedInSession');
  });
  it('hangUp is accepted on any branch, also where the session already ended', () => {
    const r = validateFlow(
      flow([
        call({ answered: 'p', busy: 'end', noAnswer: 'end', declined: 'end', callEnded: 'end' }),
        { id: 'p', type: 'play', tts: { text: 'x' }, next: { played: 'end', hungUp: 'end', callEnded: 'end' } },
        end,
      ]),
    );
    expect(r.ok).toBe(true);
    expect(r.issues).toEqual([]);
  });
  it('open branches inside a session get a hangUp added, each reported', () => {
    const r = validateFlow(
      flow([call({ answered: 'p', voicemail: null }), { id: 'p', type: 'play', tts: { text: 'x' } }]),
    );
    expect(r.ok).toBe(true);
    const warnings = r.issues.filter((i) => i.code === 'session.autoHangUp');
    expect(warnings.map((w) => w.path).sort()).toEqual(['elements[0].next.voicemail', 'elements[1].next.played']);
    const els = r.flow?.elements ?? [];
    expect(els.at(-1)).toMatchObject({ id: AUTO_HANGUP_ID, type: 'hangUp' });
    expect(els[0]).toMatchObject({ next: { voicemail: AUTO_HANGUP_ID } });
    expect(els[1]).toMatchObject({ next: { played: AUTO_HANGUP_ID } });
    // Branches that end the session (hungUp, callEnded, busy …) need no hang-up.
    expect(warnings.some((w) => /hungUp|callEnded|busy/.test(w.path))).toBe(false);
  });
  it('at 100 elements, open branches are left to the automatic hang-up of the call: no 101st element', () => {
    /** call, `fillers` setVariables, an open play, and a hangUp: `fillers + 3` elements. */
    const build = (fillers: number) =>
      flow(
        [
          call({ answered: 's0', voicemail: null, busy: 'end' }),
          ...Array.from({ length: fillers }, (_, i) => ({
            id: `s${i}`,
            type: 'setVariable',
            variable: 'n',
            value: `${i}`,
            next: i < fillers - 1 ? `s${i + 1}` : 'p',
          })),
          { id: 'p', type: 'play', tts: { text: 'x' } },
          end,
        ],
        { variables: { n: { type: 'number' } } },
      );
    const full = build(97);
    expect(full.elements).toHaveLength(100);
    const r = validateFlow(full);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.flow?.elements).toHaveLength(100);
    expect(r.flow?.elements.some((e) => e.id === AUTO_HANGUP_ID)).toBe(false);
    const warnings = r.issues.filter((i) => i.code === 'session.autoHangUp');
    expect(warnings.map((w) => w.path).sort()).toEqual(['elements[0].next.voicemail', 'elements[98].next.played']);
    expect(warnings.every((w) => /hung up automatically/.test(w.message))).toBe(true);
    // The normalised flow validates again as it is (the flow store parses what it stored).
    const again = validateFlow(JSON.parse(JSON.stringify(r.flow)));
    expect(again.ok).toBe(true);
    expect(again.flow?.elements).toHaveLength(100);
    // One element fewer: there is room, and the shared hang-up element is added as before.
    const roomy = validateFlow(build(96));
    expect(roomy.flow?.elements).toHaveLength(100);
    expect(roomy.flow?.elements.at(-1)).toMatchObject({ id: AUTO_HANGUP_ID, type: 'hangUp' });
    expect(validateFlow(JSON.parse(JSON.stringify(roomy.flow))).ok).toBe(true);
  });
  it('interruptible play: a warning unless its played branch leads to a collect', () => {
    const collect = {
      id: 'ask',
      type: 'collect',
      maxDigits: 1,
      saveTo: 'choice',
      next: { noMatch: 'end' },
    };
    const menu = (played: string | null) => ({
      id: 'menu',
      type: 'play',
      tts: { text: 'Press 1.' },
      interruptible: true,
      next: { played, hungUp: 'end', callEnded: 'end' },
    });
    const vars = { variables: { choice: { type: 'string' } } };
    const code = 'play.interruptibleWithoutCollect';
    expect(issue(flow([call({ answered: 'menu' }), menu('ask'), collect, end], vars), code)).toBeUndefined();
    const viaSet = flow(
      [
        call({ answered: 'menu' }),
        menu('set'),
        { id: 'set', type: 'setVariable', variable: 'choice', value: '"none"', next: 'ask' },
        collect,
        end,
      ],
      vars,
    );
    const r = validateFlow(viaSet);
    expect(r.ok).toBe(true);
    expect(r.issues.find((i) => i.code === code)).toEqual({
      severity: 'warning',
      code,
      elementId: 'menu',
      path: 'elements[1].interruptible',
      message: expect.stringMatching(/played.*collect/),
    });
    expect(issue(flow([call({ answered: 'menu' }), menu('end'), end]), code)).toMatchObject({ severity: 'warning' });
    expect(issue(flow([call({ answered: 'menu' }), menu(null), end]), code)).toMatchObject({
      path: 'elements[1].interruptible',
    });
    // Not interruptible: nothing to say.
    const plain = { ...menu('end'), interruptible: false };
    expect(issue(flow([call({ answered: 'menu' }), plain, end]), code)).toBeUndefined();
  });
  it('more than 3 retries is a warning', () => {
    const r = validateFlow(flow([call({}, { retry: { minMinutes: 1, maxMinutes: 2, count: 4 } })]));
    expect(r.ok).toBe(true);
    expect(r.issues.find((i) => i.code === 'retry.tooMany')).toMatchObject({
      severity: 'warning',
      path: 'elements[0].retry.count',
    });
  });
  it('duplicate numbers of startIncomingCall; inbound flows need no start', () => {
    const inbound = (n2: string) => ({
      id: 'i',
      version: 1,
      elements: [
        { id: 'a', type: 'startIncomingCall', number: '+14155550111', next: 'end' },
        { id: 'b', type: 'startIncomingCall', number: n2, next: 'end' },
        end,
      ],
    });
    expect(validateFlow(inbound('+14155550112')).ok).toBe(true);
    expect(codes(inbound('14155550111'))).toContain('error:incoming.duplicateNumber');
    expect(codes({ id: 'x', version: 1, elements: [end] })).toContain('error:flow.noEntry');
  });
  it('expression syntax, unknown placeholders and variables', () => {
    expect(
      issue(
        flow([{ id: 'a', type: 'condition', conditions: [{ if: 'vars.x = ', next: 'end' }], else: 'end' }, end]),
        'expression.syntax',
      ),
    ).toMatchObject({ path: 'elements[0].conditions[0].if' });
    expect(
      codes(
        flow([
          call({ answered: 'p' }),
          { id: 'p', type: 'play', tts: { text: 'Hi {{user.name}}' }, next: { played: 'end' } },
          end,
        ]),
      ),
    ).toContain('error:template.unknownRoot');
    expect(
      codes(
        flow([
          call({ answered: 'p' }),
          { id: 'p', type: 'play', tts: { text: 'Hi {{vars.nope}}' }, next: { played: 'end' } },
          end,
        ]),
      ),
    ).toContain('warning:template.unknownVariable');
    expect(
      codes(
        flow([
          call({ answered: 'c' }),
          { id: 'c', type: 'collect', maxDigits: 1, saveTo: 'choice', next: { noMatch: 'end' } },
          end,
        ]),
      ),
    ).toContain('warning:variable.undeclared');
  });
  it('reports every problem at once', () => {
    const r = validateFlow(
      flow([
        call({ answered: 'ghost' }, { retry: { minMinutes: 1, maxMinutes: 2, count: 5 } }),
        { id: 'p', type: 'play', tts: { text: 'hi' } },
        { id: 'p', type: 'hangUp' },
      ]),
    );
    expect(r.issues.map((i) => i.code)).toEqual(
      expect.arrayContaining(['element.duplicateId', 'next.unknownTarget', 'element.unreachable', 'retry.tooMany']),
    );
  });
});

describe('validator: examples', () => {
  const dir = new URL('../../examples/', import.meta.url);
  const files = readdirSync(dir).filter((f) => /\.(json|ya?ml)$/.test(f) && !f.includes('recipients'));
  it.each(files)('%s validates without errors', (f) => {
    const text = readFileSync(new URL(f, dir), 'utf8');
    const r = validateFlow(f.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('validator: fuzz', () => {
  const base: Els = [
    {
      id: 'call',
      type: 'startOutgoingCall',
      from: '+14155550100',
      retry: { minMinutes: 1, maxMinutes: 5, count: 2 },
      next: { answered: 'menu', busy: 'end' },
    },
    { id: 'menu', type: 'play', tts: { text: 'Press 1' }, next: { played: 'ask' } },
    { id: 'ask', type: 'collect', maxDigits: 1, responses: { '1': 'end' }, next: { noMatch: 'menu' } },
    { id: 'end', type: 'hangUp' },
  ];
  const mutate = (doc: unknown, path: Array<string | number>, value: unknown): unknown => {
    if (path.length === 0) return value;
    const [head, ...rest] = path;
    if (Array.isArray(doc)) {
      const copy = [...doc];
      copy[Number(head) % Math.max(1, copy.length)] = mutate(
        copy[Number(head) % Math.max(1, copy.length)],
        rest,
        value,
      );
      return copy;
    }
    if (doc && typeof doc === 'object') {
      const keys = Object.keys(doc);
      const key = typeof head === 'number' && keys.length > 0 ? (keys[head % keys.length] as string) : String(head);
      return { ...(doc as Record<string, unknown>), [key]: mutate((doc as Record<string, unknown>)[key], rest, value) };
    }
    return value;
  };

  it('never throws and always returns a structured result (random documents)', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 5 }), (doc) => {
        const r = validateFlow(doc);
        expect(typeof r.ok).toBe('boolean');
        for (const i of r.issues)
          expect(i).toEqual(
            expect.objectContaining({
              severity: expect.any(String),
              code: expect.any(String),
              path: expect.any(String),
              message: expect.any(String),
            }),
          );
        if (!r.ok) expect(r.issues.some((i) => i.severity === 'error')).toBe(true);
      }),
      { numRuns: 600, seed: 20261123 },
    );
  });

  it('never throws on mutated valid documents', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.nat(8),
            fc.constantFrom('next', 'type', 'tts', 'responses', 'retry', 'elements', 'start', 'maxDigits'),
          ),
          { minLength: 1, maxLength: 5 },
        ),
        fc.anything({ maxDepth: 3 }),
        (path, value) => {
          const doc = mutate(flow(base as unknown[]), ['elements', ...path], value);
          const r = validateFlow(doc);
          expect(Array.isArray(r.issues)).toBe(true);
          if (r.ok) expect(r.flow).toBeDefined();
        },
      ),
      { numRuns: 600, seed: 7 },
    );
  });
});
