// Regenerates docs/flow.schema.json from the zod schema, and the branch tables of
// docs/flow-format.md from the elements' branch tables: `npm run schema`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { flowJsonSchema } from '../src/flow/schema.js';
import { withBranchTables } from '../src/flow/branch-docs.js';

const schemaFile = fileURLToPath(new URL('../docs/flow.schema.json', import.meta.url));
const schema = {
  $id: 'https://dialflow.dev/schemas/flow.schema.json',
  title: 'dialflow flow document',
  ...flowJsonSchema(),
};
// Laid out as `prettier --check` wants it.
const options = { ...(await resolveConfig(schemaFile)), filepath: schemaFile };
writeFileSync(schemaFile, await format(JSON.stringify(schema, null, 2), options));

const formatDoc = new URL('../docs/flow-format.md', import.meta.url);
const markdown = readFileSync(formatDoc, 'utf8');
const updated = withBranchTables(markdown);
if (updated !== markdown) writeFileSync(formatDoc, updated);
