// Conditions and data manipulation in JSONata (the expression language AWS Step Functions chose),
// made deterministic: `$now()`, `$millis()` and `$random()` are bound to the event time and the
// interpreter's seeded PRNG, so an expression gives the same value live and on replay.
// Missing values are `undefined` in JSONata: a condition on a missing value is false, `setVariable`
// with a missing value removes the variable, and templates render it as an empty string.
import jsonata from 'jsonata';

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

const cache = new Map<string, jsonata.Expression>();
const CACHE_LIMIT = 2000;

export function compileExpression(source: string): jsonata.Expression {
  const hit = cache.get(source);
  if (hit) return hit;
  let compiled: jsonata.Expression;
  try {
    compiled = jsonata(source);
  } catch (err) {
    const e = err as { message?: string; position?: number };
    throw new ExpressionError(`${e.message ?? 'invalid expression'}${e.position !== undefined ? ` (at character ${e.position})` : ''}`, source, e.position, { cause: err });
  }
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

export async function evaluate(source: string, data: unknown, env: ExpressionEnv): Promise<unknown> {
  const expr = compileExpression(source);
  try {
    return await expr.evaluate(data, { now: () => new Date(env.now).toISOString(), millis: () => env.now, random: env.random });
  } catch (err) {
    throw new ExpressionError(`evaluating "${source}": ${(err as Error).message}`, source, undefined, { cause: err });
  }
}

/** JSONata truthiness, as used by its own conditional operator. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '' || Number.isNaN(v)) return false;
  if (Array.isArray(v)) return v.some(truthy);
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}
