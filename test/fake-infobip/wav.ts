// A real 8 kHz, mono, 16-bit PCM WAV (RIFF/WAVE) for the fake's recordings: `speechSeconds` of a
// voice-like signal (a 220 Hz tone with a 4 Hz syllable envelope) followed by silence.

const RATE = 8000;

export function makeWav(totalSeconds: number, speechSeconds: number): Buffer {
  const samples = Math.max(0, Math.round(totalSeconds * RATE));
  const speech = Math.min(samples, Math.max(0, Math.round(speechSeconds * RATE)));
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < speech; i++) {
    const t = i / RATE;
    const envelope = 0.5 + 0.5 * Math.sin(2 * Math.PI * 4 * t);
    const v = Math.sin(2 * Math.PI * 220 * t) * 0.6 + Math.sin(2 * Math.PI * 440 * t) * 0.2;
    data.writeInt16LE(Math.round(v * envelope * 12000), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16); // PCM chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(RATE, 24);
  header.writeUInt32LE(RATE * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
