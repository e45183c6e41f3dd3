// Regenerates docs/flow.schema.json from the zod schema: `npm run schema`.
import { writeFileSync } from 'node:fs';
import { flowJsonSchema } from '../src/flow/schema.js';

const schema = {
  $id: 'https://dialflow.dev/schemas/flow.schema.json',
  title: 'dialflow flow document',
  ...flowJsonSchema(),
};
writeFileSync(new URL('../docs/flow.schema.json', import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
