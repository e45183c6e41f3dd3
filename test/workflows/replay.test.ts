// Every recorded history of a released workflow version must replay with the current code:
// a change to the command sequence without patched() fails here.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { WORKFLOWS_PATH } from '../../src/workers/flow-worker.js';

Runtime.install({ logger: new DefaultLogger('WARN') });
const dir = new URL('../histories/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('history replay', () => {
  it('has recorded histories', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  it('replays every recorded history without non-determinism', async () => {
    const histories = files.map((f) => {
      const rec = JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as { workflowId: string; history: unknown };
      return { workflowId: rec.workflowId, history: historyFromJSON(rec.history) };
    });
    const results = Worker.runReplayHistories({ workflowsPath: WORKFLOWS_PATH }, histories);
    let n = 0;
    for await (const r of results) {
      expect(r.error, `${r.workflowId}: ${r.error?.message ?? ''}`).toBeUndefined();
      n += 1;
    }
    expect(n).toBe(files.length);
  }, 60_000);
});
