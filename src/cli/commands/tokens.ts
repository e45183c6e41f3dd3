// `dialflow tokens create|list|revoke`: the bearer tokens of the HTTP API (src/store/tokens.ts).
// A token is printed once, by `create`; the bucket keeps only its hash.
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { API_ROLES, ApiTokenStore, type ApiRole } from '../../store/tokens.js';
import { AuditLog } from '../../store/audit.js';
import { setStorageReplicas } from '../../store/replicas.js';
import { CliError } from '../errors.js';
import { withNats, type CliContext } from '../connections.js';
import { schemaOption } from '../options.js';

const tokenNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/, 'a name is 1–64 letters, digits, space, ".", "_", "@" or "-"');

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('bearer tokens of the HTTP API (`dialflow api`)');
  const withStores = <T>(f: (store: ApiTokenStore, audit: AuditLog) => Promise<T>): Promise<T> => {
    const config = ctx.config();
    setStorageReplicas(config.nats.replicas);
    return withNats(config.nats, async (nc) => f(await ApiTokenStore.open(nc), await AuditLog.open(nc)));
  };

  ctx
    .connects(
      tokens
        .command('create')
        .description('create a token and print it (shown once: only its hash is stored)')
        .addOption(
          new Option('--role <role>', 'what the token may do: viewer reads, operator also publishes, admin also audits')
            .choices(API_ROLES)
            .makeOptionMandatory(),
        )
        .addOption(
          new Option('--name <name>', 'who or what uses it (default <role>-<id>)').argParser(
            schemaOption(tokenNameSchema),
          ),
        )
        .option('--json', 'print {token, name, role, id} as JSON', false),
    )
    .action(async (opts: { role: ApiRole; name?: string; json: boolean }) => {
      const created = await withStores(async (store, audit) => {
        const token = await store.create(opts.role, opts.name);
        await audit.append({
          time: token.created,
          actor: { name: 'cli' },
          action: 'token.create',
          target: { tokenId: token.id, name: token.name, role: token.role },
          outcome: 'created',
        });
        return token;
      });
      if (opts.json)
        process.stdout.write(
          `${JSON.stringify({ token: created.token, name: created.name, role: created.role, id: created.id })}\n`,
        );
      else {
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(
          `token ${created.id} "${created.name}" (${created.role}): shown once, store it now; revoke with \`dialflow tokens revoke ${created.id}\`\n`,
        );
      }
    });

  ctx
    .connects(
      tokens
        .command('list')
        .description('list tokens: id, role, name, created (never the token)')
        .option('--json', 'print as JSON', false),
    )
    .action(async (opts: { json: boolean }) => {
      const all = await withStores((store) => store.list());
      if (opts.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      else for (const t of all) process.stdout.write(`${t.id}\t${t.role}\t${t.name}\t${t.created}\n`);
    });

  ctx
    .connects(
      tokens
        .command('revoke')
        .description('revoke a token: its next request is refused')
        .argument('<id>', 'token id (from `dialflow tokens list`)'),
    )
    .action(async (id: string) => {
      const revoked = await withStores(async (store, audit) => {
        const info = await store.revoke(id);
        if (info)
          await audit.append({
            time: new Date().toISOString(),
            actor: { name: 'cli' },
            action: 'token.revoke',
            target: { tokenId: info.id, name: info.name, role: info.role },
            outcome: 'revoked',
          });
        return info;
      });
      if (!revoked) throw new CliError(`no token with id "${id}" (see \`dialflow tokens list\`)`, 1);
      process.stdout.write(`revoked ${revoked.id} "${revoked.name}" (${revoked.role})\n`);
    });
}
