// Simulate: a persona (what the person does on each dial and at each prompt) → one simulated call
// of the document being edited (POST /api/simulate), its transcript, and the path it took
// highlighted on the canvas.
import { useState, type FormEvent } from 'react';
import { ApiError, post } from '../../lib/api.js';
import type { FlowDoc, Problem } from './model.js';

const ATTEMPT_OUTCOMES = ['answered', 'busy', 'noAnswer', 'declined', 'voicemail', 'unreachable', 'error'] as const;

export interface SimulationReport {
  outcome?: string;
  visited?: string[];
  dials?: number;
  trail?: Array<{ element: string; branch: string; input?: string }>;
  variables?: Record<string, unknown>;
  warnings?: string[];
  events?: Array<{ at?: string; kind: string; elementId?: string; text: string }>;
}

export function SimulatePanel({
  doc,
  onResult,
}: {
  doc: FlowDoc;
  onResult: (report: SimulationReport | undefined) => void;
}) {
  const [attempt, setAttempt] = useState<string>('answered');
  const [keys, setKeys] = useState('1');
  const [pressDuringPrompt, setPressDuringPrompt] = useState(false);
  const [hangUpAt, setHangUpAt] = useState('');
  const [firstName, setFirstName] = useState('Ana');
  const [phone, setPhone] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; problems?: Problem[] } | undefined>();
  const [report, setReport] = useState<SimulationReport | undefined>();

  const run = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const persona = {
        attempts: [attempt],
        keys: keys
          .split(/[\s,]+/)
          .map((k) => k.trim())
          .filter((k) => k !== ''),
        pressDuringPrompt,
        ...(hangUpAt ? { hangUpAt } : {}),
      };
      const recipient = { ...(firstName ? { firstName } : {}), ...(phone ? { phone } : {}) };
      const result = await post<SimulationReport>('/api/simulate', {
        flow: doc,
        persona,
        ...(Object.keys(recipient).length > 0 ? { recipient } : {}),
      });
      setReport(result);
      onResult(result);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      setError({ message: err.message, problems: err.problems });
      setReport(undefined);
      onResult(undefined);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="simulate-title">
      <h2 id="simulate-title">Simulate a call</h2>
      <form aria-label="Persona" onSubmit={(e) => void run(e)}>
        <label htmlFor="sim-attempt">The call is</label>
        <select id="sim-attempt" value={attempt} onChange={(e) => setAttempt(e.target.value)}>
          {ATTEMPT_OUTCOMES.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
        <label htmlFor="sim-keys">Keys pressed at each prompt</label>
        <input id="sim-keys" value={keys} onChange={(e) => setKeys(e.target.value)} aria-describedby="sim-keys-hint" />
        <p className="hint" id="sim-keys-hint">
          One entry per collect, separated by commas (empty: the person stays silent).
        </p>
        <div className="checkbox">
          <input
            id="sim-press-during"
            type="checkbox"
            checked={pressDuringPrompt}
            onChange={(e) => setPressDuringPrompt(e.target.checked)}
          />
          <label htmlFor="sim-press-during">Press keys while the prompt plays</label>
        </div>
        <label htmlFor="sim-hangup">Hang up at</label>
        <select id="sim-hangup" value={hangUpAt} onChange={(e) => setHangUpAt(e.target.value)}>
          <option value="">(never)</option>
          {doc.elements.map((el) => (
            <option key={el.id} value={el.id}>
              {el.id}
            </option>
          ))}
        </select>
        <label htmlFor="sim-first-name">Recipient first name</label>
        <input id="sim-first-name" value={firstName} onChange={(e) => setFirstName(e.target.value)} />
        <label htmlFor="sim-phone">Recipient phone (optional)</label>
        <input id="sim-phone" type="tel" value={phone} onChange={(e) => setPhone(e.target.value)} />
        <button type="submit" disabled={busy}>
          {busy ? 'Simulating…' : 'Run simulation'}
        </button>
      </form>
      {error && (
        <div role="alert" className="error">
          <p>The simulation did not run: {error.message}</p>
          {error.problems && (
            <ul>
              {error.problems.map((p, i) => (
                <li key={i}>
                  <code>{p.code}</code> {p.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {report && (
        <div className="sim-result" aria-live="polite">
          <p>
            Outcome: <strong data-testid="sim-outcome">{report.outcome ?? '—'}</strong>, {report.dials ?? 0} dial
            {report.dials === 1 ? '' : 's'}. Path: {(report.visited ?? []).join(' → ')}
          </p>
          <h3>Transcript</h3>
          {/* A long transcript scrolls inside the panel: focusable, so the keyboard can scroll it. */}
          <ol className="transcript" aria-label="Transcript" tabIndex={0}>
            {(report.events ?? []).map((event, i) => (
              <li key={i} className={`event-${event.kind}`}>
                <span className="event-kind">{event.kind}</span>
                {event.elementId && <span className="event-element">{event.elementId}</span>} {event.text}
              </li>
            ))}
          </ol>
          {report.variables && Object.keys(report.variables).length > 0 && (
            <>
              <h3>Variables</h3>
              <pre>{JSON.stringify(report.variables, null, 2)}</pre>
            </>
          )}
          <button type="button" onClick={() => (setReport(undefined), onResult(undefined))}>
            Clear highlight
          </button>
        </div>
      )}
    </section>
  );
}
