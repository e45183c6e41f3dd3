// Uploaded audio files for Play's `audio.file`, kept in a NATS object store so every provider
// process can play them. `dialflow flows publish` and `dialflow call` upload the files a flow names
// (read relative to the flow document); a provider resolves the play URL `file:{name}` here.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { storageReplicas } from './replicas.js';
import { AUDIO_MAX_BYTES, type Flow } from '../flow/schema.js';
import { sniffAudio } from '../telephony/sip/wav.js';

export const ASSETS_BUCKET = 'dialflow_audio_assets';

export class AudioAssetError extends Error {
  override readonly name = 'AudioAssetError';
}

export class AudioAssetStore {
  private constructor(private readonly os: ObjectStore) {}

  static async open(nc: NatsConnection): Promise<AudioAssetStore> {
    return new AudioAssetStore(
      await new Objm(nc).create(ASSETS_BUCKET, {
        description: 'dialflow audio files for play elements',
        replicas: storageReplicas(),
      }),
    );
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const kind = sniffAudio(data);
    if (!kind) throw new AudioAssetError(`${name}: not a WAV or MP3 file (by its content)`);
    if (data.byteLength > AUDIO_MAX_BYTES)
      throw new AudioAssetError(`${name}: ${(data.byteLength / 2 ** 20).toFixed(1)} MB; audio files are at most 4 MB`);
    await this.os.putBlob({ name, description: `audio file ${name}`, metadata: { kind } }, data);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const info = await this.os.info(name);
    if (!info || info.deleted) return undefined;
    return (await this.os.getBlob(name)) ?? undefined;
  }
}

/** The `audio.file` names a flow plays, each with its path next to the flow document. */
export function flowAudioFiles(flow: Flow, flowFile: string): Array<{ name: string; path: string }> {
  const names = new Set<string>();
  for (const el of flow.elements) if (el.type === 'play' && el.audio && 'file' in el.audio) names.add(el.audio.file);
  return [...names].map((name) => ({ name, path: resolve(dirname(flowFile), name) }));
}

/** Upload every audio file a flow names; returns their names. Validation already checked size and existence. */
export async function uploadFlowAudio(nc: NatsConnection, flow: Flow, flowFile: string): Promise<string[]> {
  const files = flowAudioFiles(flow, flowFile);
  if (files.length === 0) return [];
  const store = await AudioAssetStore.open(nc);
  for (const f of files) {
    if (statSync(f.path).size > AUDIO_MAX_BYTES) throw new AudioAssetError(`${f.name}: audio files are at most 4 MB`);
    await store.put(f.name, readFileSync(f.path));
  }
  return files.map((f) => f.name);
}
