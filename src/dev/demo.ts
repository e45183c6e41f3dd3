// The demo that `npm start` runs: one sample flow called to simulated recipients with mixed personas.
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { SingleBar, Presets } from 'cli-progress';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { parseFlow } from '../flow/validate.js';
import type { CallResult, Recipient } from '../flow/interpreter.js';
import { summarize, type CallSummary } from '../flow/summary.js';
import { splitPersona, startCall } from '../client/calls.js';
import { isTemporalUnreachable } from './stack.js';

/** A demo call still running when the demo's deadline passed. */
class DemoDeadlineError extends Error {
  override readonly name = 'DemoDeadlineError';
}

export interface DemoOptions {
  client: Client;
  taskQueue: string;
  flowFile: string;
  recipientsFile: string;
  /** Progress goes to this stream (stderr). */
  progress: NodeJS.WriteStream;
  deadlineMs?: number;
}

export interface DemoReport {
  campaignId: string;
  summary: CallSummary;
  failed: Array<{ recipientId: string; error: string }>;
  seconds: number;
}

export async function runDemo(o: DemoOptions): Promise<DemoReport> {
  const flow = parseFlow(JSON.parse(readFileSync(o.flowFile, 'utf8')));
  const rows = JSON.parse(readFileSync(o.recipientsFile, 'utf8')) as Recipient[];
  const campaignId = `demo-${DateTime.utc().toFormat('yyyyMMddHHmmss')}`;
  const started = Date.now();
  const tty = Boolean(o.progress.isTTY);
  const bar = tty
    ? new SingleBar(
        { format: 'calls {bar} {value}/{total} done | {eta_formatted} left', stream: o.progress, hideCursor: true },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(rows.length, 0);
  let done = 0;
  let lastReported = -1;
  const tick = () => {
    done += 1;
    if (bar) return bar.update(done);
    const decile = Math.floor((done * 10) / rows.length);
    if (decile !== lastReported) {
      lastReported = decile;
      o.progress.write(`calls: ${done}/${rows.length} done\n`);
    }
  };

  const results: CallResult[] = [];
  const failed: DemoReport['failed'] = [];
  const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), o.deadlineMs ?? 300_000).unref());
  await Promise.all(
    rows.map(async (row) => {
      const { recipient, hints } = splitPersona(row);
      try {
        const handle = await startCall(o.client, {
          flow,
          recipient,
          campaignId,
          taskQueue: o.taskQueue,
          ...(hints ? { hints } : {}),
        });
        const r = await Promise.race([handle.result(), deadline]);
        if (r === 'timeout') throw new DemoDeadlineError('did not finish before the demo deadline');
        results.push(r);
      } catch (err) {
        // A call that failed, ran out of time, was already placed, or Temporal would not take: the
        // demo reports it with the others.
        if (!(
          err instanceof WorkflowFailedError ||
          err instanceof DemoDeadlineError ||
          err instanceof WorkflowExecutionAlreadyStartedError ||
          isTemporalUnreachable(err)
        ))
          throw err;
        failed.push({ recipientId: row.id, error: err.message });
      } finally {
        tick();
      }
    }),
  );
  bar?.stop();
  return { campaignId, summary: summarize(results), failed, seconds: (Date.now() - started) / 1000 };
}
