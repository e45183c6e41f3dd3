// Published versions of the flow being edited: open one, or compare two (a line diff of the
// pretty-printed documents).
import { useEffect, useState } from 'react';
import { ApiError, get, seg } from '../../lib/api.js';
import { diffLines, type DiffLine } from '../../lib/diff.js';
import type { FlowDoc } from './model.js';

export function VersionsPanel({
  flowId,
  refresh,
  onOpen,
}: {
  flowId: string;
  refresh: number;
  onOpen: (doc: FlowDoc) => void;
}) {
  const [latest, setLatest] = useState<number | undefined>();
  const [from, setFrom] = useState<number | undefined>();
  const [to, setTo] = useState<number | undefined>();
  const [diff, setDiff] = useState<DiffLine[] | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    let cancelled = false;
    get<{ flows: Array<{ id: string; latest: number }> }>('/api/flows').then(
      ({ flows }) => {
        if (cancelled) return;
        const found = flows.find((f) => f.id === flowId)?.latest;
        setLatest(found);
        setTo(found);
        setFrom(found !== undefined && found > 1 ? found - 1 : found);
      },
      (err: unknown) => {
        if (!(err instanceof ApiError)) throw err;
        if (!cancelled) setError(err.message);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [flowId, refresh]);

  const read = (version: number) => get<FlowDoc>(`/api/flows/${seg(flowId)}/versions/${version}`);

  const compare = async () => {
    if (from === undefined || to === undefined) return;
    setError(undefined);
    try {
      const [a, b] = await Promise.all([read(from), read(to)]);
      setDiff(diffLines(JSON.stringify(a, null, 2), JSON.stringify(b, null, 2)));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      setError(err.message);
    }
  };

  const versions = latest === undefined ? [] : Array.from({ length: latest }, (_, i) => latest - i);
  const changed = diff?.filter((l) => l.kind !== 'same').length ?? 0;

  return (
    <section className="panel" aria-labelledby="versions-title">
      <h2 id="versions-title">Versions of {flowId}</h2>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {latest === undefined ? (
        <p>Not published yet: Publish makes version 1.</p>
      ) : (
        <>
          <ul className="versions">
            {versions.map((v) => (
              <li key={v}>
                version {v}{' '}
                <button
                  type="button"
                  className="small"
                  onClick={() =>
                    void read(v).then(onOpen, (err: unknown) => {
                      if (!(err instanceof ApiError)) throw err;
                      setError(err.message);
                    })
                  }
                >
                  Open version {v}
                </button>
              </li>
            ))}
          </ul>
          <div className="diff-controls">
            <label htmlFor="diff-from">Compare version</label>
            <select id="diff-from" value={from ?? ''} onChange={(e) => setFrom(Number(e.target.value))}>
              {versions.map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
            <label htmlFor="diff-to">with version</label>
            <select id="diff-to" value={to ?? ''} onChange={(e) => setTo(Number(e.target.value))}>
              {versions.map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
            <button type="button" onClick={() => void compare()}>
              Show diff
            </button>
          </div>
        </>
      )}
      {diff && (
        <>
          <p role="status">
            {changed === 0 ? 'The two versions are the same.' : `${changed} changed line${changed > 1 ? 's' : ''}.`}
          </p>
          <pre className="diff" aria-label={`Diff of version ${from ?? ''} and version ${to ?? ''}`} tabIndex={0}>
            {diff.map((line, i) => (
              <span key={i} className={`diff-${line.kind}`}>
                {line.kind === 'added' ? '+ ' : line.kind === 'removed' ? '- ' : '  '}
                {line.text}
                {'\n'}
              </span>
            ))}
          </pre>
        </>
      )}
    </section>
  );
}
