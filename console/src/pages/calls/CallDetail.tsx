// /calls/:callId: a call's status and result, its transcript (masked input hidden by the API) and
// a player for each of its recordings (the API serves them with Range support, so seeking works).
import { Link } from '../../lib/router.js';
import { getCall, getTranscript, listRecordings, recordingUrl } from '../campaigns/data.js';
import { ErrorAlert, useAsync } from '../campaigns/async.js';
import { formatDateTime, formatDuration } from '../campaigns/format.js';
import type { TranscriptEvent } from '../campaigns/types.js';

const KIND_LABEL: Record<TranscriptEvent['kind'], string> = {
  command: 'sent',
  event: 'heard',
  wait: 'waiting',
  action: 'action',
};

const formatBytes = (n: number) =>
  n < 1024 ? `${n} bytes` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`;

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const timeOf = (iso: string) => {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : timeOnly.format(ms);
};

export function CallDetailPage({ callId }: { callId: string }) {
  const call = useAsync((signal) => getCall(callId, signal), [callId]);
  const transcript = useAsync((signal) => getTranscript(callId, signal), [callId]);
  const recordings = useAsync((signal) => listRecordings(callId, signal), [callId]);
  const c = call.data;
  const result = c?.result;
  const trail = result?.trail ?? [];
  return (
    <section className="calls call-detail" aria-labelledby="call-title">
      <p className="breadcrumbs">
        <Link to="/calls">Calls</Link>
        {c ? (
          <>
            {' '}
            / <Link to={`/calls?campaignId=${encodeURIComponent(c.campaignId)}`}>{c.campaignId}</Link>
          </>
        ) : null}{' '}
        / {callId}
      </p>
      <h1 id="call-title">Call {callId}</h1>
      <ErrorAlert error={call.error} />
      {c ? (
        <dl className="stats">
          <div>
            <dt>Status</dt>
            <dd>
              <span className={`state state-${c.status}`}>{c.status}</span>
            </dd>
          </div>
          <div>
            <dt>Outcome</dt>
            <dd>{result?.outcome ?? c.outcome ?? '–'}</dd>
          </div>
          <div>
            <dt>Recipient</dt>
            <dd>{c.recipientId}</dd>
          </div>
          <div>
            <dt>Campaign</dt>
            <dd>
              {c.campaignId === 'api' ? (
                'api'
              ) : (
                <Link to={`/campaigns/${encodeURIComponent(c.campaignId)}`}>{c.campaignId}</Link>
              )}
            </dd>
          </div>
          <div>
            <dt>Dials</dt>
            <dd>{result?.dials ?? '–'}</dd>
          </div>
          <div>
            <dt>Started</dt>
            <dd>{formatDateTime(c.startTime)}</dd>
          </div>
          <div>
            <dt>Ended</dt>
            <dd>
              {formatDateTime(c.closeTime)}
              {c.closeTime ? ` (${formatDuration(Date.parse(c.closeTime) - Date.parse(c.startTime))})` : ''}
            </dd>
          </div>
        </dl>
      ) : null}
      {result?.error ? (
        <p className="error">
          <strong>Why:</strong> {result.error}
        </p>
      ) : null}
      {trail.length > 0 ? (
        <>
          <h2>Path through the flow</h2>
          <ol className="trail">
            {trail.map((t, i) => (
              <li key={i}>
                <code>{t.element}</code> → {t.branch}
                {t.input !== undefined ? ` (${t.input})` : ''}
              </li>
            ))}
          </ol>
        </>
      ) : null}

      <h2 id="transcript-title">Transcript</h2>
      <ErrorAlert error={transcript.error} />
      {transcript.loading && !transcript.data ? <p>Loading the transcript…</p> : null}
      {transcript.data && transcript.data.length === 0 ? <p>Nothing happened on this call yet.</p> : null}
      {transcript.data && transcript.data.length > 0 ? (
        <table className="data-table call-transcript" aria-labelledby="transcript-title">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Element</th>
              <th scope="col">Kind</th>
              <th scope="col">What</th>
            </tr>
          </thead>
          <tbody>
            {transcript.data.map((e, i) => (
              <tr key={i} className={`kind-${e.kind}`}>
                <td>
                  <time dateTime={e.at}>{timeOf(e.at)}</time>
                </td>
                <td>{e.elementId ? <code>{e.elementId}</code> : ''}</td>
                <td>{KIND_LABEL[e.kind] ?? e.kind}</td>
                <td>
                  {e.text}
                  {e.until ? ` (until ${timeOf(e.until)})` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}

      <h2>Recordings</h2>
      <ErrorAlert error={recordings.error} />
      {recordings.data && recordings.data.length === 0 ? <p>This call has no recordings.</p> : null}
      {recordings.data && recordings.data.length > 0 ? (
        <ul className="recordings">
          {recordings.data.map((r, i) => (
            <li key={r.name}>
              <p id={`recording-${i}`}>
                <strong>{r.name}</strong> — {(r.durationMs / 1000).toFixed(1)} s, {formatBytes(r.size)},{' '}
                {formatDateTime(r.created)}
              </p>
              <audio controls preload="metadata" src={recordingUrl(r.name)} aria-labelledby={`recording-${i}`}>
                <a href={recordingUrl(r.name)}>Download {r.name}</a>
              </audio>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
