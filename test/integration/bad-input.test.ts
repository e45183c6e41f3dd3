// Missing tools, taken ports, servers that do not come up: one clear line, nothing left running.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack, StackError, CLI_BIN, freePort } from '../../src/dev/stack.js';

function occupy(port: number): Promise<() => Promise<void>> {
  return new Promise((res) => {
    const srv = createServer();
    srv.listen(port, '127.0.0.1', () => res(() => new Promise((r) => srv.close(() => r()))));
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dialflow dev with bad input', () => {
  it('a taken port gives one line naming the component and the flag, and exit 1', async () => {
    const port = await freePort();
    const release = await occupy(port);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'dialflow-bad-'));
      const r = spawnSync(
        process.execPath,
        [
          CLI_BIN,
          'dev',
          '--exit',
          '--data-dir',
          dir,
          '--temporal-port',
          String(port),
          '--metrics-port',
          String(await freePort()),
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(r.status).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(
        new RegExp(`Temporal dev server: port ${port} on 127\\.0\\.0\\.1 is already in use — .*--temporal-port`),
      );
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await release();
    }
  }, 70_000);

  it('an invalid port is refused as a usage error: exit 2, one line', () => {
    const r = spawnSync(process.execPath, [CLI_BIN, 'dev', '--nats-port', '99999'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^dialflow dev: option '--nats-port <port>' argument '99999' is invalid\. a port is a whole number from 1 to 65535 — see `dialflow dev --help`\n$/,
    );
  });

  it('connection flags are for a running stack: dev refuses them as a usage error, before starting anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dialflow-bad-'));
    const r = spawnSync(
      process.execPath,
      [CLI_BIN, 'dev', '--exit', '--data-dir', dir, '--temporal', '10.0.0.1:7233', '--nats-tls-ca', '/ca.pem'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^dialflow dev: --temporal, --nats-tls-ca: dev runs its own Temporal and NATS servers/);
    expect(existsSync(join(dir, 'logs'))).toBe(false);
  });
});

describe('Stack start-up failures', () => {
  const fake = (body: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'dialflow-fake-'));
    const file = join(dir, 'fake-server');
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  };

  it('a server that exits while starting is reported with its log', async () => {
    process.env.DIALFLOW_NATS_SERVER_BIN = fake('echo "boom: cannot open store" >&2; exit 3');
    const stack = new Stack(mkdtempSync(join(tmpdir(), 'dialflow-stack-')));
    try {
      const err = await stack
        .startNats({ port: await freePort(), storeDir: join(stack.dataDir, 'nats') })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StackError);
      expect((err as StackError).message).toMatch(/^nats-server: exited with code 3 while starting/);
      expect((err as StackError).message).toContain('boom: cannot open store');
    } finally {
      delete process.env.DIALFLOW_NATS_SERVER_BIN;
      await stack.stop();
    }
  });

  it('a server that does not come up within its deadline is stopped', async () => {
    process.env.DIALFLOW_NATS_SERVER_BIN = fake('exec sleep 60');
    const stack = new Stack(mkdtempSync(join(tmpdir(), 'dialflow-stack-')));
    try {
      const err = await stack
        .startNats({ port: await freePort(), storeDir: join(stack.dataDir, 'nats'), deadlineMs: 1000 })
        .catch((e: unknown) => e);
      expect((err as StackError).message).toMatch(/^nats-server: did not come up within 1 s/);
      expect((err as StackError).fix).toBeTruthy();
    } finally {
      delete process.env.DIALFLOW_NATS_SERVER_BIN;
    }
    const pid = Number(spawnSync('cat', [join(stack.runDir, 'nats.pid')], { encoding: 'utf8' }).stdout);
    expect(isRunning(pid)).toBe(true);
    await stack.stop();
    expect(isRunning(pid)).toBe(false);
  });
});
