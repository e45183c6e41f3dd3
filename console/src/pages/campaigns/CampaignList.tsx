// /campaigns: every campaign with its state and progress; "New campaign" opens the wizard.
import { useEffect } from 'react';
import { Link } from '../../lib/router.js';
import { useHasRole } from '../../lib/session.js';
import { listCampaigns } from './data.js';
import { ErrorAlert, useAsync } from './async.js';
import { formatDateTime, percent } from './format.js';

const REFRESH_MS = 5000;

export function CampaignList() {
  const campaigns = useAsync((signal) => listCampaigns(signal), []);
  const mayCreate = useHasRole('operator');
  const { data, reload } = campaigns;
  // Campaigns under way move: read the list again every few seconds while one is.
  useEffect(() => {
    if (!data?.some((c) => c.state === 'running' || c.state === 'cancelling')) return;
    const timer = setTimeout(reload, REFRESH_MS);
    return () => clearTimeout(timer);
  }, [data, reload]);
  return (
    <section className="campaigns" aria-labelledby="campaigns-title">
      <div className="page-header">
        <h1 id="campaigns-title">Campaigns</h1>
        {mayCreate ? (
          <Link to="/campaigns/new" className="button primary">
            New campaign
          </Link>
        ) : null}
      </div>
      <ErrorAlert error={campaigns.error} />
      {campaigns.loading && !campaigns.data ? <p aria-live="polite">Loading campaigns…</p> : null}
      {campaigns.data && campaigns.data.length === 0 ? (
        <p>No campaigns yet. Start one with “New campaign”: pick a flow, upload the recipients, set the speed.</p>
      ) : null}
      {campaigns.data && campaigns.data.length > 0 ? (
        <table className="data-table">
          <caption className="visually-hidden">Campaigns, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Campaign</th>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Flow</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {campaigns.data.map((c) => (
              <tr key={c.campaignId}>
                <th scope="row">
                  <Link to={`/campaigns/${encodeURIComponent(c.campaignId)}`}>{c.campaignId}</Link>
                </th>
                <td>
                  <span className={`state state-${c.state}`}>{c.state}</span>
                </td>
                <td>
                  <progress
                    max={Math.max(1, c.total)}
                    value={c.completed}
                    aria-label={`${c.campaignId}: ${c.completed} of ${c.total} calls done`}
                  />{' '}
                  <span className="progress-text">
                    {c.completed}/{c.total} ({percent(c.completed, c.total)}%)
                  </span>
                </td>
                <td>{c.flow ? `${c.flow.id} v${c.flow.version}` : '–'}</td>
                <td>{formatDateTime(c.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
