#!/usr/bin/env node
// Credentials of the deployed NATS cluster, created once: an nkey per dialflow service
// (keys/<identity>.nk, the seed a service reads through DIALFLOW_NATS_NKEY_SEED_FILE) and
// keys/nats.env for the servers (each service's public key, the route password and the route URLs
// that carry it). Files are 0600; existing ones are kept, so running it again changes nothing.
//   node deploy/nats/gen-keys.mjs            (from the repository, after npm install)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nkeys } from '@nats-io/transport-node';

// The identities of deploy/nats/auth.conf (admin is for dev and test servers only).
const IDENTITIES = ['worker', 'bridge', 'provider-simulator', 'provider-sip', 'provider-infobip', 'api', 'cli'];
const dir = join(dirname(fileURLToPath(import.meta.url)), 'keys');
mkdirSync(dir, { recursive: true, mode: 0o700 });

const lines = [];
for (const identity of IDENTITIES) {
  const file = join(dir, `${identity}.nk`);
  if (!existsSync(file)) writeFileSync(file, `${new TextDecoder().decode(nkeys.createUser().getSeed())}\n`, { mode: 0o600, flag: 'wx' });
  const publicKey = nkeys.fromSeed(new TextEncoder().encode(readFileSync(file, 'utf8').trim())).getPublicKey();
  lines.push(`DIALFLOW_NATS_NKEY_${identity.toUpperCase().replace(/-/g, '_')}=${publicKey}`);
}
const envFile = join(dir, 'nats.env');
const old = existsSync(envFile) ? readFileSync(envFile, 'utf8') : '';
const password = /^DIALFLOW_NATS_ROUTE_PASSWORD=(\S+)$/m.exec(old)?.[1] ?? randomBytes(24).toString('base64url');
lines.push(`DIALFLOW_NATS_ROUTE_PASSWORD=${password}`);
for (const n of [1, 2, 3]) lines.push(`DIALFLOW_NATS_ROUTE_${n}=nats-route://route:${password}@nats-${n}:6222`);
writeFileSync(envFile, `${lines.join('\n')}\n`, { mode: 0o600 });
process.stdout.write(`NATS credentials in ${dir} (keep them out of version control)\n`);
