// Finds an executable on PATH (and the sbin directories, where Debian puts servers).
// Plain JavaScript: used by scripts/setup.mjs before node_modules exists, and by src/config/tools.ts.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function which(name) {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/usr/local/sbin', '/sbin']);
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}
