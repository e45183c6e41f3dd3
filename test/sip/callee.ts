// A scripted SIP phone for the integration tests: a baresip that registers at the test registrar,
// answers by itself (or calls out with dial()), plays a WAV (its "speech") when the call is up,
// presses keys (RFC 2833) at given moments, and records what it hears (sndfile), so a test can
// compare it with the prompt.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BaresipAgent, type BaresipEvent } from '../../src/telephony/sip/baresip.js';
import { parseWav, toMono } from '../../src/telephony/sip/wav.js';

export interface CalleeOptions {
  dir: string;
  /** Registrar host:port. */
  registrar: string;
  /** The user (number) it registers as. */
  user: string;
  /** 8 kHz mono WAV with a silent tail, sent when no speech plays. */
  silenceWav: string;
  /** Sent once the call is up (must end in silence: aufile hangs up at EOF). */
  speechWav?: string;
  /** Keys to press, each `afterMs` after the call was established. */
  keys?: Array<{ digit: string; afterMs: number }>;
  /** Hang up this long after the call was established. */
  hangUpAfterMs?: number;
  /** Answer mode: auto (default), or manual (the phone rings until the caller gives up). */
  answer?: boolean;
  /** End the call when no RTP arrived for this long (the far end died without a BYE). */
  rtpTimeoutSeconds?: number;
}

export class Callee {
  readonly events: BaresipEvent[] = [];
  /** Wall-clock times at which keys were sent. */
  readonly keysSentAt: Array<{ digit: string; at: number }> = [];
  establishedAt?: number;
  closedAt?: number;
  /** CALL_CLOSED's reason (e.g. `Connection reset by user`, `rtp timeout`). */
  closedReason?: string;

  private timers: NodeJS.Timeout[] = [];

  private constructor(
    readonly agent: BaresipAgent,
    readonly opts: CalleeOptions,
  ) {}

  static async start(opts: CalleeOptions): Promise<Callee> {
    const agent = await BaresipAgent.start({
      name: `callee-${opts.user}`,
      dir: opts.dir,
      host: '127.0.0.1',
      accounts: [
        `<sip:${opts.user}@${opts.registrar}>;regint=60;answermode=${opts.answer === false ? 'manual' : 'auto'}`,
      ],
      silenceWav: opts.silenceWav,
      recordAudio: true,
      ...(opts.rtpTimeoutSeconds ? { rtpTimeoutSeconds: opts.rtpTimeoutSeconds } : {}),
    });
    const c = new Callee(agent, opts);
    agent.on('event', (ev: BaresipEvent) => c.onEvent(ev));
    // Registration may finish before the control connection is up: ask instead of waiting for REGISTER_OK.
    const until = Date.now() + 10_000;
    for (;;) {
      const info = await agent.command('reginfo').catch(() => '');
      if (/OK/.test(info)) break;
      if (Date.now() > until) throw new Error(`${opts.user} did not register: ${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return c;
  }

  /** Call `uri` (through the registrar, the phone's outbound proxy). */
  async dial(uri: string): Promise<void> {
    this.establishedAt = undefined;
    this.closedAt = undefined;
    await this.agent.command('dial', uri);
  }

  private onEvent(ev: BaresipEvent): void {
    this.events.push(ev);
    if (ev.type === 'CALL_ESTABLISHED') {
      this.establishedAt = Date.now();
      if (this.opts.speechWav) void this.agent.command('ausrc', `aufile,${this.opts.speechWav}`);
      for (const k of this.opts.keys ?? []) {
        this.timers.push(
          setTimeout(() => {
            this.keysSentAt.push({ digit: k.digit, at: Date.now() });
            void this.agent.command('sndcode', k.digit).catch(() => undefined);
          }, k.afterMs),
        );
      }
      if (this.opts.hangUpAfterMs !== undefined)
        this.timers.push(
          setTimeout(() => void this.agent.command('hangup').catch(() => undefined), this.opts.hangUpAfterMs),
        );
    }
    if (ev.type === 'CALL_CLOSED') {
      this.closedAt = Date.now();
      this.closedReason = ev.param ?? '';
      for (const t of this.timers) clearTimeout(t);
    }
  }

  /** What the callee heard in its last call (the received audio dump). */
  heard(): Int16Array {
    const dir = this.agent.sndPath;
    if (!dir || !existsSync(dir)) return new Int16Array(0);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('-dec.wav'))
      .sort();
    const last = files.at(-1);
    return last ? toMono(parseWav(new Uint8Array(readFileSync(join(dir, last))))) : new Int16Array(0);
  }

  async waitClosed(timeoutMs = 20_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.closedAt === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await this.agent.stop();
  }
}
