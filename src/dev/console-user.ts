// The console's first user under `dialflow dev`: on a stack without users, `admin` (role admin)
// with a generated password, shown once in the banner and kept in the data dir (0600) so that a
// later start can say where it is. Later starts do not show it again.
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { generatePassword, type UserStore } from '../store/users.js';
import type { AuditLog } from '../store/audit.js';

export const FIRST_USER = 'admin';
export const FIRST_USER_PASSWORD_FILE = 'console-admin.password';

export interface FirstConsoleUser {
  /** Whether this start created the user. */
  created: boolean;
  passwordFile: string;
  /** What the banner says about logging in (the password itself only when just created and asked for). */
  banner(withPassword: boolean): string[];
}

const howToManage = [
  `reset a password: dialflow users passwd ${FIRST_USER}; add a user: dialflow users add NAME --role operator`,
];

export async function firstConsoleUser(users: UserStore, audit: AuditLog, dataDir: string): Promise<FirstConsoleUser> {
  const passwordFile = join(dataDir, FIRST_USER_PASSWORD_FILE);
  if ((await users.list()).length === 0) {
    const password = generatePassword();
    const user = await users.add(FIRST_USER, 'admin', password);
    await audit.append({
      time: user.created,
      actor: { name: 'dialflow dev' },
      action: 'user.add',
      target: { user: user.name, role: user.role },
      outcome: 'added',
    });
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    // An older file (of a removed user) keeps its mode otherwise.
    chmodSync(passwordFile, 0o600);
    return {
      created: true,
      passwordFile,
      banner: (withPassword) =>
        withPassword
          ? [`log in as ${FIRST_USER} / ${password}  (shown once; kept in ${passwordFile}, 0600)`, ...howToManage]
          : [`log in as ${FIRST_USER}: the password is in ${passwordFile}`, ...howToManage],
    };
  }
  // The kept password still works unless someone changed it since (or removed the user).
  const kept = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : undefined;
  const valid = kept ? Boolean(await users.verify(FIRST_USER, kept)) : false;
  const lines = valid
    ? [`log in as ${FIRST_USER}: the password is in ${passwordFile}`, ...howToManage]
    : [
        'log in with a user of `dialflow users list`',
        `reset a password: dialflow users passwd NAME; add a user: dialflow users add NAME --role operator`,
      ];
  return { created: false, passwordFile, banner: () => lines };
}
