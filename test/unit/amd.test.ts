// Answering-machine detection on greetings spoken by espeak-ng (converted to 8 kHz like a call).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectMachine } from '../../src/telephony/amd.js';
import { concat, decodeMuLaw, encodeMuLaw, parseWav, silence, tone, toMono } from '../../src/telephony/sip/wav.js';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-amd-'));
let n = 0;
function speak(text: string, voice = 'en'): Int16Array {
  const raw = join(dir, `${++n}.raw.wav`);
  const wav = join(dir, `${n}.wav`);
  execFileSync('espeak-ng', ['-v', voice, '-w', raw, text]);
  execFileSync('sox', [raw, '-r', '8000', '-c', '1', '-b', '16', wav]);
  // Through G.711 as on the line.
  return decodeMuLaw(encodeMuLaw(toMono(parseWav(readFileSync(wav)))));
}

/** Feed the detector 100 ms at a time, as the agent does with the audio received so far. */
function stream(audio: Int16Array) {
  for (let end = 800; end <= audio.length + 799; end += 800) {
    const d = detectMachine(audio.subarray(0, Math.min(end, audio.length)));
    if (d) return d;
  }
  return undefined;
}

describe('answering-machine detection', () => {
  it.each(['Hello?', 'Yes, hello?', 'Hello, who is this?'])('a person who says "%s" and waits is HUMAN', (greeting) => {
    for (const lead of [200, 1200]) {
      const d = stream(concat(silence(lead), speak(greeting), silence(4000)));
      expect(d?.result, `${greeting} after ${lead} ms`).toBe('HUMAN');
      // Decided within a second of the end of the greeting, not at the analysis limit.
      expect(d?.atMs).toBeLessThan(lead + 2600);
    }
  });
  it.each([
    'Hi, you have reached the voicemail of John Smith. I cannot take your call right now, please leave a message after the tone.',
    'The person you are calling is not available. Please record your message after the beep.',
  ])('a recorded greeting is MACHINE: "%s"', (greeting) => {
    const d = stream(concat(silence(400), speak(greeting), silence(1000), tone(1000, 400), silence(3000)));
    expect(d?.result).toBe('MACHINE');
    expect(d?.atMs).toBeLessThan(5000);
  });
  it('a line that stays silent after answering is MACHINE (machines often wait before the greeting)', () => {
    expect(stream(silence(6000))).toMatchObject({ result: 'MACHINE', atMs: 2500 });
  });
  it('the answer for a prefix never changes as more audio arrives', () => {
    const audio = concat(
      silence(300),
      speak('Hello?'),
      silence(4000),
      speak('Hello? Anyone there? I can hear nothing at all on this line'),
    );
    const first = stream(audio);
    expect(first?.result).toBe('HUMAN');
    expect(detectMachine(audio)).toEqual(first);
  });
  it('needs more audio before it decides', () => {
    expect(detectMachine(concat(silence(200), speak('Hello?').subarray(0, 1600)))).toBeUndefined();
  });
});
