// Do-not-call and the contact cap hold for every outbound call, not only for campaign calls:
// a one-off call (as `dialflow call` starts it) and a plain workflow start by hand, on the real stack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { NatsCampaignStore } from '../../src/store/campaigns.js';
import { connectNats } from '../../src/telephony/nats.js';
import type { CallWorkflowInput } from '../../src/workflows/call.js';
import type { outboundCall } from '../../src/workflows/index.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';

const flow = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);
const persona = { persona: { attempts: ['answered'], keys: ['1'] } };

let t: EphemeralStack;
let nc: NatsConnection;
let store: NatsCampaignStore;
beforeAll(async () => {
  t = await startEphemeralStack();
  nc = await connectNats(t.natsUrl, 'it-dnc');
  store = await NatsCampaignStore.open(nc);
});
afterAll(async () => {
  await nc?.close();
  await t?.stop();
});

describe('the compliance gate outside campaigns', () => {
  it('a one-off call to a do-not-call number ends doNotCall and is never dialled; another number is dialled once', async () => {
    const blocked = '+385915557001';
    const allowed = '+385915557002';
    // Stored as written by `dialflow dnc add`, spacing and all: the gate compares digits.
    await store.setDoNotCall('+385 91 555 7001', true);
    const start = (id: string, phone: string) =>
      startCall(t.client, {
        flow,
        campaignId: 'cli',
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id, phone, firstName: 'Ana' },
        hints: persona,
      });
    const [no, yes] = await Promise.all([
      start('dnc-1', blocked).then((h) => h.result()),
      start('dnc-2', allowed).then((h) => h.result()),
    ]);
    expect(no).toMatchObject({ outcome: 'doNotCall', dials: 0, trail: [] });
    expect(yes).toMatchObject({ outcome: 'answered', dials: 1 });
    expect(await t.simulatorDials('call:cli:dnc-1')).toEqual([]);
    expect(await t.simulatorDials('call:cli:dnc-2')).toHaveLength(1);

    // Removed from the list, the number is callable again (a new call id: ids are never reused).
    await store.setDoNotCall(blocked, false);
    expect(await start('dnc-1b', blocked).then((h) => h.result())).toMatchObject({ outcome: 'answered', dials: 1 });
  }, 60_000);

  it('a workflow started by hand with a contact cap is capped by contacts from other campaigns', async () => {
    const phone = '+385915557003';
    // One contact already made by a campaign with a cap of 1 per 30 days.
    expect(await store.claimContact(phone, 1, 30 * 86_400_000, Date.now())).toBe(true);
    const input: CallWorkflowInput = {
      flow,
      recipient: { id: 'cap-1', phone },
      campaignId: 'manual',
      hints: persona,
      contactCap: { max: 1, windowDays: 30 },
    };
    const handle = await t.client.workflow.start<typeof outboundCall>('outboundCall', {
      taskQueue: t.config.temporal.taskQueue,
      workflowId: 'call:manual:cap-1',
      args: [input],
    });
    expect(await handle.result()).toMatchObject({ outcome: 'contactCapped', dials: 0 });
    expect(await t.simulatorDials('call:manual:')).toEqual([]);
  }, 60_000);
});
