// Runaway expressions fail like any failing expression: fast, with a clear message, and the
// process (a worker, in production) lives on. Normal expressions are untouched.
import { describe, expect, it } from 'vitest';
import { drive, flowOf } from '../helpers/drive.js';
import {
  EXPRESSION_LIMITS,
  ExpressionError,
  evaluate,
  expressionProblem,
  startExpressionBudget,
} from '../../src/flow/expressions.js';
import { analyzeRegex, regexInputLimit } from '../../src/flow/expression-limits.js';
import { validateFlow } from '../../src/flow/validate.js';

const env = { now: Date.parse('2026-11-23T09:00:00Z'), random: () => 0.25 };
const A40 = 'a'.repeat(40);

/** Evaluates, expecting a failure; returns its message and how long it took. */
async function fails(source: string, data: unknown = {}): Promise<{ message: string; ms: number }> {
  const t0 = performance.now();
  const err = await evaluate(source, data, env).then(
    () => undefined,
    (e: unknown) => e,
  );
  const ms = performance.now() - t0;
  expect(err).toBeInstanceOf(ExpressionError);
  return { message: (err as Error).message, ms };
}

describe('poison expressions', () => {
  it('tail recursion without end stops at the step limit', async () => {
    const { message, ms } = await fails('($f := function($n){ $f($n+1) }; $f(0))');
    expect(message).toMatch(/more than 2500 evaluation steps/);
    expect(ms).toBeLessThan(1000);
  });

  it('non-tail recursion without end stops at the depth limit', async () => {
    const { message, ms } = await fails('($f := function($n){ 1 + $f($n+1) }; $f(0))');
    expect(message).toMatch(/nested more than 400 levels deep/);
    expect(ms).toBeLessThan(1000);
  });

  it('a ten-million-item range is refused before it is allocated', async () => {
    const before = process.memoryUsage().rss;
    const { message, ms } = await fails('$sum([1..10000000].($ * 2))');
    expect(message).toMatch(/a range or sequence of 10000000 items \(at most 100000\)/);
    expect(ms).toBeLessThan(1000);
    expect(process.memoryUsage().rss - before).toBeLessThan(50 * 2 ** 20);
  });

  it('a regular expression that backtracks exponentially is refused, by validate too', async () => {
    const source = `$contains('${A40}!', /^(a+)+$/)`;
    const { message, ms } = await fails(source);
    expect(message).toMatch(/repeats a group that contains a quantifier/);
    expect(ms).toBeLessThan(1000);
    expect(expressionProblem(source)).toMatch(/exponential time/);
    const res = validateFlow({
      id: 'poison',
      version: 1,
      start: 'b',
      elements: [
        { id: 'b', type: 'condition', conditions: [{ if: source, next: 'end' }], else: 'end' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    expect(res.ok).toBe(false);
    expect(JSON.stringify(res)).toMatch(/exponential time/);
  });

  it('a 25M-iteration loop ends at the step limit without growing the heap', async () => {
    const before = process.memoryUsage().rss;
    const { message, ms } = await fails(
      '($loop := function($n, $acc){ $n >= 25000000 ? $acc : $loop($n + 1, $append($acc, $n)) }; $count($loop(0, [])))',
    );
    expect(message).toMatch(/more than 2500 evaluation steps|produced more than 5000000/);
    expect(ms).toBeLessThan(2000);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 2 ** 20);
  });

  it('amplifying built-ins and doubling are refused by size', async () => {
    expect((await fails('$pad("", 100000000)')).message).toMatch(/\$pad to 100000000 characters/);
    expect((await fails('$reduce([1..40], function($acc, $x){ $acc & $acc }, "x")')).message).toMatch(
      /a string of \d+ characters/,
    );
    expect((await fails('$count($reduce([1..40], function($acc, $x){ $append($acc, $acc) }, [1]))')).message).toMatch(
      /at most 100000/,
    );
    expect((await fails('$join([1..10000].$pad("", 99999), "")')).message).toMatch(/produced more than 5000000/);
    expect((await fails('$replace($pad("", 100000, "a"), "a", $pad("", 1000, "b"))')).message).toMatch(
      /\$replace could build/,
    );
    expect((await fails('$distinct([1..20000])')).message).toMatch(/\$distinct of 20000 items/);
  });

  it('a polynomial pattern may scan only as much input as its quantifiers allow', async () => {
    expect((await fails(`$match($pad("", 5000, "a") & "!", /a*a*b/)`)).message).toMatch(
      /may scan at most 464 characters/,
    );
    expect(regexInputLimit({ unbounded: 1, anchored: true })).toBe(EXPRESSION_LIMITS.regexInput);
    expect(regexInputLimit({ unbounded: 3, anchored: true })).toBe(464);
    for (const bad of ['(a|a)+', '(a*)*', '(?:ab?)+', '((a)+b)*', '(a)\\1', '(x+){2,}'])
      expect(analyzeRegex(bad), bad).toHaveProperty('problem');
    for (const ok of ['^[0-9]+$', '^\\+?\\d+[- ]?\\d+$', '(\\d{3}-)+\\d{4}', '(ab)+', '(a+)?', '[(a+)+]', '\\(a+\\)+'])
      expect(analyzeRegex(ok), ok).toHaveProperty('shape');
  });

  it('one interpreter step shares a budget: once spent, later expressions fail at once', async () => {
    startExpressionBudget(4_000);
    expect((await fails('($f := function($n){ $f($n+1) }; $f(0))')).message).toMatch(/more than 2500 evaluation steps/);
    const second = await fails('($f := function($n){ $f($n+1) }; $f(0))');
    expect(second.message).toMatch(/expression budget of this step used up/);
    startExpressionBudget(0);
    expect((await fails('1 + 1')).message).toMatch(/budget of this step used up/);
    startExpressionBudget(Number.POSITIVE_INFINITY);
    expect(await evaluate('1 + 1', {}, env)).toBe(2);
  });
});

describe('bounded expressions in a flow', () => {
  const poisons = [
    '($f := function($n){ $f($n+1) }; $f(0))',
    '($f := function($n){ 1 + $f($n+1) }; $f(0))',
    '$sum([1..10000000].($ * 2))',
  ];

  it.each(poisons)('%s as a setVariable value and a condition: warnings, and the call goes on', async (poison) => {
    const f = flowOf({
      id: 'poison',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'set' } },
        { id: 'set', type: 'setVariable', variable: 'x', value: poison, next: 'check' },
        { id: 'check', type: 'condition', conditions: [{ if: poison, next: 'yes' }], else: 'no' },
        { id: 'yes', type: 'play', tts: { text: 'Yes.' }, next: { played: 'end' } },
        { id: 'no', type: 'play', tts: { text: 'No.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const t0 = performance.now();
    const d = await drive(f, { attempts: ['answered'] });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(d.result.outcome).toBe('answered');
    expect(d.result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'call:answered',
      'set:next',
      'check:else',
      'no:played',
    ]);
    expect(d.result.warnings.map((w) => w.element)).toEqual(['set', 'check']);
    expect(d.result.variables).not.toHaveProperty('x');
  });
});

describe('normal expressions', () => {
  it('still evaluate as before', async () => {
    expect(await evaluate('$sum([1..500].($ * 2))', {}, env)).toBe(250500);
    expect(await evaluate('$contains(phone, /^\\+385/)', { phone: '+385915550001' }, env)).toBe(true);
    expect(await evaluate('$replace(name, /o/, "0")', { name: 'Bob Doe' }, env)).toBe('B0b D0e');
    expect(await evaluate('$join(items.name, ", ")', { items: [{ name: 'a' }, { name: 'b' }] }, env)).toBe('a, b');
    expect(await evaluate('$pad("7", -3, "0")', {}, env)).toBe('007');
    expect(await evaluate('$count($distinct([1, 1, 2]))', {}, env)).toBe(2);
    expect(await evaluate('($fact := function($n){ $n <= 1 ? 1 : $n * $fact($n - 1) }; $fact(20))', {}, env)).toBe(
      2432902008176640000,
    );
    expect(await evaluate('$now()', {}, env)).toBe('2026-11-23T09:00:00.000Z');
  });
});
