// Limits on JSONata evaluation, so that no flow can take a worker down.
//
// Expressions run inside Temporal's workflow sandbox, where an activation that runs too long
// trips the deadlock detector and can abort the whole worker process, and where wall-clock time
// does not advance during an activation. So time is bounded by counting evaluation steps (one
// step per JSONata AST node evaluated), which is deterministic: the same expression on the same
// data fails at the same step live and on replay. Memory is bounded by capping sequences, strings
// and the total size of everything an evaluation produces, and by refusing the few built-in
// functions that can amplify a small input into a huge output. Regular expressions cannot be
// interrupted once V8 runs them, so their worst case is prevented up front: see `regexProblem`.

export const EXPRESSION_LIMITS = {
  /**
   * AST nodes evaluated by one expression. In the workflow sandbox a step costs far more than in
   * plain Node (every step is a few awaited promises, and the sandbox tracks each promise):
   * measured 0.15 to 0.2 ms, so this is under half a second there, a few ms elsewhere.
   */
  steps: 2_500,
  /** AST nodes evaluated by all expressions of one interpreter step (one workflow activation). */
  stepsPerActivation: 5_000,
  /** Nested evaluations: non-tail recursion ends here, long before any native stack. */
  depth: 400,
  /** Items in any sequence JSONata builds, and in any array an expression produces. */
  sequence: 100_000,
  /** Characters in any string an expression produces. */
  string: 1_000_000,
  /** Total characters and array items produced by one evaluation (its memory). */
  allocated: 5_000_000,
  /** `$distinct` compares every pair of items: quadratic. */
  distinct: 10_000,
  /** Characters a regular expression may scan, before the per-pattern cap of `regexInputLimit`. */
  regexInput: 10_000,
  /** Backtracking budget a regular expression's input cap is derived from. */
  regexWork: 1e8,
} as const;

/** An expression ran into one of the limits above: it fails like any failing expression. */
export class ExpressionLimitError extends Error {
  override readonly name = 'ExpressionLimitError';
}

// --- regular expressions -------------------------------------------------------------------------

export interface RegexShape {
  /** Quantifiers without an upper bound (`*`, `+`, `{n,}`): the degree of worst-case backtracking. */
  unbounded: number;
  /** Anchored at the start of the input (`^` without the `m` flag): one starting position. */
  anchored: boolean;
}

/**
 * Why a pattern may backtrack exponentially, or undefined with its shape when it cannot.
 * Rejected: a repeated group that itself contains a variable quantifier (`(a+)+`, `(a*b?)*`) or an
 * alternation (`(a|a)+`), and backreferences. What remains backtracks at most polynomially, in the
 * number of unbounded quantifiers; `regexInputLimit` caps the input accordingly.
 */
export function analyzeRegex(source: string, flags = ''): { problem: string } | { shape: RegexShape } {
  interface Group {
    variable: boolean;
    alternation: boolean;
  }
  const stack: Group[] = [{ variable: false, alternation: false }];
  let unbounded = 0;
  // What a quantifier right here would apply to: a group (with what it contains) or a single atom.
  let last: Group | 'atom' | undefined;
  const top = () => stack[stack.length - 1] as Group;
  let i = 0;
  const quantifierAt = (at: number): { end: number; min: number; max: number } | undefined => {
    const c = source[at];
    if (c === '*') return { end: at + 1, min: 0, max: Infinity };
    if (c === '+') return { end: at + 1, min: 1, max: Infinity };
    if (c === '?') return { end: at + 1, min: 0, max: 1 };
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at));
      if (!m) return undefined;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' || m[3] === undefined ? Infinity : Number(m[3]);
      return { end: at + m[0].length, min, max };
    }
    return undefined;
  };
  while (i < source.length) {
    const c = source[i] as string;
    const q = last !== undefined ? quantifierAt(i) : undefined;
    if (q) {
      const variable = q.min !== q.max;
      const repeats = q.max > 1;
      if (last !== 'atom' && last !== undefined && repeats && (last.variable || last.alternation)) {
        return {
          problem: `the regular expression /${source}/ repeats a group that contains ${last.alternation ? 'an alternation (|)' : 'a quantifier'}, which can take exponential time: use a character class or an unrepeated group`,
        };
      }
      if (variable) top().variable = true;
      if (q.max === Infinity) unbounded += 1;
      i = q.end;
      if (source[i] === '?') i += 1; // lazy: the same worst case
      last = undefined;
      continue;
    }
    switch (c) {
      case '\\': {
        const n = source[i + 1] ?? '';
        if (/[1-9]/.test(n) || (n === 'k' && source[i + 2] === '<'))
          return { problem: `the regular expression /${source}/ uses a backreference, which is not allowed` };
        i += 2;
        last = 'atom';
        break;
      }
      case '[': {
        // A character class is one atom; `]` right after `[` or `[^` is a literal.
        let j = i + 1;
        if (source[j] === '^') j += 1;
        if (source[j] === ']') j += 1;
        while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
        i = j + 1;
        last = 'atom';
        break;
      }
      case '(': {
        stack.push({ variable: false, alternation: false });
        i += 1;
        // Group modifiers: (?: (?= (?! (?<= (?<! (?<name>
        if (source[i] === '?') {
          const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(source.slice(i));
          i += m ? m[0].length : 1;
        }
        last = undefined;
        break;
      }
      case ')': {
        const g = stack.pop();
        if (!g || stack.length === 0)
          return { problem: `the regular expression /${source}/ has an unbalanced parenthesis` };
        // What the group contains counts for the groups around it.
        top().variable ||= g.variable;
        top().alternation ||= g.alternation;
        last = g;
        i += 1;
        break;
      }
      case '|':
        top().alternation = true;
        last = undefined;
        i += 1;
        break;
      case '^':
      case '$':
        last = undefined;
        i += 1;
        break;
      default:
        last = 'atom';
        i += 1;
    }
  }
  return { shape: { unbounded, anchored: source.startsWith('^') && !flags.includes('m') } };
}

/**
 * The longest input a pattern of this shape may scan: k unbounded quantifiers backtrack in about
 * n^k steps from one start, n^(k+1) from every start; keep that under `regexWork`.
 */
export function regexInputLimit(shape: RegexShape): number {
  const degree = shape.unbounded + (shape.anchored ? 0 : 1);
  if (degree <= 1) return EXPRESSION_LIMITS.regexInput;
  return Math.min(EXPRESSION_LIMITS.regexInput, Math.floor(EXPRESSION_LIMITS.regexWork ** (1 / degree)));
}

/** Why this regular expression may not be used, or undefined. */
export function regexProblem(re: RegExp): string | undefined {
  const a = analyzeRegex(re.source, re.flags);
  return 'problem' in a ? a.problem : undefined;
}

/**
 * The regular expression engine given to JSONata: refuses patterns that can backtrack
 * exponentially and inputs longer than the pattern's cap, so a match always ends quickly.
 */
export class BoundedRegExp extends RegExp {
  private readonly inputLimit: number;
  constructor(pattern: RegExp | string, flags?: string) {
    super(pattern, flags);
    const a = analyzeRegex(this.source, this.flags);
    if ('problem' in a) throw new ExpressionLimitError(a.problem);
    this.inputLimit = regexInputLimit(a.shape);
  }
  override exec(input: string): RegExpExecArray | null {
    if (input.length > this.inputLimit) {
      throw new ExpressionLimitError(
        `the regular expression /${this.source}/ may scan at most ${this.inputLimit} characters (the input has ${input.length}); simpler patterns (fewer *, + and {n,}) may scan more`,
      );
    }
    return super.exec(input);
  }
}
