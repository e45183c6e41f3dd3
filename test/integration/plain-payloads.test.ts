// Workers hold the payload key, so they refuse what was written without it: a call workflow
// started with plain JSON (as `temporal workflow start --input` would) never runs, never dials,
// and its history says why. And a client whose key the workers lack fails before starting anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import protos from '@temporalio/proto';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { parseFlow } from '../../src/flow/validate.js';
import { withTimeZone } from '../../src/flow/zone.js';
import { callWorkflowId } from '../../src/workflows/messages.js';
import { keyId } from '../../src/codec/encryption.js';
import { workerIdentity, workerKeys } from '../../src/codec/key-check.js';
import { payloadCodec } from '../../src/config/index.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { withTemporal } from '../../src/cli/connections.js';
import { CliError } from '../../src/cli/errors.js';
import { runCli } from '../helpers/dev-process.js';

const { temporal } = protos;
const FLOW_FILE = join(PROJECT_ROOT, 'examples', 'appointment-reminder.json');
const flow = parseFlow(JSON.parse(readFileSync(FLOW_FILE, 'utf8')));

let t: EphemeralStack;
beforeAll(async () => {
  t = await startEphemeralStack();
});
afterAll(async () => {
  await t?.stop();
});

describe('workers refuse unencrypted payloads', () => {
  it('a call workflow started with plain JSON fails its workflow task naming the reason, and never dials', async () => {
    // A client without the codec: what the Temporal CLI or any other SDK sends by default.
    const plain = new Client({ connection: t.connection, namespace: t.config.temporal.namespace });
    const campaignId = `plain-${Date.now()}`;
    const recipient = withTimeZone({ id: 'dnc-1', phone: '+14155550199' });
    const handle = await plain.workflow.start('outboundCall', {
      taskQueue: t.config.temporal.taskQueue,
      workflowId: callWorkflowId(campaignId, recipient.id),
      args: [{ flow, recipient, campaignId }],
    });
    let failure: string | undefined;
    for (let i = 0; i < 60 && failure === undefined; i++) {
      await delay(250);
      const history = await handle.fetchHistory();
      failure =
        history.events?.find((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
          ?.workflowTaskFailedEventAttributes?.failure?.message ?? undefined;
    }
    expect(failure).toMatch(/refusing an unencrypted payload \(encoding "json\/plain"\)/);
    expect(failure).toContain(payloadCodec(t.config).keyId);
    // Give a wrongly started flow time to reach its dial, then check it never did.
    await delay(2000);
    expect(await t.simulatorDials(`call:${campaignId}:`)).toEqual([]);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // It stays stuck (workflow task retries), never completes: an operator terminates it.
    await handle.terminate('started without the payload key');
  }, 60_000);
});

describe('a client whose key the workers lack fails before starting anything', () => {
  const taskQueue = `key-check-${Date.now()}`;
  const workersCodec = () => payloadCodec(t.config);
  let stopPolling: AbortController;
  let polling: Promise<unknown>;

  beforeAll(async () => {
    // A worker on its own task queue, advertising its keys the way every dialflow worker does
    // (Worker.create({ identity: workerIdentity(codec) })). At the protocol level that is a long
    // poll with that identity, which is all DescribeTaskQueue reports.
    stopPolling = new AbortController();
    // The server requires a deadline on a long poll; workers use about a minute.
    const poll = () =>
      t.connection.withAbortSignal(stopPolling.signal, () =>
        t.connection.withDeadline(Date.now() + 70_000, () =>
          t.connection.workflowService.pollWorkflowTaskQueue({
            namespace: t.config.temporal.namespace,
            taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
            identity: workerIdentity(workersCodec()),
          }),
        ),
      );
    polling = poll().catch(() => undefined);
    for (let i = 0; i < 40; i++) {
      if ((await workerKeys(t.connection, t.config.temporal.namespace, taskQueue)).length > 0) return;
      await delay(100);
    }
    throw new Error('the poller never showed up in DescribeTaskQueue');
  });
  afterAll(async () => {
    stopPolling?.abort();
    await polling;
  });

  it("the workers' key ids are visible to clients", async () => {
    const workers = await workerKeys(t.connection, t.config.temporal.namespace, taskQueue);
    expect(workers.map((w) => w.keyIds)).toEqual([workersCodec().keyIds]);
  });

  it('the dialflow CLI with another DIALFLOW_PAYLOAD_KEY exits 1 at once, naming both key ids', async () => {
    // `campaign status` talks to Temporal only; every command goes through the same check.
    const otherKey = randomBytes(32);
    const r = await runCli(
      ['campaign', 'status', 'any', '--temporal', t.config.temporal.address, '--task-queue', taskQueue],
      { ...t.env, DIALFLOW_PAYLOAD_KEY: otherKey.toString('base64'), DIALFLOW_PAYLOAD_KEY_FILE: '' },
      60_000,
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain(`payload key ${keyId(new Uint8Array(otherKey))}`);
    expect(r.stderr).toContain(`they use ${workersCodec().keyId}`);
    expect(r.stderr).toMatch(/nothing was started/);
  }, 60_000);

  it("withTemporal runs the command with the workers' key and refuses another, naming both", async () => {
    const base = { ...t.config, temporal: { ...t.config.temporal, taskQueue } };
    expect(await withTemporal(base, async () => 'ran')).toBe('ran');
    const other = randomBytes(32);
    const wrong = { ...base, payload: { key: other.toString('base64'), previousKeys: [] } };
    // The command itself (e.g. starting a call) never runs, so no workflow is started.
    let started = false;
    const refused = withTemporal(wrong, async (client) => {
      started = true;
      return client.workflow.start('outboundCall', {
        taskQueue,
        workflowId: callWorkflowId('cli', 'keycheck-1'),
        args: [{ flow, recipient: withTimeZone({ id: 'keycheck-1', phone: '+14155550123' }), campaignId: 'cli' }],
      });
    });
    await expect(refused).rejects.toThrow(CliError);
    await expect(refused).rejects.toThrow(
      new RegExp(`${keyId(new Uint8Array(other))}.*task queue ${taskQueue}.*they use ${workersCodec().keyId}`),
    );
    expect(started).toBe(false);
    await expect(t.client.workflow.getHandle(callWorkflowId('cli', 'keycheck-1')).describe()).rejects.toThrow(
      WorkflowNotFoundError,
    );
    // A key that cannot be used (here malformed; likewise none at all): the configuration error, exit 2, naming the workers' key.
    const unusable = withTemporal({ ...base, payload: { key: 'c2hvcnQ=', previousKeys: [] } }, async () => 'ran');
    await expect(unusable).rejects.toMatchObject({ name: 'CliError', exitCode: 2 });
    await expect(unusable).rejects.toThrow(
      new RegExp(
        `DIALFLOW_PAYLOAD_KEY: a payload key is 32 bytes.*the workers on task queue ${taskQueue} use payload key ${workersCodec().keyId}`,
      ),
    );
    // Nobody polling a queue: nothing to compare with, the command runs (its workflow waits for workers).
    expect(
      await withTemporal(
        { ...wrong, temporal: { ...wrong.temporal, taskQueue: `${taskQueue}-empty` } },
        async () => 'ran',
      ),
    ).toBe('ran');
  }, 60_000);
});
