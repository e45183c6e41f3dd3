// Masked and hidden input, redacted by value. The interpreter masks the trail and the variable a
// collect saves, but the digits go on into whatever the flow does with them: a prompt that reads
// them back, an SMS, an HTTP request, a variable derived from them, an expression's error message.
// So every digit string entered at a masked or hidden collect is replaced wherever it appears: in the
// call result (the interpreter) and in transcripts and logs (the CLI). Pure: the workflow bundle
// carries it with the interpreter.

export type Reporting = 'always' | 'masked' | 'hidden';
export type Sensitive = Exclude<Reporting, 'always'>;

/**
 * What replaces a value: as the trail shows it (`xxxx`), or a note that digits were hidden. (Where
 * the result shows the input itself, hidden input is left out: the trail's `input`, the collect's
 * own variable.)
 */
export const MASKS: Record<Sensitive, string> = { masked: 'xxxx', hidden: '(hidden)' };

/**
 * Values this short occur by chance (times, counts, other numbers): they are replaced only where they
 * stand alone, not inside a longer run of digits. Longer ones are replaced wherever they occur.
 */
const STANDALONE_BELOW = 3;

/** Replaces the digits of masked and hidden input wherever they appear. */
export class Redactor {
  private readonly values = new Map<string, Sensitive>();
  private patterns: Array<{ pattern: RegExp; mask: string }> | undefined;

  /** Digits entered where `mode` applies (`#` ends input: only what comes before it was collected). */
  add(digits: string, mode: Reporting): void {
    if (mode === 'always') return;
    const value = digits.split('#')[0] ?? '';
    if (value === '') return;
    const known = this.values.get(value);
    this.values.set(value, known === 'hidden' ? known : mode);
    this.patterns = undefined;
  }

  get size(): number {
    return this.values.size;
  }

  text(s: string): string {
    this.patterns ??= [...this.values]
      // Longest first: a full value is replaced before a part of it could break it up.
      .sort(([a], [b]) => b.length - a.length)
      .map(([value, mode]) => {
        const escaped = value.replace(/\*/g, '\\*');
        const source = value.length < STANDALONE_BELOW ? `(?<![0-9])${escaped}(?![0-9])` : escaped;
        return { pattern: new RegExp(source, 'g'), mask: MASKS[mode] };
      });
    return this.patterns.reduce((out, { pattern, mask }) => out.replace(pattern, mask), s);
  }

  /** Strings (and numbers, which a flow may have made of the digits) anywhere inside a JSON value. */
  value<T>(v: T): T {
    if (this.values.size === 0) return v;
    if (typeof v === 'string') return this.text(v) as T;
    if (typeof v === 'number') {
      const shown = this.text(String(v));
      return (shown === String(v) ? v : shown) as T;
    }
    if (Array.isArray(v)) return v.map((x: unknown) => this.value(x)) as T;
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.value(x)])) as T;
    return v;
  }
}
