// Console users (`dialflow users`), in the NATS KV bucket dialflow_users, keyed by name. A record
// keeps the role and an scrypt hash of the password with its own salt and parameters, so the
// parameters can be raised later without breaking old records. The API reads the record on every
// request of a session (src/api/auth.ts): a removed user or a changed role applies at once.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { storageReplicas } from './replicas.js';
import { isWrongLastSequence } from './nats-errors.js';
import { readKvRecord } from './kv-records.js';
import { API_ROLES, type ApiRole } from './tokens.js';

export const USERS_BUCKET = 'dialflow_users';

/** Lowercase, so that "Alice" and "alice" cannot be two users; also a valid KV key. */
export const userNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}$/,
    'a user name is 1–64 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit',
  );

export const MIN_PASSWORD_LENGTH = 12;
export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, `a password has at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(1024, 'a password has at most 1024 characters');

// scrypt at N=2^15, r=8, p=3: one of the settings OWASP's password storage cheat sheet lists (32 MiB,
// about 0.2 s a check). Stored with each hash, so raising them later keeps old records valid.
const SCRYPT = { N: 2 ** 15, r: 8, p: 3, keyLength: 32 } as const;
// A record written by hand must not make a login allocate gigabytes.
const MAX_N = 2 ** 20;

const scryptHashSchema = z.object({
  algorithm: z.literal('scrypt'),
  N: z
    .number()
    .int()
    .min(2)
    .max(MAX_N)
    .refine((n) => (n & (n - 1)) === 0, 'N is a power of 2'),
  r: z.number().int().min(1).max(32),
  p: z.number().int().min(1).max(16),
  keyLength: z.number().int().min(16).max(64),
  /** base64 */
  salt: z.string().min(16),
  /** base64 */
  key: z.string().min(16),
});
type ScryptHash = z.infer<typeof scryptHashSchema>;

const userRecordSchema = z.object({
  name: userNameSchema,
  role: z.enum(API_ROLES),
  hash: scryptHashSchema,
  created: z.string(),
  /** When the password was last set: sessions begun before it end (src/api/auth.ts). */
  passwordChanged: z.string(),
});
type UserRecord = z.infer<typeof userRecordSchema>;

/** What may be shown about a user: never the hash. */
export type UserInfo = Omit<UserRecord, 'hash'>;

export class UserExistsError extends Error {
  override readonly name = 'UserExistsError';
}

const derive = (password: string, salt: Buffer, p: Omit<ScryptHash, 'algorithm' | 'salt' | 'key'>) =>
  new Promise<Buffer>((resolve, reject) => {
    // maxmem: scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is exactly that at N=2^15, r=8.
    const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 };
    scrypt(password, salt, p.keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });

export async function hashPassword(password: string): Promise<ScryptHash> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT);
  return { algorithm: 'scrypt', ...SCRYPT, salt: salt.toString('base64'), key: key.toString('base64') };
}

async function passwordMatches(password: string, hash: ScryptHash): Promise<boolean> {
  const expected = Buffer.from(hash.key, 'base64');
  const actual = await derive(password, Buffer.from(hash.salt, 'base64'), hash);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password for a new user: 18 random bytes, 24 characters of base64url (144 bits). */
export const generatePassword = (): string => randomBytes(18).toString('base64url');

const strip = ({ hash: _hash, ...info }: UserRecord): UserInfo => info;

export class UserStore {
  /** Checked for a name that has no record, so that a login takes as long either way. */
  private dummy: Promise<ScryptHash> | undefined;

  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<UserStore> {
    return new UserStore(await new Kvm(nc).create(USERS_BUCKET, { history: 1, replicas: storageReplicas() }));
  }

  /** Add a user; UserExistsError if the name is taken. */
  async add(name: string, role: ApiRole, password: string, now = new Date()): Promise<UserInfo> {
    const record: UserRecord = {
      name: userNameSchema.parse(name),
      role,
      hash: await hashPassword(passwordSchema.parse(password)),
      created: now.toISOString(),
      passwordChanged: now.toISOString(),
    };
    try {
      await this.kv.create(name, JSON.stringify(record));
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      throw new UserExistsError(`user "${name}" exists`, { cause: err });
    }
    return strip(record);
  }

  async get(name: string): Promise<UserInfo | undefined> {
    const found = await this.read(name);
    return found ? strip(found.record) : undefined;
  }

  async list(): Promise<UserInfo[]> {
    const out: UserInfo[] = [];
    for await (const name of await this.kv.keys()) {
      const found = await this.read(name);
      if (found) out.push(strip(found.record));
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string): Promise<UserInfo | undefined> {
    const found = await this.read(name);
    if (!found) return undefined;
    await this.kv.purge(name);
    return strip(found.record);
  }

  /** A new password (sessions begun before now end); undefined when there is no such user. */
  async setPassword(name: string, password: string, now = new Date()): Promise<UserInfo | undefined> {
    const hash = await hashPassword(passwordSchema.parse(password));
    return this.change(name, (r) => ({ ...r, hash, passwordChanged: now.toISOString() }));
  }

  async setRole(name: string, role: ApiRole): Promise<UserInfo | undefined> {
    return this.change(name, (r) => ({ ...r, role }));
  }

  /**
   * The user whose name and password these are, or undefined. A name without a record (or not a
   * valid name at all) still costs one scrypt, so the answer's timing does not tell whether it exists.
   */
  async verify(name: string, password: string): Promise<UserInfo | undefined> {
    const found = userNameSchema.safeParse(name).success ? await this.read(name) : undefined;
    if (!found) {
      this.dummy ??= hashPassword(generatePassword());
      await passwordMatches(password, await this.dummy);
      return undefined;
    }
    return (await passwordMatches(password, found.record.hash)) ? strip(found.record) : undefined;
  }

  /** Read, change and write back at the read revision (another writer in between: read again). */
  private async change(name: string, f: (r: UserRecord) => UserRecord): Promise<UserInfo | undefined> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.read(name);
      if (!found) return undefined;
      const next = f(found.record);
      try {
        await this.kv.update(name, JSON.stringify(next), found.revision);
        return strip(next);
      } catch (err) {
        if (!isWrongLastSequence(err) || attempt >= 5) throw err;
      }
    }
  }

  private async read(name: string): Promise<{ record: UserRecord; revision: number } | undefined> {
    if (!userNameSchema.safeParse(name).success) return undefined;
    // A record that is not ours (written by hand, or under another name) authorises nothing.
    const found = await readKvRecord(this.kv, name, userRecordSchema);
    return found?.record.name === name ? found : undefined;
  }
}
