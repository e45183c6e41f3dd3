// /campaigns/new: the campaign wizard. 1 flow and version, 2 settings (speed, concurrency, contact
// cap; the delivery window is the flow's), 3 recipients (the draft is created with the settings and
// the file uploaded; the API checks every row and the page lists the problems), 4 the forecast of
// that draft, then start. The API fixes a draft's flow and settings when it creates it, so the
// settings come before the upload and are read-only after it. Each step is a form (Enter goes on),
// and the step's heading takes focus when it opens.
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { navigate } from '../../lib/router.js';
import {
  controlCampaign,
  createCampaign,
  flowDeliveryWindow,
  getForecast,
  listFlows,
  uploadRecipients,
  type CampaignSettings,
} from './data.js';
import { ErrorAlert, useAsync } from './async.js';
import { CAMPAIGN_ID, defaultCampaignId, formatDateTime, formatSpeed } from './format.js';
import { ForecastChart } from './charts.js';
import type { DeliveryWindow, Forecast, UploadResult } from './types.js';

const STEPS = ['Flow', 'Settings', 'Recipients', 'Forecast'] as const;

interface SettingsForm {
  calls: number;
  per: 'minute' | 'hour' | 'day';
  spread: boolean;
  maxConcurrent: number;
  capEnabled: boolean;
  capMax: number;
  capDays: number;
  avgCallSeconds: number;
}

const DEFAULT_SETTINGS: SettingsForm = {
  calls: 60,
  per: 'minute',
  spread: false,
  maxConcurrent: 100,
  capEnabled: false,
  capMax: 3,
  capDays: 30,
  avgCallSeconds: 60,
};

function toSettings(f: SettingsForm): CampaignSettings {
  return {
    callingSpeed: { calls: f.calls, per: f.per, ...(f.spread ? { spread: true } : {}) },
    maxConcurrent: f.maxConcurrent,
    avgCallSeconds: f.avgCallSeconds,
    ...(f.capEnabled ? { contactCap: { max: f.capMax, windowDays: f.capDays } } : {}),
  };
}

