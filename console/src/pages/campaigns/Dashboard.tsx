// /campaigns/:id: a campaign live. The status comes from the API's event stream (a status event on
// every change, `end` when the campaign is over); if the stream fails the page polls instead.
// Dials per minute are worked out here from successive statuses and drawn as a sparkline.
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from '../../lib/router.js';
import { useHasRole } from '../../lib/session.js';
import { campaignEventsUrl, controlCampaign, getCampaign, reportUrl, type CampaignAction } from './data.js';
import { ErrorAlert } from './async.js';
import { formatDateTime, formatDuration, percent } from './format.js';
import { Sparkline, type RatePoint } from './charts.js';
import { FINISHED_STATES, type CampaignStatus } from './types.js';

const POLL_MS = 2000;
/** Dials per minute are counted over this trailing window. */
const RATE_WINDOW_MS = 60_000;
/** The sparkline shows this much history. */
const HISTORY_MS = 10 * 60_000;

interface Sample {
  at: number;
  dials: number;
}

const dialsOf = (s: CampaignStatus) => (s.placed ?? s.completed + s.inFlight) + (s.retrySlots ?? 0);

/** The campaign's status, live: from the event stream, else by polling. */
function useCampaignStatus(id: string): {
  status?: CampaignStatus;
  error?: unknown;
  rates: RatePoint[];
  set: (s: CampaignStatus) => void;
} {
  const [status, setStatus] = useState<CampaignStatus>();
  const [error, setError] = useState<unknown>();
  const [rates, setRates] = useState<RatePoint[]>([]);
  const samples = useRef<Sample[]>([]);

  const accept = (s: CampaignStatus) => {
    setStatus(s);
    setError(undefined);
    const now = Date.now();
    const list = samples.current.filter((x) => now - x.at <= HISTORY_MS);
    list.push({ at: now, dials: dialsOf(s) });
    samples.current = list;
    // The API's own count (dials of calls that ended in the last minute) where it gives one; else
    // the placements seen by this page over the trailing minute.
    if (s.dialsPerMinute !== undefined) {
      const perMinute = s.dialsPerMinute;
      setRates((r) => [...r.filter((p) => now - p.at <= HISTORY_MS), { at: now, perMinute }]);
      return;
    }
    const base = list.find((x) => now - x.at <= RATE_WINDOW_MS) ?? list[0]!;
    const span = now - base.at;
    // Under a few seconds of history the rate is noise: wait for more.
    if (span >= 3000) {
      const perMinute = Math.max(0, ((dialsOf(s) - base.dials) * 60_000) / span);
      setRates((r) => [...r.filter((p) => now - p.at <= HISTORY_MS), { at: now, perMinute }]);
    }
  };
  const acceptRef = useRef(accept);
  acceptRef.current = accept;

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let source: EventSource | undefined;
    const poll = async () => {
      try {
        const s = await getCampaign(id);
        if (stopped) return;
        acceptRef.current(s);
        if (FINISHED_STATES.has(s.state)) return;
      } catch (err) {
        if (stopped) return;
        setError(err);
      }
      timer = setTimeout(() => void poll(), POLL_MS);
    };
    // The first answer at once, whatever the stream does.
    void getCampaign(id).then(
      (s) => {
        if (stopped) return;
        acceptRef.current(s);
        if (FINISHED_STATES.has(s.state)) return;
        source = new EventSource(campaignEventsUrl(id));
        source.addEventListener('status', (e) => {
          acceptRef.current(JSON.parse((e as MessageEvent<string>).data) as CampaignStatus);
        });
        source.addEventListener('end', () => source?.close());
        source.addEventListener('error', () => {
          // The stream is gone (server restart, proxy timeout, a draft without one): poll.
          source?.close();
          if (!stopped && timer === undefined) timer = setTimeout(() => void poll(), POLL_MS);
        });
      },
      (err: unknown) => {
        if (!stopped) setError(err);
      },
    );
    return () => {
      stopped = true;
      source?.close();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [id]);
  return { status, error, rates, set: accept };
}

