// Reading a JSON record of ours from a KV bucket, for the stores whose records authorise something
// (tokens, users, sessions): a record that is missing, deleted, not JSON or not in the schema's
// shape (written by hand, or by another version) is treated as absent, never as an error.
import type { KV } from '@nats-io/kv';
import type { z } from 'zod';

export async function readKvRecord<S extends z.ZodType>(
  kv: KV,
  key: string,
  schema: S,
): Promise<{ record: z.infer<S>; revision: number } | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT') return undefined;
  let doc: unknown;
  try {
    doc = entry.json();
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
  const parsed = schema.safeParse(doc);
  return parsed.success ? { record: parsed.data, revision: entry.revision } : undefined;
}
