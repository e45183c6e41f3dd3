// One baresip user agent process, driven over its ctrl_tcp socket (netstrings carrying JSON).
// The process gets its own config directory, loopback ports, and a parent-death signal, so it
// never outlives the service that started it, even when that one is killed with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { freePort } from '../../tools/net.mjs';
import { isErrnoException } from '../../config/errors.js';

export class BaresipError extends Error {
  override readonly name = 'BaresipError';
}
/** baresip answered a command with `ok: false`, or did not answer in time. */
export class BaresipCommandError extends Error {
  override readonly name = 'BaresipCommandError';
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const MODULE_DIRS = [
  '/usr/lib/baresip/modules',
  '/usr/lib/x86_64-linux-gnu/baresip/modules',
  '/usr/local/lib/baresip/modules',
];

/** An event baresip sends unasked (CALL_INCOMING, CALL_ESTABLISHED, CALL_DTMF_START, CALL_CLOSED, …). */
export const baresipEventSchema = z
  .object({
    event: z.literal(true),
    type: z.string(),
    class: z.string().optional(),
    accountaor: z.string().optional(),
    direction: z.string().optional(),
    peeruri: z.string().optional(),
    peerdisplayname: z.string().optional(),
    id: z.string().optional(),
    param: z.string().optional(),
  })
  .passthrough();
export type BaresipEvent = z.infer<typeof baresipEventSchema>;

const responseSchema = z
  .object({ response: z.literal(true), ok: z.boolean(), data: z.string().optional(), token: z.string().optional() })
  .passthrough();

export interface BaresipAgentOptions {
  /** Name for logs. */
  name: string;
  /** Config directory (`baresip -f DIR`); sndfile dumps land in `DIR/snd`. */
  dir: string;
  host: string;
  /** Lines of the `accounts` file, e.g. `<sip:dialflow@127.0.0.1:5080>;regint=60`. */
  accounts: string[];
  /** 8 kHz mono WAV the agent sends when no prompt plays. */
  silenceWav: string;
  /** Write what is sent and received per call (sndfile). */
  recordAudio?: boolean;
  /** End a call when no RTP arrived for this long (a far end that died without a BYE). */
  rtpTimeoutSeconds?: number;
  log?: (m: string) => void;
}

/** Build a baresip `config` file. */
/** Where an agent's ctrl_tcp listens: only this machine may drive its calls. */
const CTRL_HOST = '127.0.0.1';

export function baresipConfig(o: {
  host: string;
  sipPort: number;
  rtpPorts: [number, number];
  ctrlPort: number;
  silenceWav: string;
  sndPath?: string;
  rtpTimeoutSeconds?: number;
}): string {
  const modulePath = MODULE_DIRS.find((d) => existsSync(d)) ?? MODULE_DIRS[0];
  return [
    `module_path ${modulePath}`,
    `net_interface ${o.host}`,
    `sip_listen ${o.host}:${o.sipPort}`,
    `rtp_ports ${o.rtpPorts[0]}-${o.rtpPorts[1]}`,
    // The control port has no authentication: it stays on loopback whatever address SIP uses.
    `ctrl_tcp_listen ${CTRL_HOST}:${o.ctrlPort}`,
    // One call per agent: commands act on the agent's current call, and a busy agent answers a
    // forked inbound INVITE with 486 so that a free one takes it.
    'call_max_calls 1',
    ...(o.rtpTimeoutSeconds ? [`rtp_timeout ${o.rtpTimeoutSeconds}`] : []),
    'audio_player alsa,null',
    'audio_alert alsa,null',
    `audio_source aufile,${o.silenceWav}`,
    'ausrc_srate 8000',
    'auplay_srate 8000',
    'ausrc_channels 1',
    'auplay_channels 1',
    ...(o.sndPath ? [`snd_path ${o.sndPath}`] : []),
    'module g711.so',
    'module aufile.so',
    'module alsa.so',
    ...(o.sndPath ? ['module sndfile.so'] : []),
    'module_tmp uuid.so',
    'module_tmp account.so',
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    '',
  ].join('\n');
}

/** Encode one netstring. */
export function netstring(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')]);
}

/** Split complete netstrings off a buffer; returns the payloads and what is left over. */
export function parseNetstrings(buf: Buffer): { items: string[]; rest: Buffer } {
  const items: string[] = [];
  let rest = buf;
  for (;;) {
    const colon = rest.indexOf(0x3a);
    if (colon < 0) break;
    const len = Number(rest.subarray(0, colon).toString('ascii'));
    if (!Number.isInteger(len) || len < 0)
      throw new BaresipError(`bad netstring length "${rest.subarray(0, colon).toString('ascii').slice(0, 20)}"`);
    if (rest.length < colon + 1 + len + 1) break;
    items.push(rest.subarray(colon + 1, colon + 1 + len).toString('utf8'));
    rest = rest.subarray(colon + 1 + len + 1);
  }
  return { items, rest };
}

interface Pending {
  resolve: (data: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

/**
 * A running baresip. Emits `event` (BaresipEvent) and `exit` (code). `command()` sends a ctrl_tcp
 * command and resolves with its `data` text.
 */
export class BaresipAgent extends EventEmitter {
  private sock?: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private stopping = false;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly host: string,
    readonly sipPort: number,
    readonly ctrlPort: number,
    readonly sndPath: string | undefined,
    readonly logFile: string,
    private readonly log: (m: string) => void,
  ) {
    super();
    this.exited = new Promise((res) =>
      proc.once('exit', (code) => {
        this.exitCode = code;
        for (const p of this.pending.values())
          p.reject(new BaresipCommandError(`${name}: baresip exited (${code}) before answering ${p.what}`));
        this.pending.clear();
        this.sock?.destroy();
        this.emit('exit', code);
        res();
      }),
    );
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }
  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Start baresip; a port taken between choosing and binding it gets a retry with fresh ports. */
  static async start(opts: BaresipAgentOptions): Promise<BaresipAgent> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await BaresipAgent.startOnce(opts);
      } catch (err) {
        if (!(err instanceof BaresipError) || attempt >= 3) throw err;
      }
    }
  }

  private static async startOnce(opts: BaresipAgentOptions): Promise<BaresipAgent> {
    const log = opts.log ?? (() => undefined);
    mkdirSync(opts.dir, { recursive: true });
    const sndPath = opts.recordAudio ? join(opts.dir, 'snd') : undefined;
    if (sndPath) mkdirSync(sndPath, { recursive: true });
    const sipPort = await freePort(opts.host);
    const ctrlPort = await freePort(CTRL_HOST);
    // RTP: eight ports (RTP/RTCP pairs for a call and a re-INVITE) below the kernel's ephemeral
    // range, where freePort's picks for SIP and ctrl_tcp land; baresip tries others in the range
    // when one is taken.
    const rtpLow = 20_000 + 8 * Math.floor(Math.random() * 1250);
    writeFileSync(
      join(opts.dir, 'config'),
      baresipConfig({
        host: opts.host,
        sipPort,
        rtpPorts: [rtpLow, rtpLow + 7],
        ctrlPort,
        silenceWav: opts.silenceWav,
        ...(sndPath ? { sndPath } : {}),
        ...(opts.rtpTimeoutSeconds ? { rtpTimeoutSeconds: opts.rtpTimeoutSeconds } : {}),
      }),
    );
    writeFileSync(join(opts.dir, 'accounts'), opts.accounts.join('\n') + '\n');
    const logFile = join(opts.dir, 'baresip.log');
    const fd = openSync(logFile, 'a');
    const args = ['-f', opts.dir];
    const proc = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', 'baresip', ...args], { stdio: ['ignore', fd, fd] })
      : spawn('baresip', args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    proc.once('error', (err) => log(`${opts.name}: cannot start baresip: ${err.message}`));
    const agent = new BaresipAgent(opts.name, proc, opts.host, sipPort, ctrlPort, sndPath, logFile, log);
    const until = Date.now() + 10_000;
    for (;;) {
      if (!agent.alive) throw new BaresipError(`${opts.name}: baresip exited while starting: ${tailOf(logFile)}`);
      try {
        await agent.connect();
        break;
      } catch (err) {
        // Refused until baresip listens on ctrl_tcp.
        if (!isErrnoException(err)) throw err;
        if (Date.now() > until) {
          proc.kill('SIGKILL');
          throw new BaresipError(
            `${opts.name}: ctrl_tcp on ${CTRL_HOST}:${ctrlPort} did not accept connections: ${err.message}`,
          );
        }
        await delay(100);
      }
    }
    return agent;
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = connect(this.ctrlPort, CTRL_HOST);
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        sock.on('data', (d) => this.onData(d));
        sock.on('error', (err) => this.log(`${this.name}: ctrl_tcp error: ${err.message}`));
        sock.on('close', () => void this.onClose(sock));
        resolve();
      });
      sock.once('error', reject);
    });
  }

  /** The control connection dropped while baresip still runs: reconnect (the call state survives in baresip). */
  private async onClose(sock: Socket): Promise<void> {
    if (this.sock !== sock) return;
    this.sock = undefined;
    for (const p of this.pending.values())
      p.reject(new BaresipCommandError(`${this.name}: control connection closed before ${p.what} was answered`));
    this.pending.clear();
    while (!this.stopping && this.alive) {
      await delay(200);
      try {
        await this.connect();
        this.log(`${this.name}: ctrl_tcp reconnected`);
        return;
      } catch (err) {
        // Refused or reset: keep trying while the process lives.
        if (!isErrnoException(err)) throw err;
      }
    }
  }

  private onData(d: Buffer): void {
    let parsed: { items: string[]; rest: Buffer };
    try {
      parsed = parseNetstrings(Buffer.concat([this.buf, d]));
    } catch (err) {
      if (!(err instanceof BaresipError)) throw err;
      this.log(`${this.name}: ${err.message}; resetting the control connection`);
      this.sock?.destroy();
      return;
    }
    this.buf = parsed.rest;
    for (const item of parsed.items) {
      let json: unknown;
      try {
        json = JSON.parse(item);
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        this.log(`${this.name}: not JSON on ctrl_tcp: ${item.slice(0, 100)}`);
        continue;
      }
      const ev = baresipEventSchema.safeParse(json);
      if (ev.success) {
        this.emit('event', ev.data);
        continue;
      }
      const res = responseSchema.safeParse(json);
      if (res.success && res.data.token) {
        const p = this.pending.get(res.data.token);
        if (!p) continue;
        this.pending.delete(res.data.token);
        clearTimeout(p.timer);
        if (res.data.ok) p.resolve(res.data.data ?? '');
        else p.reject(new BaresipCommandError(`${this.name}: ${p.what} failed: ${res.data.data ?? 'no reason'}`));
      }
    }
  }

  /** Send a command (`dial`, `hangup`, `accept`, `ausrc`, `sndcode`, …); resolves with baresip's text. */
  command(command: string, params = '', timeoutMs = 5000): Promise<string> {
    const sock = this.sock;
    if (!sock || !this.alive)
      return Promise.reject(new BaresipCommandError(`${this.name}: not connected (cannot send ${command})`));
    const token = `c${++this.seq}`;
    // Named in errors, which reach logs and call records: never with the trunk password of `uanew`.
    const what = `"${command}${params ? ` ${params.replace(/(auth_pass=)[^;>\s]*/g, '$1…')}` : ''}"`;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new BaresipCommandError(`${this.name}: no answer to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(token, { resolve, reject, timer, what });
      sock.write(netstring(JSON.stringify({ command, params, token })));
    });
  }

  /** Resident memory of the process in bytes (Linux /proc). */
  rssBytes(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m?.[1] ? Number(m[1]) * 1024 : 0;
    } catch (err) {
      // The process is gone (ENOENT), or there is no /proc.
      if (!isErrnoException(err)) throw err;
      return 0;
    }
  }

  /** Quit gracefully (baresip hangs up its calls on quit), then make sure the process is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.alive) return;
    try {
      await this.command('quit', '', 1000);
    } catch (err) {
      // Not connected, or no answer in time: the signals below end it all the same.
      if (!(err instanceof BaresipCommandError)) throw err;
    }
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    this.proc.kill('SIGTERM');
    await this.exited;
    clearTimeout(killer);
    this.sock?.destroy();
  }
}

function tailOf(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    return '';
  }
}
