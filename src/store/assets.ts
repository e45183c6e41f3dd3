// Uploaded audio files for Play's `audio.file`, kept in a NATS object store so every provider
// process can play them. `dialflow flows publish` and `dialflow call` upload the files a flow names
// (read relative to the flow document); a provider resolves the play URL `file:{name}` here.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Objm, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { storageReplicas } from './replicas.js';
import { readObject, type ByteRange } from './object-stream.js';
import { AUDIO_MAX_BYTES, type Flow } from '../flow/schema.js';
import { sniffAudio, type AudioKind } from '../telephony/sip/wav.js';

export const ASSETS_BUCKET = 'dialflow_audio_assets';

export class AudioAssetError extends Error {
  override readonly name = 'AudioAssetError';
}

/**
 * The name of a file uploaded through the API (Play's `audio.file`): one file name, no folders,
 * ending in .wav or .mp3. Files uploaded by `dialflow flows publish` keep the relative path the
 * flow names, which may have folders.
 */
export const UPLOAD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(wav|mp3)$/i;

export const contentTypeOfAudio = (kind: AudioKind): string => (kind === 'wav' ? 'audio/wav' : 'audio/mpeg');

/** An uploaded audio file, as listed. */
export interface AudioAssetInfo {
  /** The name Play's `audio.file` uses. */
  file: string;
  size: number;
  kind: AudioKind;
  contentType: string;
  created: string;
}

/** An audio file opened for reading: its description, and its bytes streamed on demand. */
export interface OpenedAudioAsset {
  info: AudioAssetInfo;
  /** The whole file, or an inclusive byte range of it (within `info.size`). */
  read(range?: ByteRange): Readable;
}

export class AudioAssetStore {
  private constructor(
    private readonly os: ObjectStore,
    private readonly js: JetStreamClient,
  ) {}

  static async open(nc: NatsConnection): Promise<AudioAssetStore> {
    return new AudioAssetStore(
      await new Objm(nc).create(ASSETS_BUCKET, {
        description: 'dialflow audio files for play elements',
        replicas: storageReplicas(),
      }),
      jetstream(nc),
    );
  }

  /** Stores (or replaces) a file; its content decides whether it is audio. Returns what was stored. */
  async put(name: string, data: Uint8Array): Promise<AudioAssetInfo> {
    const kind = sniffAudio(data);
    if (!kind) throw new AudioAssetError(`${name}: not a WAV or MP3 file (by its content)`);
    if (data.byteLength > AUDIO_MAX_BYTES)
      throw new AudioAssetError(`${name}: ${(data.byteLength / 2 ** 20).toFixed(1)} MB; audio files are at most 4 MB`);
    const info = await this.os.putBlob({ name, description: `audio file ${name}`, metadata: { kind } }, data);
    return toAssetInfo(info);
  }

  /** Every stored file, by name. */
  async list(): Promise<AudioAssetInfo[]> {
    const all = await this.os.list();
    return all
      .filter((o) => !o.deleted)
      .map(toAssetInfo)
      .sort((a, b) => a.file.localeCompare(b.file));
  }

  /** Streams a file (for the HTTP API). */
  async open(name: string): Promise<OpenedAudioAsset | undefined> {
    const info = await this.os.info(name);
    if (!info || info.deleted) return undefined;
    return { info: toAssetInfo(info), read: (range) => readObject(this.js, info, range) };
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const info = await this.os.info(name);
    if (!info || info.deleted) return undefined;
    return (await this.os.getBlob(name)) ?? undefined;
  }
}

function toAssetInfo(o: ObjectInfo): AudioAssetInfo {
  // Files stored before the kind was kept in the metadata were checked by content too: the name says which.
  const kind: AudioKind = o.metadata?.kind === 'mp3' || (!o.metadata?.kind && /\.mp3$/i.test(o.name)) ? 'mp3' : 'wav';
  return { file: o.name, size: o.size, kind, contentType: contentTypeOfAudio(kind), created: o.mtime };
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
