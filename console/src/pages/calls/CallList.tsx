// /calls[?campaignId=…]: calls, newest first, a page of 100 at a time.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { Link, navigate, useSearchParams } from '../../lib/router.js';
import { listCalls } from '../campaigns/data.js';
import { ErrorAlert, useAsync } from '../campaigns/async.js';
import { formatDateTime } from '../campaigns/format.js';
import type { CallSummary } from '../campaigns/types.js';

export const callPath = (callId: string) => `/calls/${encodeURIComponent(callId)}`;

export function CallList() {
  const campaignId = useSearchParams().get('campaignId') ?? '';
  const [pageToken, setPageToken] = useState<string>();
  const [earlier, setEarlier] = useState<CallSummary[]>([]);
  const [filter, setFilter] = useState(campaignId);
  const filterId = useId();
  const page = useAsync((signal) => listCalls({ campaignId, pageToken }, signal), [campaignId, pageToken]);

  useEffect(() => {
    setFilter(campaignId);
    setPageToken(undefined);
    setEarlier([]);
  }, [campaignId]);

  const calls = [...earlier, ...(page.data?.calls ?? [])];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const id = filter.trim();
    navigate(id ? `/calls?campaignId=${encodeURIComponent(id)}` : '/calls');
  };
  return (
    <section className="calls" aria-labelledby="calls-title">
      {campaignId ? (
        <p className="breadcrumbs">
          <Link to="/campaigns">Campaigns</Link> /{' '}
          <Link to={`/campaigns/${encodeURIComponent(campaignId)}`}>{campaignId}</Link> / calls
        </p>
      ) : null}
      <h1 id="calls-title">{campaignId ? `Calls of ${campaignId}` : 'Calls'}</h1>
      <form className="filter" onSubmit={submit} role="search" aria-label="Filter calls">
        <label htmlFor={filterId}>Campaign</label>
        <input
          id={filterId}
          type="text"
          value={filter}
          placeholder="all campaigns"
          onChange={(e) => setFilter(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
        <button type="submit" className="button">
          Show
        </button>
      </form>
      <ErrorAlert error={page.error} />
      {page.loading && calls.length === 0 ? <p>Loading calls…</p> : null}
      {!page.loading && calls.length === 0 && !page.error ? <p>No calls.</p> : null}
      {calls.length > 0 ? (
        <table className="data-table">
          <caption className="visually-hidden">Calls, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Call</th>
              <th scope="col">Recipient</th>
              <th scope="col">Status</th>
              <th scope="col">Outcome</th>
              <th scope="col">Started</th>
              <th scope="col">Ended</th>
            </tr>
          </thead>
          <tbody>
            {calls.map((c) => (
              <tr key={c.callId}>
                <th scope="row">
                  <Link to={callPath(c.callId)}>{c.callId}</Link>
                </th>
                <td>{c.recipientId}</td>
                <td>
                  <span className={`state state-${c.status}`}>{c.status}</span>
                </td>
                <td>{c.outcome ?? '–'}</td>
                <td>{formatDateTime(c.startTime)}</td>
                <td>{formatDateTime(c.closeTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {page.data?.nextPageToken ? (
        <button
          type="button"
          className="button"
          disabled={page.loading}
          onClick={() => {
            setEarlier(calls);
            setPageToken(page.data?.nextPageToken);
          }}
        >
          More calls
        </button>
      ) : null}
    </section>
  );
}
