// The shipped examples do what their descriptions say.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { parseFlowText } from '../../src/flow/document.js';
import { parseFlow } from '../../src/flow/validate.js';
import { drive } from '../helpers/drive.js';

const load = (name: string) => {
  const text = readFileSync(new URL(`../../examples/${name}`, import.meta.url), 'utf8');
  const parsed = parseFlowText(text, name);
  if (!parsed.ok) throw new Error(parsed.message);
  return parseFlow(parsed.doc);
};
const trail = (r: { trail: Array<{ element: string; branch: string }> }) =>
  r.trail.map((t) => `${t.element}:${t.branch}`);
const zagreb = (iso: string) => DateTime.fromISO(iso, { zone: 'Europe/Zagreb' }).toMillis();

describe('examples', () => {
  it('appointment reminder: voicemail leaves a message', async () => {
    const d = await drive(load('appointment-reminder.json'), { attempts: ['voicemail'] });
    expect(trail(d.result)).toEqual(['call:voicemail', 'leave-message:played']);
    expect(d.result.dataPayload).toEqual({ firstName: 'Ana' });
  });

  it('NPS: 9# is a promoter, saved to the profile; voicemail falls back to SMS', async () => {
    const flow = load('nps-survey.yaml');
    const opts = { at: zagreb('2026-11-24T11:00'), recipient: { timeZone: 'Europe/Zagreb' } };
    const d = await drive(flow, { keys: ['9#'] }, opts);
    expect(trail(d.result)).toEqual([
      'call:answered',
      'question:played',
      'score:noMatch',
      'check:conditions[0]',
      'promoter:played',
      'save:next',
    ]);
    expect(d.actions[0]).toMatchObject({ type: 'updateProfile', attributes: { npsScore: 9 } });
    const low = await drive(flow, { keys: ['3#'] }, opts);
    expect(trail(low.result)).toContain('detractor:played');
    const vm = await drive(flow, { attempts: ['voicemail'] }, opts);
    expect(trail(vm.result)).toEqual(['call:voicemail', 'voicemail:played', 'sms-link:next']);
    expect(vm.actions[0]).toMatchObject({
      type: 'sendSms',
      text: 'Hi Ana, tell us how we did: https://survey.example.com/nps/r1',
    });
  });

  it('inbound language menu: 2 → Spanish, silence twice → English', async () => {
    const flow = load('inbound-language-menu.yaml');
    const es = await drive(flow, { keys: ['2'] }, { incoming: { to: '+14155550111' } });
    expect(trail(es.result)).toEqual(['incoming:next', 'menu:played', 'choose:2', 'spanish:played']);
    expect(es.commands.find((c) => c.action === 'say' && c.elementId === 'spanish')).toMatchObject({ language: 'es' });
    const silent = await drive(flow, { keys: [] }, { incoming: { to: '+14155550111' } });
    expect(trail(silent.result)).toEqual([
      'incoming:next',
      'menu:played',
      'choose:noMatch',
      'menu-again:played',
      'choose-again:noMatch',
      'english:played',
    ]);
  });

  it('inbound order status: masked account, HTTP lookup, agent when the lookup fails', async () => {
    const flow = load('inbound-order-status.yaml');
    const ok = await drive(
      flow,
      { keys: ['12345678', ''] },
      {
        incoming: { to: '+14155550123' },
        action: () => ({ ok: true, data: { status: 200, headers: {}, body: { status: 'on its way', eta: 'Friday' } } }),
      },
    );
    expect(trail(ok.result)).toEqual([
      'incoming:next',
      'welcome:played',
      'account:noMatch',
      'lookup:next',
      'found:conditions[0]',
      'read-status:played',
      'more:noMatch',
      'goodbye:played',
    ]);
    expect(ok.actions[0]).toMatchObject({ url: 'https://orders.example.com/api/orders?account=12345678' });
    expect(ok.result.trail[2]).toMatchObject({ input: 'xxxx' });
    expect(JSON.stringify(ok.result)).not.toContain('12345678');
    const down = await drive(
      flow,
      { keys: ['12345678'], forward: 'answered' },
      {
        incoming: { to: '+14155550123' },
        profile: { accountManager: '+14155550999' },
        action: () => ({ ok: false, error: 'HTTP 503' }),
      },
    );
    expect(trail(down.result)).toEqual([
      'incoming:next',
      'welcome:played',
      'account:noMatch',
      'lookup:onError',
      'agent:forwarded',
    ]);
    expect(down.commands.find((c) => c.action === 'forward')).toMatchObject({ to: '+14155550999' });
  });

  it('callback: no answer on Wednesday → call again on Monday 10:00 Zagreb time', async () => {
    const start = zagreb('2026-11-25T15:00');
    const d = await drive(load('callback.yaml'), { attempts: ['noAnswer', 'noAnswer', 'answered'] }, { at: start });
    expect(trail(d.result)).toEqual(['first-call:noAnswer', 'wait:next', 'second-call:answered', 'message:played']);
    expect(d.result.dials).toBe(3);
    expect(d.commands.filter((c) => c.action === 'say')).toHaveLength(2);
    const secondDialAt = start + d.sleeps.reduce((a, s) => a + s.ms, 0);
    expect(DateTime.fromMillis(secondDialAt, { zone: 'Europe/Zagreb' }).toFormat('ccc HH:mm')).toBe('Mon 10:00');
  });
});
