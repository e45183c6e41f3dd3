// Provider selection, the capability table and the warnings validate gives for it.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, configEnv, loadConfig } from '../../src/config/index.js';
import { CAPABILITIES, PROVIDERS, providerIssues } from '../../src/telephony/capabilities.js';
import { commandSubject, eventSubject } from '../../src/telephony/nats.js';
import { validateFlow } from '../../src/flow/validate.js';
import { CLI_BIN } from '../../src/dev/stack.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { parseDestination } from '../../src/cli/call.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-providers-'));
import type { Flow } from '../../src/flow/schema.js';

const flowOf = (doc: unknown): Flow => {
  const r = validateFlow(doc);
  if (!r.flow) throw new Error(JSON.stringify(r.issues));
  return r.flow;
};

const everything = flowOf({
  id: 'everything',
  version: 1,
  start: 'call',
  elements: [
    {
      id: 'call',
      type: 'startOutgoingCall',
      from: '+14155550100',
      recordCall: true,
      next: { answered: 'hello', voicemail: 'vm' },
    },
    { id: 'hello', type: 'play', tts: { text: 'Zdravo', language: 'zu', neural: true }, next: { played: 'file' } },
    { id: 'file', type: 'play', audio: { file: 'prompts/hello.wav' }, next: { played: 'fwd' } },
    {
      id: 'fwd',
      type: 'forwardCall',
      from: '+14155550100',
      to: 'webrtc:agent-7',
      next: { forwarded: 'end', notForwarded: 'sms' },
    },
    { id: 'sms', type: 'sendSms', text: 'Sorry we missed you', next: 'end' },
    { id: 'vm', type: 'recordVoicemail', name: 'vm', escapeDigits: '#', next: { recorded: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

describe('DIALFLOW_PROVIDER', () => {
  it('is simulator by default, accepts the old name sim, and refuses anything else by name', () => {
    expect(loadConfig({}).provider).toBe('simulator');
    expect(loadConfig({ DIALFLOW_PROVIDER: 'sim' }).provider).toBe('simulator');
    expect(loadConfig({ DIALFLOW_PROVIDER: 'sip' }).provider).toBe('sip');
    expect(() => loadConfig({ DIALFLOW_PROVIDER: 'twilio' })).toThrow(
      /one of simulator, sip, infobip\n\s+→ at DIALFLOW_PROVIDER/,
    );
  });
  it('validates SIP and Infobip settings once, with the variable named', () => {
    expect(() => loadConfig({ DIALFLOW_SIP_TRUNK: 'sip:+385@carrier' })).toThrow(/DIALFLOW_SIP_TRUNK/);
    expect(() => loadConfig({ DIALFLOW_SIP_TRUNK: 'http://carrier' })).toThrow(ConfigError);
    expect(() => loadConfig({ DIALFLOW_SIP_TRUNK_USER: 'u' })).toThrow(/go together/);
    expect(() => loadConfig({ DIALFLOW_SIP_CHANNELS: '0' })).toThrow(/DIALFLOW_SIP_CHANNELS/);
    expect(() => loadConfig({ DIALFLOW_INFOBIP_BASE_URL: 'ftp://x' })).toThrow(/DIALFLOW_INFOBIP_BASE_URL/);
    expect(() => loadConfig({ DIALFLOW_WEBHOOK_PASSWORD: 'short' })).toThrow(/DIALFLOW_WEBHOOK_PASSWORD/);
    const c = loadConfig({
      DIALFLOW_PROVIDER: 'infobip',
      DIALFLOW_INFOBIP_BASE_URL: 'https://abc.api.infobip.com/',
      DIALFLOW_INFOBIP_API_KEY: 'k',
      DIALFLOW_SIP_TRUNK: 'sip:127.0.0.1:5080',
    });
    expect(c.infobip.baseUrl).toBe('https://abc.api.infobip.com');
    // A child process gets the same configuration.
    expect(loadConfig(configEnv(c))).toEqual(c);
  });
  it('keeps the simulator on its short subject token and gives the others their own', () => {
    expect(commandSubject('simulator')).toBe('dialflow.telephony.sim.commands');
    expect(eventSubject('sip', 'CALL_RINGING')).toBe('dialflow.events.sip.CALL_RINGING');
    expect(commandSubject('infobip')).toBe('dialflow.telephony.infobip.commands');
  });
});

describe('capabilities', () => {
  it('the simulator can do everything a flow asks', () => {
    expect(providerIssues(everything, 'simulator')).toEqual([]);
  });
  it('SIP: no neural voices, no WebRTC, no SMS; unknown TTS languages are named', () => {
    const codes = providerIssues(everything, 'sip').map((i) => `${i.code} ${i.path}`);
    expect(codes).toEqual([
      'provider.ttsLanguage elements[1].tts.language',
      'provider.ttsNeural elements[1].tts.neural',
      'provider.forward elements[3].to',
      'provider.sms elements[4]',
    ]);
    expect(providerIssues(everything, 'sip').every((i) => i.severity === 'warning')).toBe(true);
  });
  it('Infobip: no uploaded files (they must be URLs), no escape digits, no SMS through the voice provider', () => {
    expect(providerIssues(everything, 'infobip').map((i) => i.code)).toEqual([
      'provider.audioFile',
      'provider.sms',
      'provider.escapeDigits',
    ]);
  });
  it('docs/providers.md shows every capability of every provider as the table says', () => {
    const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'providers.md'), 'utf8');
    const row = (label: string, f: (p: (typeof PROVIDERS)[number]) => boolean) =>
      `| ${label} | ${PROVIDERS.map((p) => (f(p) ? 'yes' : 'no')).join(' | ')} |`;
    const C = CAPABILITIES;
    for (const line of [
      row('machine detection', (p) => C[p].machineDetection),
      row('neural voices', (p) => C[p].ttsNeural),
      row('audio by URL', (p) => C[p].audio.url),
      row('uploaded audio files', (p) => C[p].audio.file),
      row('recorded voicemail as audio', (p) => C[p].audio.voicemail),
      row('forward to a phone', (p) => C[p].forward.phone),
      row('forward to SIP', (p) => C[p].forward.sip),
      row('forward to WebRTC', (p) => C[p].forward.webrtc),
      row('whole-call recording', (p) => C[p].recordCall),
      row('voicemail recording', (p) => C[p].voicemail.record),
      row('voicemail beep', (p) => C[p].voicemail.beep),
      row('voicemail max silence', (p) => C[p].voicemail.maxSilence),
      row('voicemail escape digits', (p) => C[p].voicemail.escapeDigits),
      row('inbound calls', (p) => C[p].inbound),
      row('SMS', (p) => C[p].sms),
    ]) {
      expect(doc).toContain(line);
    }
    for (const code of [
      'machineDetection',
      'recordCall',
      'inbound',
      'ttsLanguage',
      'ttsVoice',
      'ttsNeural',
      'audioUrl',
      'audioFile',
      'audioVoicemail',
      'forward',
      'voicemail',
      'escapeDigits',
      'beep',
      'sms',
    ]) {
      expect(doc).toContain(`provider.${code}`);
    }
  });
});

describe('dialflow validate --provider / dialflow call', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI_BIN, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
  const reminder = join(PROJECT_ROOT, 'examples', 'appointment-reminder.json');
  it('warns with a stable code when the configured provider lacks something, and stays valid', () => {
    const r = run(['validate', reminder, '--provider', 'infobip', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; issues: Array<{ code: string; elementId?: string }> };
    expect(out.ok).toBe(true);
    expect(out.issues.filter((i) => i.code.startsWith('provider.'))).toEqual([]);
    const neural = join(dir, 'neural.json');
    writeFileSync(
      neural,
      JSON.stringify({
        id: 'neural',
        version: 1,
        start: 'call',
        elements: [
          { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'hi' } },
          { id: 'hi', type: 'play', tts: { text: 'Hi', neural: true }, next: { played: 'end' } },
          { id: 'end', type: 'hangUp' },
        ],
      }),
    );
    const warned = JSON.parse(run(['validate', neural, '--provider', 'sip', '--json']).stdout) as {
      ok: boolean;
      issues: Array<{ code: string; elementId?: string }>;
    };
    expect(warned.ok).toBe(true);
    expect(warned.issues).toContainEqual(expect.objectContaining({ code: 'provider.ttsNeural', elementId: 'hi' }));
    // DIALFLOW_PROVIDER is the default; the simulator has no such warning.
    expect(run(['validate', neural], { DIALFLOW_PROVIDER: 'sip' }).stdout).toMatch(/warning +provider\.ttsNeural/);
    expect(run(['validate', neural]).stdout).not.toMatch(/provider\./);
    expect(run(['validate', reminder, '--provider', 'asterisk']).status).toBe(2);
  });
  it('call: a destination is an international number or a SIP URI, anything else a usage error', () => {
    expect(parseDestination('+385 91 555 0000')).toBe('+385915550000');
    expect(parseDestination('sip:1001@127.0.0.1:5080')).toBe('sip:1001@127.0.0.1:5080');
    const r = run(['call', reminder, '--to', '0915550000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--to "0915550000": give an international number/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('error code tables in docs/providers.md', () => {
  const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'providers.md'), 'utf8');
  it('every SIP row, as mapped', async () => {
    const { SIP_CODE_TABLE, mapSipFailure } = await import('../../src/telephony/sip/sip-codes.js');
    for (const r of SIP_CODE_TABLE) {
      expect(doc).toContain(`| ${r.match} | ${r.errorCode} | ${r.note} |`);
      // The docs row says what the mapping does.
      const probe =
        typeof r.match === 'number' ? r.match : /^\dxx$/.test(r.match) ? `${r.match[0]}99 Something` : r.match;
      expect(mapSipFailure(probe).errorCode, String(r.match)).toBe(r.errorCode);
    }
  });
  it('every Infobip error name, as mapped', async () => {
    const { INFOBIP_ERROR_CODE_MAP, mapErrorCode } = await import('../../src/telephony/infobip/events.js');
    for (const [name, code] of Object.entries(INFOBIP_ERROR_CODE_MAP)) {
      expect(doc).toContain(`| ${name} | ${code} |`);
      expect(mapErrorCode(name, 'INTERNAL_ERROR')).toBe(code);
    }
  });
});
