// Small formatting helpers shared by the campaign and call pages (the browser's Intl, no library).

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatDateTime(iso: string | undefined): string {
  if (!iso) return '–';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : dateTime.format(ms);
}

/** `3 min 20 s`, `2 h 5 min`, `4 d 3 h`: how long until (or since) something. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h${min % 60 ? ` ${min % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

export function formatSpeed(s: { calls: number; per: string; spread?: boolean }): string {
  return `${s.calls}/${s.per}${s.spread ? ' spread' : ''}`;
}

export function percent(part: number, whole: number): number {
  return whole > 0 ? Math.min(100, Math.round((part / whole) * 100)) : 0;
}

/** Campaign ids as the API takes them: a letter or digit, then letters, digits, `-` and `_`, at most 64 (src/client/campaigns.ts). */
export const CAMPAIGN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function defaultCampaignId(flowId: string, now = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace(/[-:T]/g, '');
  return `${flowId}-${stamp}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
}