export function Wizard() {
  const [step, setStep] = useState(0);
  const [flowId, setFlowId] = useState('');
  const [version, setVersion] = useState(0);
  const [campaignId, setCampaignId] = useState('');
  const [idTouched, setIdTouched] = useState(false);
  const [draftCreated, setDraftCreated] = useState(false);
  const [upload, setUpload] = useState<UploadResult>();
  const [settings, setSettings] = useState<SettingsForm>(DEFAULT_SETTINGS);
  const [forecast, setForecast] = useState<Forecast>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const firstRender = useRef(true);

  // The step's heading takes focus when the step changes (not on the first render).
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    headingRef.current?.focus();
  }, [step]);

  const go = (next: number) => {
    setError(undefined);
    setStep(next);
  };

  /** Runs a step's requests with the buttons disabled and the error shown; true when they succeeded. */
  const run = async (work: () => Promise<void>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    try {
      await work();
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const heading = (
    <h2 ref={headingRef} tabIndex={-1} id="wizard-step-title">
      Step {step + 1} of {STEPS.length}: {STEPS[step]}
    </h2>
  );

  return (
    <section className="campaigns wizard" aria-labelledby="wizard-title">
      <h1 id="wizard-title">New campaign</h1>
      <ol className="wizard-steps" aria-label="Steps">
        {STEPS.map((name, i) => (
          <li key={name} aria-current={i === step ? 'step' : undefined} className={i < step ? 'done' : undefined}>
            <span className="wizard-step-number" aria-hidden="true">
              {i + 1}
            </span>{' '}
            {name}
          </li>
        ))}
      </ol>
      <div className="wizard-panel" role="group" aria-labelledby="wizard-step-title">
        {heading}
        {step === 0 ? (
          <FlowStep
            flowId={flowId}
            version={version}
            campaignId={campaignId}
            locked={draftCreated}
            onFlow={(id, latest) => {
              setFlowId(id);
              setVersion(latest);
              if (!idTouched && id) setCampaignId(defaultCampaignId(id));
            }}
            onVersion={setVersion}
            onCampaignId={(id) => {
              setIdTouched(true);
              setCampaignId(id);
            }}
            onNext={() => go(1)}
          />
        ) : null}
        {step === 1 ? (
          <SettingsStep
            flowId={flowId}
            version={version}
            value={settings}
            locked={draftCreated}
            onChange={setSettings}
            onBack={() => go(0)}
            onNext={() => go(2)}
          />
        ) : null}
        {step === 2 ? (
          <RecipientsStep
            upload={upload}
            busy={busy}
            onUpload={(file) =>
              run(async () => {
                if (!draftCreated) {
                  await createCampaign(campaignId, { id: flowId, version }, toSettings(settings));
                  setDraftCreated(true);
                }
                setUpload(undefined);
                setUpload(await uploadRecipients(campaignId, file));
              })
            }
            onBack={() => go(1)}
            onNext={() =>
              run(async () => {
                setForecast(await getForecast(campaignId));
                go(3);
              })
            }
          />
        ) : null}
        {step === 3 && forecast ? (
          <ForecastStep
            forecast={forecast}
            speed={formatSpeed(settings)}
            maxConcurrent={settings.maxConcurrent}
            avgCallSeconds={settings.avgCallSeconds}
            busy={busy}
            onBack={() => go(2)}
            onStart={() =>
              run(async () => {
                await controlCampaign(campaignId, 'start');
                navigate(`/campaigns/${encodeURIComponent(campaignId)}`);
              })
            }
          />
        ) : null}
        <ErrorAlert error={error} />
      </div>
    </section>
  );
}

function StepButtons({
  onBack,
  next,
  busy,
  disabled,
}: {
  onBack?: () => void;
  next: string;
  busy?: boolean;
  disabled?: boolean;
}) {
  return (
    <div className="wizard-buttons">
      {onBack ? (
        <button type="button" className="button" onClick={onBack} disabled={busy}>
          Back
        </button>
      ) : null}
      <button type="submit" className="button primary" disabled={busy || disabled} aria-busy={busy || undefined}>
        {busy ? 'Working…' : next}
      </button>
    </div>
  );
}

function FlowStep(props: {
  flowId: string;
  version: number;
  campaignId: string;
  locked: boolean;
  onFlow: (id: string, latest: number) => void;
  onVersion: (v: number) => void;
  onCampaignId: (id: string) => void;
  onNext: () => void;
}) {
  const flows = useAsync((signal) => listFlows(signal), []);
  const ids = { flow: useId(), version: useId(), campaign: useId(), campaignHelp: useId() };
  const latest = flows.data?.find((f) => f.id === props.flowId)?.latest ?? 0;
  const idValid = CAMPAIGN_ID.test(props.campaignId);
  const { onFlow } = props;
  // Preselect the only flow there is.
  useEffect(() => {
    const only = flows.data?.length === 1 ? flows.data[0] : undefined;
    if (only && !props.flowId) onFlow(only.id, only.latest);
  }, [flows.data, props.flowId, onFlow]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (props.flowId && props.version > 0 && idValid) props.onNext();
  };
  return (
    <form onSubmit={submit} noValidate>
      <ErrorAlert error={flows.error} />
      {props.locked ? (
        <p className="hint">
          The draft campaign exists (its recipients are uploaded): its flow and id are fixed. Open “New campaign” again
          to start over.
        </p>
      ) : null}
      <div className="field">
        <label htmlFor={ids.flow}>Flow</label>
        <select
          id={ids.flow}
          value={props.flowId}
          disabled={props.locked || !flows.data}
          required
          onChange={(e) => props.onFlow(e.target.value, flows.data?.find((f) => f.id === e.target.value)?.latest ?? 0)}
        >
          <option value="">{flows.loading ? 'Loading flows…' : 'Choose a published flow'}</option>
          {flows.data?.map((f) => (
            <option key={f.id} value={f.id}>
              {f.id}
            </option>
          ))}
        </select>
        {flows.data && flows.data.length === 0 ? (
          <p className="hint">No flow is published yet: publish one in the flow editor first.</p>
        ) : null}
      </div>
      <div className="field">
        <label htmlFor={ids.version}>Version</label>
        <select
          id={ids.version}
          value={props.version || ''}
          disabled={props.locked || latest === 0}
          onChange={(e) => props.onVersion(Number(e.target.value))}
        >
          {latest === 0 ? <option value="">–</option> : null}
          {Array.from({ length: latest }, (_, i) => latest - i).map((v) => (
            <option key={v} value={v}>
              {v}
              {v === latest ? ' (latest)' : ''}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={ids.campaign}>Campaign id</label>
        <input
          id={ids.campaign}
          type="text"
          value={props.campaignId}
          disabled={props.locked}
          aria-describedby={ids.campaignHelp}
          aria-invalid={props.campaignId !== '' && !idValid ? true : undefined}
          onChange={(e) => props.onCampaignId(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
        <p className="hint" id={ids.campaignHelp}>
          A letter or digit, then letters, digits, “-” and “_”, at most 64 in all; it names the campaign’s calls and its
          report.
        </p>
      </div>
      <StepButtons next="Next: settings" disabled={!props.flowId || props.version === 0 || !idValid} />
    </form>
  );
}

function RecipientsStep(props: {
  upload?: UploadResult;
  busy: boolean;
  /** True when the upload succeeded. */
  onUpload: (file: File) => Promise<boolean>;
  onBack: () => void;
  onNext: () => void;
}) {
  const [file, setFile] = useState<File>();
  const ids = { file: useId(), help: useId() };
  const u = props.upload;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (u && u.summary.valid > 0 && !file) props.onNext();
    else if (file)
      // After a failed upload the file stays chosen, for another try.
      void props.onUpload(file).then((ok) => {
        if (ok) setFile(undefined);
      });
  };
  const canGoOn = u !== undefined && u.summary.valid > 0 && !file;
  return (
    <form onSubmit={submit} noValidate>
      <div className="field">
        <label htmlFor={ids.file}>Recipients file (CSV or NDJSON)</label>
        <input
          id={ids.file}
          type="file"
          accept=".csv,.ndjson,.jsonl,text/csv,application/x-ndjson"
          aria-describedby={ids.help}
          onChange={(e) => setFile(e.target.files?.[0])}
        />
        <p className="hint" id={ids.help}>
          One row per recipient: <code>id</code>, <code>phone</code> (E.164), optional <code>timeZone</code> and any
          attributes the flow uses. Every row is checked; rows with problems are skipped.
        </p>
      </div>
      {u ? <UploadSummary result={u} /> : null}
      <div className="wizard-buttons">
        <button type="button" className="button" onClick={props.onBack} disabled={props.busy}>
          Back
        </button>
        {file || !u ? (
          <button
            type="submit"
            className="button primary"
            disabled={props.busy || !file}
            aria-busy={props.busy || undefined}
          >
            {props.busy ? 'Uploading…' : u ? 'Upload again' : 'Upload and check'}
          </button>
        ) : (
          <button type="submit" className="button primary" disabled={!canGoOn || props.busy}>
            {props.busy ? 'Forecasting…' : 'Next: forecast'}
          </button>
        )}
      </div>
    </form>
  );
}

function UploadSummary({ result }: { result: UploadResult }) {
  const { summary, problems } = result;
  const codes = Object.entries(summary.byCode);
  return (
    <div className="upload-summary" aria-live="polite">
      <h3>Checked {summary.rows} rows</h3>
      <dl className="stats">
        <div>
          <dt>Valid</dt>
          <dd>{summary.valid}</dd>
        </div>
        <div>
          <dt>Duplicates</dt>
          <dd>{summary.duplicates}</dd>
        </div>
        <div>
          <dt>Invalid</dt>
          <dd>{summary.invalid}</dd>
        </div>
      </dl>
      {summary.valid === 0 ? (
        <p role="alert" className="error">
          No valid recipient: fix the file and upload it again.
        </p>
      ) : null}
      {codes.length > 0 ? <p>Problems by kind: {codes.map(([code, n]) => `${code} ${n}`).join(', ')}</p> : null}
      {problems.length > 0 ? (
        <table className="data-table row-problems">
          <caption>
            Rows with problems
            {problems.length < summary.invalid + summary.duplicates ? ` (first ${problems.length})` : ''}: they will not
            be called
          </caption>
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Code</th>
              <th scope="col">Problem</th>
            </tr>
          </thead>
          <tbody>
            {problems.map((p) => (
              <tr key={`${p.row}-${p.code}`}>
                <td>{p.row}</td>
                <td>
                  <code>{p.code}</code>
                </td>
                <td>{p.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </div>
  );
}

const DAY_NAMES: Record<string, string> = {
  mon: 'Mon',
  tue: 'Tue',
  wed: 'Wed',
  thu: 'Thu',
  fri: 'Fri',
  sat: 'Sat',
  sun: 'Sun',
};

function describeWindow(w: DeliveryWindow): string {
  const days = w.days.map((d) => DAY_NAMES[d.toLowerCase()] ?? d).join(', ');
  const zone = !w.timeZone || w.timeZone === 'recipient' ? 'each recipient’s own time zone' : w.timeZone;
  return `${days}, ${w.from}–${w.to} in ${zone}`;
}

function SettingsStep(props: {
  flowId: string;
  version: number;
  value: SettingsForm;
  /** The draft exists: the API fixed its settings. */
  locked: boolean;
  onChange: (v: SettingsForm) => void;
  onBack: () => void;
  onNext: () => void;
}) {
  const v = props.value;
  const set = (patch: Partial<SettingsForm>) => props.onChange({ ...v, ...patch });
  const window = useAsync(() => flowDeliveryWindow(props.flowId, props.version), [props.flowId, props.version]);
  const ids = {
    calls: useId(),
    per: useId(),
    spread: useId(),
    spreadHelp: useId(),
    concurrent: useId(),
    concurrentHelp: useId(),
    cap: useId(),
    capMax: useId(),
    capDays: useId(),
    avgCall: useId(),
    avgCallHelp: useId(),
  };
  const valid =
    Number.isInteger(v.calls) &&
    v.calls >= 1 &&
    v.calls <= 1_000_000 &&
    Number.isInteger(v.maxConcurrent) &&
    v.maxConcurrent >= 1 &&
    Number.isInteger(v.avgCallSeconds) &&
    v.avgCallSeconds >= 1 &&
    v.avgCallSeconds <= 86_400 &&
    (!v.capEnabled || (v.capMax >= 1 && v.capDays >= 1));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (valid) props.onNext();
  };
  const locked = props.locked;
  const num = (s: string) => (s === '' ? Number.NaN : Number(s));
  return (
    <form onSubmit={submit} noValidate>
      {locked ? (
        <p className="hint">
          The draft campaign exists (its recipients are uploaded) with these settings: they are fixed now. Open “New
          campaign” again to change them.
        </p>
      ) : null}
      <fieldset disabled={locked}>
        <legend>Calling speed</legend>
        <div className="field-row">
          <div className="field">
            <label htmlFor={ids.calls}>Calls</label>
            <input
              id={ids.calls}
              type="number"
              min={1}
              max={1_000_000}
              step={1}
              value={Number.isNaN(v.calls) ? '' : v.calls}
              onChange={(e) => set({ calls: num(e.target.value) })}
            />
          </div>
          <div className="field">
            <label htmlFor={ids.per}>per</label>
            <select id={ids.per} value={v.per} onChange={(e) => set({ per: e.target.value as SettingsForm['per'] })}>
              <option value="minute">minute</option>
              <option value="hour">hour</option>
              <option value="day">day</option>
            </select>
          </div>
        </div>
        <div className="field checkbox">
          <input
            id={ids.spread}
            type="checkbox"
            checked={v.spread}
            aria-describedby={ids.spreadHelp}
            onChange={(e) => set({ spread: e.target.checked })}
          />
          <label htmlFor={ids.spread}>Spread the calls evenly over each period</label>
        </div>
        <p className="hint" id={ids.spreadHelp}>
          Off: up to {Number.isNaN(v.calls) ? 'N' : v.calls} calls start at the beginning of each {v.per}. On: one call
          every {v.per}/{Number.isNaN(v.calls) ? 'N' : v.calls}.
        </p>
      </fieldset>
      <fieldset>
        <legend>Delivery window</legend>
        {window.loading ? <p>Reading the flow…</p> : null}
        <ErrorAlert error={window.error} />
        {!window.loading && !window.error ? (
          <p>
            {window.data
              ? `Calls go out ${describeWindow(window.data)}.`
              : 'The flow has no delivery window: calls go out at any time of day.'}{' '}
            <span className="hint">
              The window is part of the flow (its start element): change it in the flow editor.
            </span>
          </p>
        ) : null}
      </fieldset>
      <div className="field">
        <label htmlFor={ids.concurrent}>Max concurrent calls</label>
        <input
          id={ids.concurrent}
          type="number"
          min={1}
          step={1}
          value={Number.isNaN(v.maxConcurrent) ? '' : v.maxConcurrent}
          disabled={locked}
          aria-describedby={ids.concurrentHelp}
          onChange={(e) => set({ maxConcurrent: num(e.target.value) })}
        />
        <p className="hint" id={ids.concurrentHelp}>
          At most this many calls at once; the speed slows down when they are all busy.
        </p>
      </div>
      <div className="field">
        <label htmlFor={ids.avgCall}>Average call length (seconds)</label>
        <input
          id={ids.avgCall}
          type="number"
          min={1}
          max={86_400}
          step={1}
          value={Number.isNaN(v.avgCallSeconds) ? '' : v.avgCallSeconds}
          disabled={locked}
          aria-describedby={ids.avgCallHelp}
          onChange={(e) => set({ avgCallSeconds: num(e.target.value) })}
        />
        <p className="hint" id={ids.avgCallHelp}>
          For the forecast only: how long a call lasts, first dial to hang-up.
        </p>
      </div>
      <fieldset disabled={locked}>
        <legend>Contact cap</legend>
        <div className="field checkbox">
          <input
            id={ids.cap}
            type="checkbox"
            checked={v.capEnabled}
            onChange={(e) => set({ capEnabled: e.target.checked })}
          />
          <label htmlFor={ids.cap}>Limit how often a recipient is called, across campaigns</label>
        </div>
        {v.capEnabled ? (
          <div className="field-row">
            <div className="field">
              <label htmlFor={ids.capMax}>At most (calls)</label>
              <input
                id={ids.capMax}
                type="number"
                min={1}
                step={1}
                value={Number.isNaN(v.capMax) ? '' : v.capMax}
                onChange={(e) => set({ capMax: num(e.target.value) })}
              />
            </div>
            <div className="field">
              <label htmlFor={ids.capDays}>within (days)</label>
              <input
                id={ids.capDays}
                type="number"
                min={1}
                step={1}
                value={Number.isNaN(v.capDays) ? '' : v.capDays}
                onChange={(e) => set({ capDays: num(e.target.value) })}
              />
            </div>
          </div>
        ) : null}
      </fieldset>
      {!valid ? (
        <p className="error" role="alert">
          Calls must be a whole number from 1 to 1,000,000; max concurrent, the call length and the cap at least 1.
        </p>
      ) : null}
      <StepButtons onBack={props.onBack} next="Next: recipients" disabled={!valid} />
    </form>
  );
}

function ForecastStep(props: {
  forecast: Forecast;
  speed: string;
  maxConcurrent: number;
  avgCallSeconds: number;
  busy: boolean;
  onBack: () => void;
  onStart: () => Promise<boolean>;
}) {
  const f = props.forecast;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void props.onStart();
  };
  return (
    <form onSubmit={submit} noValidate>
      <dl className="stats">
        <div>
          <dt>Recipients</dt>
          <dd>{f.recipients}</dd>
        </div>
        <div>
          <dt>Not callable (no known zone)</dt>
          <dd>{f.notCallable}</dd>
        </div>
        <div>
          <dt>Placement rate</dt>
          <dd>{f.effectiveCallsPerHour.toLocaleString()}/hour</dd>
        </div>
        <div>
          <dt>First dial</dt>
          <dd>{formatDateTime(f.firstDialAt)}</dd>
        </div>
        <div>
          <dt>Last first dial</dt>
          <dd>{formatDateTime(f.lastFirstDialAt)}</dd>
        </div>
        <div>
          <dt>All done (no retries)</dt>
          <dd>{formatDateTime(f.finishAt)}</dd>
        </div>
        <div>
          <dt>All done (every retry used)</dt>
          <dd>{formatDateTime(f.finishWorstCaseAt)}</dd>
        </div>
      </dl>
      <figure className="chart-figure">
        <ForecastChart forecast={f} />
        <figcaption>
          {f.perDay.length > 1 ? 'First dials per day (UTC)' : 'First dials placed over time'} at {props.speed}, at most{' '}
          {props.maxConcurrent} at once, with calls of {props.avgCallSeconds} s on average.
        </figcaption>
      </figure>
      {f.zones.length > 0 ? (
        <table className="data-table">
          <caption>Recipients by time zone (top 10)</caption>
          <thead>
            <tr>
              <th scope="col">Zone</th>
              <th scope="col">Recipients</th>
            </tr>
          </thead>
          <tbody>
            {f.zones.map((z) => (
              <tr key={z.zone}>
                <td>{z.zone}</td>
                <td>{z.recipients}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <StepButtons onBack={props.onBack} next="Start campaign" busy={props.busy} />
    </form>
  );
}
