// Schema pieces the element schemas share: ids, branch targets, variable names, phone numbers,
// time zones, expressions, and the branch fields built from an element's branch table.
import { z } from 'zod';
import { IANAZone } from 'luxon';
import type { BranchTable, FieldKeys, NextKeys } from './branch-table.js';

/** A refinement's message with the stable `code` the validator reports as the issue code. */
export const coded = (code: string, message: string) => ({ message, params: { code } });

export const elementIdSchema = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
    'element ids start with a letter and use letters, digits, "_" or "-" (at most 64)',
  );
export const target = elementIdSchema;
/** A branch: an element id, or null for "enabled but not connected" (the validator adds a hang-up). */
const branchTarget = target.nullable().optional();
export const variableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and "_" and do not start with a digit');
const TEMPLATE = /\{\{.+?\}\}/;
export const isTemplate = (s: string) => TEMPLATE.test(s);
/** A phone number in E.164 form, or a `{{placeholder}}` resolved per call. */
export const phoneOrTemplate = z
  .string()
  .refine(
    (s) => /^\+?[0-9]{3,15}$/.test(s) || isTemplate(s),
    coded('field.phone', 'a phone number in E.164 form (+ and 3–15 digits) or a {{placeholder}}'),
  );
export const zoneSchema = z
  .string()
  .refine(
    (z) => z === 'recipient' || IANAZone.isValidZone(z),
    coded('field.timeZone', 'an IANA time zone such as Europe/Zagreb, or "recipient"'),
  );
export const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a time of day as HH:mm (00:00–23:59)');
/** A JSONata expression over `{ recipient, vars, profile, call }`. */
export const expression = z.string().min(1).max(2000);

export const base = {
  id: elementIdSchema,
  label: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
};

/** The `next` object of an element whose branches are its keys: one optional target per branch of the table. */
export function nextBranches<const T extends BranchTable>(table: T) {
  const keys = Object.keys(table).filter((k) => table[k]?.written === undefined);
  return z
    .object(Object.fromEntries(keys.map((k) => [k, branchTarget])) as { [K in NextKeys<T>]: typeof branchTarget })
    .strict();
}

/**
 * The branches of the table that are fields of their own (`next`, `else`, `onError`): an optional
 * element id each, with its JSON Schema description where `descriptions` gives one.
 */
export function fieldBranches<const T extends BranchTable>(
  table: T,
  descriptions: Partial<Record<FieldKeys<T>, string>> = {},
) {
  const keys = Object.keys(table).filter((k) => table[k]?.written === 'field') as Array<FieldKeys<T>>;
  return Object.fromEntries(
    keys.map((k) => {
      const description = descriptions[k];
      return [k, description === undefined ? target.optional() : target.optional().describe(description)];
    }),
  ) as { [K in FieldKeys<T>]: z.ZodOptional<typeof target> };
}