export function Dashboard({ id }: { id: string }) {
  const { status: s, error, rates, set } = useCampaignStatus(id);
  const [actionError, setActionError] = useState<unknown>();
  const [busy, setBusy] = useState<CampaignAction>();
  const [confirmCancel, setConfirmCancel] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const cancelRef = useRef<HTMLButtonElement>(null);
  const ids = { progress: useId() };
  const mayControl = useHasRole('operator');

  useEffect(() => {
    if (confirmCancel) confirmRef.current?.focus();
  }, [confirmCancel]);

  const act = async (action: CampaignAction) => {
    setBusy(action);
    setActionError(undefined);
    try {
      const next = await controlCampaign(id, action);
      // The control routes answer the status; merge in case one answers only part of it.
      if (s) set({ ...s, ...next });
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(undefined);
      setConfirmCancel(false);
    }
  };

  const rateNow = rates.at(-1)?.perMinute;
  const finished = s ? FINISHED_STATES.has(s.state) : false;
  const pct = s ? percent(s.completed, s.total) : 0;
  const etaMs = s?.eta ? Date.parse(s.eta) - Date.now() : undefined;

  return (
    <section className="campaigns dashboard" aria-labelledby="dashboard-title">
      <p className="breadcrumbs">
        <Link to="/campaigns">Campaigns</Link> / {id}
      </p>
      <div className="page-header">
        <h1 id="dashboard-title">Campaign {id}</h1>
        {s ? <span className={`state state-${s.state}`}>{s.state}</span> : null}
      </div>
      <ErrorAlert error={error} />
      {!s && !error ? <p>Loading…</p> : null}
      {s ? (
        <>
          <div className="progress-block">
            <label htmlFor={ids.progress}>Calls done</label>
            <progress id={ids.progress} max={Math.max(1, s.total)} value={s.completed}>
              {pct}%
            </progress>
            <p className="progress-text">
              {s.completed} of {s.total} done ({pct}%)
            </p>
            {/* Read out on state changes and at every tenth, not on every count. */}
            <p className="visually-hidden" role="status" aria-live="polite">
              {finished
                ? `Campaign ${s.state}: ${s.completed} of ${s.total} calls done.`
                : `Campaign ${s.state}, ${Math.floor(pct / 10) * 10}% done.`}
            </p>
          </div>
          <dl className="stats">
            <div>
              <dt>In flight</dt>
              <dd>{s.inFlight}</dd>
            </div>
            <div>
              <dt>To place</dt>
              <dd>{s.remaining}</dd>
            </div>
            {s.waitingForWindow ? (
              <div>
                <dt>Waiting for their window</dt>
                <dd>{s.waitingForWindow}</dd>
              </div>
            ) : null}
            <div>
              <dt>Dials per minute</dt>
              <dd>{rateNow === undefined ? '–' : Math.round(rateNow)}</dd>
            </div>
            <div>
              <dt>Calling speed</dt>
              <dd>{s.speed ?? '–'}</dd>
            </div>
            {s.maxConcurrent ? (
              <div>
                <dt>Max concurrent</dt>
                <dd>{s.maxConcurrent}</dd>
              </div>
            ) : null}
            <div>
              <dt>ETA (last first dial)</dt>
              <dd>
                {finished
                  ? 'done'
                  : s.state !== 'draft' && s.remaining === 0
                    ? 'all placed'
                    : s.eta
                      ? `${formatDateTime(s.eta)}${etaMs !== undefined && etaMs > 0 ? ` (in ${formatDuration(etaMs)})` : ''}`
                      : '–'}
              </dd>
            </div>
          </dl>
          <figure className="chart-figure">
            <Sparkline
              points={rates}
              label={`Dials per minute over the last minutes${rateNow === undefined ? '' : `, now ${Math.round(rateNow)}`}`}
            />
            <figcaption>
              Dials per minute over the last minutes
              {rates.length > 1 ? `: peak ${Math.round(Math.max(...rates.map((r) => r.perMinute)))}` : ' (measuring…)'}
            </figcaption>
          </figure>
          {mayControl ? (
            <div className="controls" role="group" aria-label="Campaign controls">
              {s.state === 'draft' ? (
                <button
                  type="button"
                  className="button primary"
                  disabled={busy !== undefined}
                  onClick={() => void act('start')}
                >
                  Start
                </button>
              ) : null}
              {s.state === 'running' ? (
                <button
                  type="button"
                  className="button"
                  disabled={busy !== undefined}
                  onClick={() => void act('pause')}
                >
                  {busy === 'pause' ? 'Pausing…' : 'Pause'}
                </button>
              ) : null}
              {s.state === 'paused' ? (
                <button
                  type="button"
                  className="button primary"
                  disabled={busy !== undefined}
                  onClick={() => void act('resume')}
                >
                  {busy === 'resume' ? 'Resuming…' : 'Resume'}
                </button>
              ) : null}
              {(s.state === 'running' || s.state === 'paused') && !confirmCancel ? (
                <button
                  type="button"
                  ref={cancelRef}
                  className="button danger"
                  disabled={busy !== undefined}
                  onClick={() => setConfirmCancel(true)}
                >
                  Cancel campaign…
                </button>
              ) : null}
            </div>
          ) : null}
          {confirmCancel ? (
            <div className="confirm" role="alertdialog" aria-labelledby="cancel-title" aria-describedby="cancel-desc">
              <p id="cancel-title">
                <strong>Cancel campaign {id}?</strong>
              </p>
              <p id="cancel-desc">
                No new calls are placed; calls in progress finish. A cancelled campaign cannot be resumed.
              </p>
              <button
                type="button"
                ref={confirmRef}
                className="button danger"
                disabled={busy !== undefined}
                onClick={() => void act('cancel')}
              >
                {busy === 'cancel' ? 'Cancelling…' : 'Yes, cancel it'}
              </button>{' '}
              <button
                type="button"
                className="button"
                onClick={() => {
                  setConfirmCancel(false);
                  // Back to where the keyboard was.
                  setTimeout(() => cancelRef.current?.focus(), 0);
                }}
              >
                Keep it going
              </button>
            </div>
          ) : null}
          <ErrorAlert error={actionError} />
          <div className="columns">
            <CountTable title="Outcomes" keyName="Outcome" counts={s.byOutcome} />
            {s.byBranch ? (
              <CountTable title="Branches taken" keyName="Branch" counts={s.byBranch} share={false} />
            ) : null}
          </div>
          <h2>Report and calls</h2>
          <ul className="link-list">
            <li>
              <a href={reportUrl(id, 'csv')} download={`${id}-report.csv`}>
                Download the report (CSV)
              </a>
            </li>
            <li>
              <a href={reportUrl(id, 'json')} download={`${id}-report.ndjson`}>
                Download the report (JSON lines)
              </a>
            </li>
            <li>
              <Link to={`/calls?campaignId=${encodeURIComponent(id)}`}>The campaign’s calls</Link>
            </li>
          </ul>
        </>
      ) : null}
    </section>
  );
}

/**
 * Counts as a table with bars. `share`: the percentage of all counted (outcomes add up to the calls
 * done; branches do not, a call takes several).
 */
function CountTable({
  title,
  keyName,
  counts,
  share = true,
}: {
  title: string;
  keyName: string;
  counts: Record<string, number>;
  share?: boolean;
}) {
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const whole = rows.reduce((n, [, v]) => n + v, 0);
  const max = Math.max(1, ...rows.map(([, v]) => v));
  return (
    <table className="data-table counts">
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">{keyName}</th>
          <th scope="col">Calls</th>
          {share ? <th scope="col">Share</th> : null}
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <tr>
            <td colSpan={share ? 3 : 2}>none yet</td>
          </tr>
        ) : null}
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>
              {share ? (
                v
              ) : (
                <>
                  <Bar fraction={v / max} /> {v}
                </>
              )}
            </td>
            {share ? (
              <td>
                <Bar fraction={v / max} /> {percent(v, whole)}%
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Bar({ fraction }: { fraction: number }) {
  return (
    <span className="bar" aria-hidden="true">
      <span className="bar-fill" style={{ width: `${Math.round(fraction * 100)}%` }} />
    </span>
  );
}
