// Conditions and data manipulation in JSONata (the expression language AWS Step Functions chose),
// made deterministic: `$now()`, `$millis()` and `$random()` are bound to the event time and the
// interpreter's seeded PRNG, so an expression gives the same value live and on replay.
// Missing values are `undefined` in JSONata: a condition on a missing value is false, `setVariable`
// with a missing value removes the variable, and templates render it as an empty string.
//
// Every evaluation is bounded in steps, depth and size (see expression-limits.ts): a runaway
// expression fails like any failing expression instead of taking its worker down.
import jsonata from 'jsonata';
import { BoundedRegExp, EXPRESSION_LIMITS, ExpressionLimitError, regexProblem } from './expression-limits.js';

export { EXPRESSION_LIMITS, ExpressionLimitError } from './expression-limits.js';

export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';
  constructor(
    message: string,
    readonly expression: string,
    readonly position?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// `sequence` makes JSONata refuse a range or sequence beyond the cap before allocating it.
const JSONATA_OPTIONS = {
  sequence: EXPRESSION_LIMITS.sequence,
  RegexEngine: BoundedRegExp as unknown as RegExpConstructor,
};

const cache = new Map<string, jsonata.Expression>();
const CACHE_LIMIT = 2000;

/** Regular expression literals in a compiled expression (its AST is a tree of plain objects). */
function regexLiterals(node: unknown, found: RegExp[] = [], seen = new Set<unknown>()): RegExp[] {
  if (node === null || typeof node !== 'object' || seen.has(node)) return found;
  seen.add(node);
  if (node instanceof RegExp) {
    found.push(node);
    return found;
  }
  for (const v of Array.isArray(node) ? node : Object.values(node)) regexLiterals(v, found, seen);
  return found;
}

export function compileExpression(source: string): jsonata.Expression {
  const hit = cache.get(source);
  if (hit) return hit;
  let compiled: jsonata.Expression;
  try {
    compiled = jsonata(source, JSONATA_OPTIONS);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    throw new ExpressionError(
      `${e.message ?? 'invalid expression'}${e.position !== undefined ? ` (at character ${e.position})` : ''}`,
      source,
      e.position,
      { cause: err },
    );
  }
  // A pattern that can backtrack exponentially is refused here, so `validate` reports it.
  for (const re of regexLiterals(compiled.ast())) {
    const problem = regexProblem(re);
    if (problem !== undefined) throw new ExpressionError(problem, source);
  }
  compiled.assign(Symbol.for('jsonata.__evaluate_entry') as unknown as string, onEntry);
  compiled.assign(Symbol.for('jsonata.__evaluate_exit') as unknown as string, onExit);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(source, compiled);
  return compiled;
}

/** Syntax check without evaluating. */
export function expressionProblem(source: string): string | undefined {
  try {
    compileExpression(source);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export interface ExpressionEnv {
  /** Epoch ms of the event being handled. */
  now: number;
  random: () => number;
}

// --- limits ---------------------------------------------------------------------------------------

interface Meter {
  steps: number;
  stepLimit: number;
  /** The step limit comes from the activation's shared budget, not the expression's own. */
  pooled: boolean;
  allocated: number;
}

/** JSONata's evaluation frame, as its hooks receive it (not in its type declarations). */
interface Frame {
  lookup(name: string): unknown;
  bind(name: string, value: unknown): void;
  base: Frame & { depth: number };
}

// The meter rides in the evaluation's own bindings; a name with a space cannot be written as a
// JSONata variable, so no expression can read it.
const METER = 'dialflow meter';

function meterOf(env: Frame): Meter {
  const m = env.base.lookup(METER) as Meter | undefined;
  if (m) return m;
  // Evaluated without `evaluate` below: still bounded, by the expression's own limits.
  const own: Meter = { steps: 0, stepLimit: EXPRESSION_LIMITS.steps, pooled: false, allocated: 0 };
  env.base.bind(METER, own);
  return own;
}

function onEntry(_expr: unknown, _input: unknown, env: Frame): void {
  const m = meterOf(env);
  if (++m.steps > m.stepLimit) {
    throw new ExpressionLimitError(
      m.pooled
        ? `expression budget of this step used up (${EXPRESSION_LIMITS.stepsPerActivation} evaluation steps shared by all expressions between two waits)`
        : `more than ${m.stepLimit} evaluation steps: an endless loop or recursion?`,
    );
  }
  if (env.base.depth > EXPRESSION_LIMITS.depth)
    throw new ExpressionLimitError(`nested more than ${EXPRESSION_LIMITS.depth} levels deep: a recursion without end?`);
}

function onExit(_expr: unknown, _input: unknown, env: Frame, result: unknown): void {
  let size = 0;
  if (typeof result === 'string') {
    if (result.length > EXPRESSION_LIMITS.string)
      throw new ExpressionLimitError(`a string of ${result.length} characters (at most ${EXPRESSION_LIMITS.string})`);
    size = result.length;
  } else if (Array.isArray(result)) {
    if (result.length > EXPRESSION_LIMITS.sequence)
      throw new ExpressionLimitError(`an array of ${result.length} items (at most ${EXPRESSION_LIMITS.sequence})`);
    size = result.length;
  }
  if (size === 0) return;
  const m = meterOf(env);
  m.allocated += size;
  if (m.allocated > EXPRESSION_LIMITS.allocated)
    throw new ExpressionLimitError(
      `produced more than ${EXPRESSION_LIMITS.allocated} characters and array items in all`,
    );
}

/** A JSONata function value (what `$pad` evaluates to). */
interface JsonataFunction {
  _jsonata_function: true;
  implementation: (this: unknown, ...args: unknown[]) => unknown;
  signature?: unknown;
}

const len = (v: unknown): number => (typeof v === 'string' ? v.length : 0);

/** Checks on the arguments of the built-ins that turn a small input into a huge output or a long run. */
const ARGUMENT_CHECKS: Record<string, (args: unknown[]) => string | undefined> = {
  pad: ([, width]) =>
    typeof width === 'number' && Math.abs(width) > EXPRESSION_LIMITS.string
      ? `$pad to ${width} characters (at most ${EXPRESSION_LIMITS.string})`
      : undefined,
  join: ([strs, sep]) => {
    if (!Array.isArray(strs)) return undefined;
    const total = strs.reduce((n: number, s) => n + len(s), 0) + Math.max(0, strs.length - 1) * len(sep);
    return total > EXPRESSION_LIMITS.string
      ? `$join would build ${total} characters (at most ${EXPRESSION_LIMITS.string})`
      : undefined;
  },
  replace: ([str, pattern, replacement, limit]) => {
    if (typeof str !== 'string' || typeof replacement !== 'string') return undefined;
    // Every match is at least one character long (JSONata refuses empty ones).
    let matches = typeof pattern === 'string' && pattern.length > 0 ? str.split(pattern).length - 1 : str.length;
    if (typeof limit === 'number') matches = Math.min(matches, Math.max(0, limit));
    const total = str.length + matches * replacement.length;
    return total > EXPRESSION_LIMITS.string
      ? `$replace could build ${total} characters (at most ${EXPRESSION_LIMITS.string})`
      : undefined;
  },
  distinct: ([arr]) =>
    Array.isArray(arr) && arr.length > EXPRESSION_LIMITS.distinct
      ? `$distinct of ${arr.length} items (at most ${EXPRESSION_LIMITS.distinct})`
      : undefined,
};

let guarded: Promise<Record<string, JsonataFunction>> | undefined;

/** The guarded built-ins, bound over JSONata's own for every evaluation. */
function guardedFunctions(): Promise<Record<string, JsonataFunction>> {
  guarded ??= (async () => {
    const names = Object.keys(ARGUMENT_CHECKS);
    const originals = (await jsonata(`[${names.map((n) => `$${n}`).join(', ')}]`).evaluate(null)) as JsonataFunction[];
    const out: Record<string, JsonataFunction> = {};
    names.forEach((name, i) => {
      const original = originals[i] as JsonataFunction;
      const check = ARGUMENT_CHECKS[name] as (args: unknown[]) => string | undefined;
      out[name] = {
        ...original,
        implementation: function (this: unknown, ...args: unknown[]) {
          const problem = check(args);
          if (problem !== undefined) throw new ExpressionLimitError(problem);
          return original.implementation.apply(this, args);
        },
      };
    });
    return out;
  })();
  return guarded;
}

/** What is left of the current activation's shared step budget; unlimited until one is started. */
let activationSteps: number | undefined;

/**
 * Share one step budget among all expressions evaluated until the next call: the workflow starts
 * one before each interpreter step, so the expressions of one activation together stay well
 * within the worker's deadlock timeout however many elements the flow visits.
 * Deterministic: it depends only on the expressions evaluated since the last call.
 */
export function startExpressionBudget(steps: number = EXPRESSION_LIMITS.stepsPerActivation): void {
  activationSteps = steps;
}

export async function evaluate(source: string, data: unknown, env: ExpressionEnv): Promise<unknown> {
  const expr = compileExpression(source);
  const pooled = activationSteps !== undefined && activationSteps < EXPRESSION_LIMITS.steps;
  const meter: Meter = {
    steps: 0,
    stepLimit: Math.min(EXPRESSION_LIMITS.steps, activationSteps ?? Infinity),
    pooled,
    allocated: 0,
  };
  try {
    return await expr.evaluate(data, {
      ...(await guardedFunctions()),
      now: () => new Date(env.now).toISOString(),
      millis: () => env.now,
      random: env.random,
      [METER]: meter,
    });
  } catch (err) {
    const e = err as { code?: unknown; value?: unknown; message?: string };
    // JSONata's own size guards report the size asked for under the name of the limit: say it plainly.
    const message =
      e.code === 'D2014' || e.code === 'D2015'
        ? `a range or sequence of ${typeof e.value === 'number' && e.value !== EXPRESSION_LIMITS.sequence ? `${e.value} ` : 'more than '}items (at most ${EXPRESSION_LIMITS.sequence})`
        : (e.message ?? String(err));
    throw new ExpressionError(`evaluating "${source}": ${message}`, source, undefined, { cause: err });
  } finally {
    if (activationSteps !== undefined) activationSteps = Math.max(0, activationSteps - meter.steps);
  }
}

/** JSONata truthiness, as used by its own conditional operator. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '' || Number.isNaN(v)) return false;
  if (Array.isArray(v)) return v.some(truthy);
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}
