// Writes deploy/nats/auth.conf from the permission table in src/telephony/nats-auth.ts
// (`npm run nats-auth-conf`); a test fails while the two differ.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/config/tools.js';
import { renderDeployAuthorization } from '../src/telephony/nats-auth.js';

const file = join(PROJECT_ROOT, 'deploy', 'nats', 'auth.conf');
writeFileSync(file, renderDeployAuthorization());
process.stderr.write(`wrote ${file}\n`);
