// The shape of an element's branch table: branch → what taking it does to the call session. Each
// element's table sits next to its schema (src/flow/elements/<type>.schema.ts); the schema's branch
// fields, the validator's session rules, `dialflow graph` and docs/flow-format.md all read it.
// Types only: the tables themselves are plain constants.

/** start: the branch opens a call session; keep: the session state is unchanged; end: no session after it. */
export type SessionEffect = 'start' | 'keep' | 'end';

export interface BranchRule {
  /** What taking the branch does to the call session. */
  session: SessionEffect;
  /**
   * Where the document names the branch's target: a key of the element's `next` object (absent:
   * the default), a field of its own (`next`, `else`, `onError`), or one branch per entry of a list
   * or map (a collect's `responses`, a condition's `conditions`; the table's key stands for them all).
   */
  written?: 'field' | 'each';
  /**
   * The branch exists only when the document has it. Otherwise it is always there: left open it is
   * reported (and, inside a call session, closed with a hang-up).
   */
  optional?: true;
  /** When the element takes the branch (docs/flow-format.md). */
  when: string;
}

export type BranchTable = Readonly<Record<string, Readonly<BranchRule>>>;

/** Branches written as keys of the `next` object. */
export type NextKeys<T extends BranchTable> = {
  [K in keyof T]: T[K] extends { written: 'field' | 'each' } ? never : K;
}[keyof T] &
  string;
/** Branches written as fields of their own (`next`, `else`, `onError`). */
export type FieldKeys<T extends BranchTable> = {
  [K in keyof T]: T[K] extends { written: 'field' } ? K : never;
}[keyof T] &
  string;
