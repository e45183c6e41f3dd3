// `dialflow users add|list|remove|passwd`: the users of the web console (src/store/users.ts). A
// password comes from stdin (--password-stdin: the first line, so it stays out of the shell's
// history and the process list) or is generated and printed once. Every change is audited with the
// actor "cli".
import { Option, type Command } from 'commander';
import { API_ROLES, type ApiRole } from '../../store/tokens.js';
import {
  generatePassword,
  passwordSchema,
  UserExistsError,
  userNameSchema,
  UserStore,
  type UserInfo,
} from '../../store/users.js';
import { AuditLog, type AuditEntry } from '../../store/audit.js';
import { setStorageReplicas } from '../../store/replicas.js';
import { CliError } from '../errors.js';
import { withNats, type CliContext } from '../connections.js';

async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new CliError(
      '--password-stdin reads the password from a pipe, e.g. `printf %s "$PW" | dialflow users add …`',
      2,
    );
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > 4096) throw new CliError('--password-stdin: the password is at most 1024 characters', 1);
  }
  // The first line, without its line break (`echo` adds one).
  const password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  const parsed = passwordSchema.safeParse(password);
  if (!parsed.success)
    throw new CliError(`--password-stdin: ${parsed.error.issues[0]?.message ?? 'invalid password'}`, 1);
  return parsed.data;
}

function checkName(name: string): string {
  const parsed = userNameSchema.safeParse(name);
  if (!parsed.success) throw new CliError(`"${name}": ${parsed.error.issues[0]?.message ?? 'not a user name'}`, 2);
  return parsed.data;
}

const auditTarget = (u: UserInfo): AuditEntry['target'] => ({ user: u.name, role: u.role });

export function registerUserCommands(program: Command, ctx: CliContext): void {
  const users = program.command('users').description('users of the web console (`dialflow api`, `dialflow dev`)');
  const withStores = <T>(f: (store: UserStore, audit: AuditLog) => Promise<T>): Promise<T> => {
    const config = ctx.config();
    setStorageReplicas(config.nats.replicas);
    return withNats(config.nats, async (nc) => f(await UserStore.open(nc), await AuditLog.open(nc)));
  };
  const audit = (log: AuditLog, action: AuditEntry['action'], user: UserInfo, outcome: string) =>
    log.append({ time: new Date().toISOString(), actor: { name: 'cli' }, action, target: auditTarget(user), outcome });

  ctx
    .connects(
      users
        .command('add')
        .description('add a user; without --password-stdin a password is generated and printed once')
        .argument('<name>', 'user name: lowercase letters, digits, ".", "_" or "-"')
        .addOption(
          new Option('--role <role>', 'viewer reads, operator also runs calls and campaigns, admin also manages')
            .choices(API_ROLES)
            .makeOptionMandatory(),
        )
        .option('--password-stdin', 'read the password from stdin (first line, at least 12 characters)', false),
    )
    .action(async (rawName: string, opts: { role: ApiRole; passwordStdin: boolean }) => {
      const name = checkName(rawName);
      const password = opts.passwordStdin ? await readPasswordFromStdin() : generatePassword();
      const user = await withStores(async (store, log) => {
        let added: UserInfo;
        try {
          added = await store.add(name, opts.role, password);
        } catch (err) {
          if (!(err instanceof UserExistsError)) throw err;
          throw new CliError(`user "${name}" exists: change the password with \`dialflow users passwd ${name}\``, 1);
        }
        await audit(log, 'user.add', added, 'added');
        return added;
      });
      if (!opts.passwordStdin) process.stdout.write(`${password}\n`);
      process.stderr.write(
        `user "${user.name}" (${user.role}) added${opts.passwordStdin ? '' : ': the password above is shown once'}\n`,
      );
    });

  ctx
    .connects(
      users.command('list').description('list users: name, role, created').option('--json', 'print as JSON', false),
    )
    .action(async (opts: { json: boolean }) => {
      const all = await withStores((store) => store.list());
      if (opts.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      else for (const u of all) process.stdout.write(`${u.name}\t${u.role}\t${u.created}\n`);
    });

  ctx
    .connects(
      users
        .command('remove')
        .description('remove a user: their sessions end with their next request')
        .argument('<name>', 'user name'),
    )
    .action(async (rawName: string) => {
      const name = checkName(rawName);
      const removed = await withStores(async (store, log) => {
        const info = await store.remove(name);
        if (info) await audit(log, 'user.remove', info, 'removed');
        return info;
      });
      if (!removed) throw new CliError(`no user "${name}" (see \`dialflow users list\`)`, 1);
      process.stdout.write(`removed "${removed.name}" (${removed.role})\n`);
    });

  ctx
    .connects(
      users
        .command('passwd')
        .description("set a user's password (generated and printed once without --password-stdin); their sessions end")
        .argument('<name>', 'user name')
        .option('--password-stdin', 'read the password from stdin (first line, at least 12 characters)', false),
    )
    .action(async (rawName: string, opts: { passwordStdin: boolean }) => {
      const name = checkName(rawName);
      const password = opts.passwordStdin ? await readPasswordFromStdin() : generatePassword();
      const changed = await withStores(async (store, log) => {
        const info = await store.setPassword(name, password);
        if (info) await audit(log, 'user.password', info, 'changed');
        return info;
      });
      if (!changed) throw new CliError(`no user "${name}" (add one with \`dialflow users add ${name} --role …\`)`, 1);
      if (!opts.passwordStdin) process.stdout.write(`${password}\n`);
      process.stderr.write(
        `password of "${changed.name}" changed${opts.passwordStdin ? '' : ' (shown once, above)'}; their sessions have ended\n`,
      );
    });
}
