// The flow editor: the canvas, the element list, the properties form generated from the JSON
// Schema, live validation (POST /api/flows/validate), undo/redo, import/export (JSON, YAML),
// publish, versions with a diff, and the simulate panel.
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from 'react';
import { ApiError, get, post } from '../../lib/api.js';
import { useHasRole } from '../../lib/session.js';
import { Canvas, type Trail } from './Canvas.js';
import { useDocHistory } from './history.js';
import {
  COMMON_FIELDS,
  ELEMENT_SCHEMAS,
  ELEMENT_TYPES,
  FLOW_SCHEMA,
  MAX_ELEMENTS,
  addElement,
  connect,
  deleteElements,
  duplicateElement,
  emptyFlow,
  isFlowDoc,
  layout,
  newElement,
  nextPosition,
  pathString,
  problemsByElement,
  renameElement,
  setIn,
  type FlowDoc,
  type FlowElement,
  type PathKey,
  type Position,
  type Problem,
} from './model.js';
import { Field, fieldDomId, type FormContext } from './SchemaForm.js';
import { SimulatePanel, type SimulationReport } from './SimulatePanel.js';
import { VersionsPanel } from './VersionsPanel.js';

const DRAFT_KEY = 'dialflow.console.draft';
const VALIDATE_DEBOUNCE_MS = 400;
const ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

interface Draft {
  doc: FlowDoc;
  positions: Record<string, Position>;
}

function loadDraft(): Draft | undefined {
  try {
    const raw = localStorage.getItem(DRAFT_KEY);
    const parsed = raw ? (JSON.parse(raw) as Partial<Draft>) : undefined;
    return parsed && isFlowDoc(parsed.doc)
      ? { doc: parsed.doc, positions: parsed.positions ?? layout(parsed.doc) }
      : undefined;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
}

type Tab = 'properties' | 'simulate' | 'versions';

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = name;
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The id field commits on blur or Enter: renaming follows every reference, so no half-typed ids. */
function IdField({
  element,
  taken,
  onRename,
  problems,
}: {
  element: FlowElement;
  taken: ReadonlySet<string>;
  onRename: (to: string) => void;
  problems: Problem[];
}) {
  const [value, setValue] = useState(element.id);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => setValue(element.id), [element.id]);
  const commit = () => {
    if (value === element.id) return setError(undefined);
    if (!ID_PATTERN.test(value)) return setError('letters, digits, "-" and "_", starting with a letter');
    if (taken.has(value)) return setError(`"${value}" is the id of another element`);
    setError(undefined);
    onRename(value);
  };
  const messages = [
    ...(error ? [error] : []),
    ...problems.filter((p) => p.path === 'id').map((p) => `${p.code} ${p.message}`),
  ];
  return (
    <div className={`field${messages.length ? ' has-error' : ''}`}>
      <label htmlFor="element-id">id</label>
      <input
        id="element-id"
        value={value}
        aria-invalid={messages.length > 0 || undefined}
        aria-describedby={messages.length ? 'element-id-problems' : undefined}
        onChange={(e) => setValue(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
      />
      {messages.length > 0 && (
        <ul className="field-problems" id="element-id-problems">
          {messages.map((m) => (
            <li key={m} className="error">
              {m}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export default function FlowsPage() {
  const draft = useMemo(loadDraft, []);
  const history = useDocHistory(() => draft?.doc ?? emptyFlow());
  const { doc, edit } = history;
  const [positions, setPositions] = useState<Record<string, Position>>(() => draft?.positions ?? {});
  const [selectedId, setSelectedId] = useState<string | undefined>();
  const [problems, setProblems] = useState<Problem[]>([]);
  const [validation, setValidation] = useState<'idle' | 'checking' | 'valid' | 'invalid' | 'unavailable'>('idle');
  const [trail, setTrail] = useState<Trail | undefined>();
  const [tab, setTab] = useState<Tab>('properties');
  const [status, setStatus] = useState<{ text: string; error?: boolean } | undefined>();
  const [newType, setNewType] = useState('startOutgoingCall');
  const [published, setPublished] = useState(0);
  const [arranged, setArranged] = useState(0);
  const [flowList, setFlowList] = useState<Array<{ id: string; latest: number }>>([]);
  const [openId, setOpenId] = useState('');
  const canPublish = useHasRole('operator');
  const importRef = useRef<HTMLInputElement>(null);

  // Keep the draft across reloads.
  useEffect(() => {
    localStorage.setItem(DRAFT_KEY, JSON.stringify({ doc, positions }));
  }, [doc, positions]);

  // Live validation, debounced; the answer of an older document is dropped.
  useEffect(() => {
    const controller = new AbortController();
    setValidation('checking');
    const timer = setTimeout(() => {
      post<{ valid: boolean; problems: Problem[] }>('/api/flows/validate', doc).then(
        (result) => {
          if (controller.signal.aborted) return;
          setProblems(result.problems);
          setValidation(result.valid ? 'valid' : 'invalid');
        },
        (err: unknown) => {
          if (!(err instanceof ApiError)) throw err;
          if (controller.signal.aborted) return;
          setProblems(err.problems ?? [{ severity: 'error', code: err.code, message: err.message }]);
          setValidation(err.problems ? 'invalid' : 'unavailable');
        },
      );
    }, VALIDATE_DEBOUNCE_MS);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [doc]);

  useEffect(() => {
    get<{ flows: Array<{ id: string; latest: number }> }>('/api/flows').then(
      (r) => setFlowList(r.flows),
      (err: unknown) => {
        if (!(err instanceof ApiError)) throw err;
      },
    );
  }, [published]);

  const byElement = useMemo(() => problemsByElement(doc, problems), [doc, problems]);
  const selected = doc.elements.find((el) => el.id === selectedId);
  const atLimit = doc.elements.length >= MAX_ELEMENTS;

  const clearTrail = () => setTrail(undefined);

  const load = useCallback(
    (next: FlowDoc, message: string) => {
      edit(next);
      setPositions(layout(next));
      setSelectedId(undefined);
      setTrail(undefined);
      setStatus({ text: message });
    },
    [edit],
  );

  const add = () => {
    if (atLimit) return setStatus({ text: `A flow has at most ${MAX_ELEMENTS} elements.`, error: true });
    const element = newElement(doc, newType);
    edit(addElement(doc, element));
    setPositions((p) => ({ ...p, [element.id]: nextPosition(p) }));
    setSelectedId(element.id);
    setTab('properties');
    clearTrail();
    setStatus({ text: `Added ${element.type} "${element.id}".` });
  };

  const duplicate = () => {
    if (!selected) return;
    if (atLimit) return setStatus({ text: `A flow has at most ${MAX_ELEMENTS} elements.`, error: true });
    const copy = duplicateElement(doc, selected.id);
    if (!copy) return;
    edit({ ...doc, elements: [...doc.elements, copy] });
    const from = positions[selected.id] ?? { x: 0, y: 0 };
    setPositions((p) => ({ ...p, [copy.id]: { x: from.x + 40, y: from.y + 40 } }));
    setSelectedId(copy.id);
    setStatus({ text: `Duplicated "${selected.id}" as "${copy.id}".` });
  };

  const remove = useCallback(
    (ids: string[]) => {
      if (ids.length === 0) return;
      edit(deleteElements(doc, new Set(ids)));
      setSelectedId(undefined);
      clearTrail();
      setStatus({ text: `Deleted ${ids.map((id) => `"${id}"`).join(', ')}.` });
    },
    [doc, edit],
  );

  const changeElement = (id: string, path: PathKey[], value: unknown) => {
    edit(
      { ...doc, elements: doc.elements.map((el) => (el.id === id ? setIn(el, path, value) : el)) },
      `${id}:${pathString(path)}`,
    );
    clearTrail();
  };

  const rename = (from: string, to: string) => {
    edit(renameElement(doc, from, to));
    setPositions((p) => {
      const { [from]: at, ...rest } = p;
      return at ? { ...rest, [to]: at } : rest;
    });
    setSelectedId(to);
    setStatus({ text: `Renamed "${from}" to "${to}".` });
  };

  const onConnect = useCallback(
    (source: string, target: string) => {
      const next = connect(doc, source, target);
      if (next === doc)
        setStatus({ text: `Every branch of "${source}" is connected: change one in its properties.`, error: true });
      else edit(next);
    },
    [doc, edit],
  );

  const onDeleteBranches = useCallback(
    (branches: Array<{ source: string; path: PathKey[] }>) => {
      let next = doc;
      for (const { source, path } of branches)
        next = { ...next, elements: next.elements.map((el) => (el.id === source ? setIn(el, path, undefined) : el)) };
      edit(next);
    },
    [doc, edit],
  );

  const onMove = useCallback((id: string, position: Position) => setPositions((p) => ({ ...p, [id]: position })), []);

  const publish = async () => {
    try {
      const result = await post<{ id: string; version: number; created: boolean; problems: Problem[] }>(
        '/api/flows',
        doc,
      );
      setStatus({
        text: result.created
          ? `Published ${result.id} version ${result.version}.`
          : `${result.id} version ${result.version} was already published with this document.`,
      });
      setPublished((n) => n + 1);
      setTab('versions');
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.problems) setProblems(err.problems);
      setStatus({
        text:
          err.code === 'flow.versionConflict'
            ? `Version ${doc.version} of ${doc.id} is already published with a different document: raise the version in the flow settings.`
            : `Not published: ${err.message}`,
        error: true,
      });
    }
  };

  const importFile = async (file: File) => {
    const text = await file.text();
    const { parse } = await import('yaml');
    let parsed: unknown;
    try {
      parsed = parse(text);
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      return setStatus({ text: `${file.name} is neither JSON nor YAML: ${err.message}`, error: true });
    }
    if (!isFlowDoc(parsed))
      return setStatus({ text: `${file.name} is not a flow document (no elements list).`, error: true });
    load(parsed, `Imported ${file.name}.`);
  };

  const exportAs = async (format: 'json' | 'yaml') => {
    const name = `${doc.id || 'flow'}-v${doc.version}.${format}`;
    if (format === 'json') download(name, `${JSON.stringify(doc, null, 2)}\n`, 'application/json');
    else {
      const { stringify } = await import('yaml');
      download(name, stringify(doc), 'application/yaml');
    }
    setStatus({ text: `Exported ${name}.` });
  };

  const openPublished = async () => {
    const found = flowList.find((f) => f.id === openId);
    if (!found) return;
    try {
      load(
        await get<FlowDoc>(`/api/flows/${encodeURIComponent(found.id)}/versions/${found.latest}`),
        `Opened ${found.id} version ${found.latest}.`,
      );
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      setStatus({ text: err.message, error: true });
    }
  };

  const { undo, redo } = history;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey)) return;
      const key = event.key.toLowerCase();
      if (key === 'z' && !event.shiftKey) undo();
      else if ((key === 'z' && event.shiftKey) || key === 'y') redo();
      else return;
      event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [undo, redo]);

  const showProblem = (problem: Problem) => {
    const elementId =
      problem.elementId ??
      (problem.path?.match(/^elements\[(\d+)\]/)
        ? doc.elements[Number(problem.path.match(/^elements\[(\d+)\]/)?.[1])]?.id
        : undefined);
    setTab('properties');
    setSelectedId(elementId);
    const relative = (problem.path ?? '').replace(/^elements\[\d+\]\.?/, '');
    requestAnimationFrame(() => {
      const target = elementId
        ? document.getElementById(relative === 'id' ? 'element-id' : fieldDomId(`el-${elementId}`, [relative]))
        : document.getElementById(fieldDomId('flow', [relative]));
      (target ?? document.getElementById('properties-title'))?.focus();
    });
  };

  const onListKey = (event: ReactKeyboardEvent<HTMLUListElement>) => {
    if (event.key !== 'Delete' || !selectedId) return;
    event.preventDefault();
    remove([selectedId]);
  };

  const targets = doc.elements.map((el) => el.id);
  const elementCtx = (el: FlowElement): FormContext => ({
    elementType: el.type,
    targets: targets.filter((t) => t !== el.id),
    problems: byElement.get(el.id) ?? [],
    onChange: (path, value) => changeElement(el.id, path, value),
    idPrefix: `el-${el.id}`,
  });
  const flowProblems = problems.filter((p) => !p.elementId && !/^elements\[\d+\]/.test(p.path ?? ''));
  const flowCtx: FormContext = {
    elementType: '',
    targets: [],
    problems: flowProblems,
    onChange: (path, value) => edit(setIn(doc, path, value), `flow:${pathString(path)}`),
    idPrefix: 'flow',
  };
  const errorCount = problems.filter((p) => p.severity !== 'warning').length;

  return (
    <section className="editor" aria-labelledby="editor-title">
      <div className="editor-head">
        <h1 id="editor-title">
          Flow editor: {doc.id || '(no id)'} <span className="version">version {doc.version}</span>
        </h1>
        <p className={`validation validation-${validation}`} role="status" data-testid="validation-status">
          {validation === 'checking'
            ? 'Checking…'
            : validation === 'valid'
              ? `Valid${problems.length ? ` (${problems.length} warning${problems.length > 1 ? 's' : ''})` : ''}`
              : validation === 'invalid'
                ? `${errorCount} problem${errorCount === 1 ? '' : 's'}`
                : validation === 'unavailable'
                  ? 'Validation unavailable'
                  : ''}
        </p>
        <p className="element-count">
          {doc.elements.length} / {MAX_ELEMENTS} elements
        </p>
      </div>
      <div className="toolbar" role="toolbar" aria-label="Flow actions">
        <button type="button" onClick={() => load(emptyFlow(), 'New empty flow.')}>
          New flow
        </button>
        <label htmlFor="open-flow">Published flow</label>
        <select id="open-flow" value={openId} onChange={(e) => setOpenId(e.target.value)}>
          <option value="">(choose)</option>
          {flowList.map((f) => (
            <option key={f.id} value={f.id}>
              {f.id} (v{f.latest})
            </option>
          ))}
        </select>
        <button type="button" disabled={!openId} onClick={() => void openPublished()}>
          Open
        </button>
        <label htmlFor="import-file">Import JSON or YAML</label>
        <input
          id="import-file"
          ref={importRef}
          type="file"
          accept=".json,.yaml,.yml,application/json,application/yaml"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void importFile(file);
            if (importRef.current) importRef.current.value = '';
          }}
        />
        <button type="button" onClick={() => void exportAs('json')}>
          Export JSON
        </button>
        <button type="button" onClick={() => void exportAs('yaml')}>
          Export YAML
        </button>
        <button
          type="button"
          onClick={() => {
            setPositions(layout(doc));
            setArranged((n) => n + 1);
          }}
          disabled={doc.elements.length === 0}
        >
          Arrange
        </button>
        <span className="separator" aria-hidden="true" />
        <button type="button" onClick={history.undo} disabled={!history.canUndo} aria-keyshortcuts="Control+Z">
          Undo
        </button>
        <button type="button" onClick={history.redo} disabled={!history.canRedo} aria-keyshortcuts="Control+Shift+Z">
          Redo
        </button>
        <span className="separator" aria-hidden="true" />
        <label htmlFor="new-element-type">Element type</label>
        <select id="new-element-type" value={newType} onChange={(e) => setNewType(e.target.value)}>
          {ELEMENT_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <button type="button" onClick={add} disabled={atLimit}>
          Add element
        </button>
        <button type="button" onClick={duplicate} disabled={!selected || atLimit}>
          Duplicate
        </button>
        <button type="button" onClick={() => selected && remove([selected.id])} disabled={!selected}>
          Delete element
        </button>
        <span className="separator" aria-hidden="true" />
        <button
          type="button"
          className="primary"
          onClick={() => void publish()}
          disabled={!canPublish}
          title={canPublish ? undefined : 'operators and admins publish'}
        >
          Publish
        </button>
      </div>
      {status && (
        <p className={`status${status.error ? ' error' : ''}`} role={status.error ? 'alert' : 'status'}>
          {status.text}
        </p>
      )}
      <div className="editor-body">
        <nav className="element-list" aria-label="Elements">
          <h2>Elements</h2>
          <button
            type="button"
            className="flow-settings"
            aria-pressed={selectedId === undefined}
            onClick={() => {
              setSelectedId(undefined);
              setTab('properties');
            }}
          >
            Flow settings
          </button>
          {doc.elements.length === 0 ? (
            <p>The canvas is empty: choose an element type and press Add element.</p>
          ) : (
            <ul onKeyDown={onListKey}>
              {doc.elements.map((el) => {
                const own = byElement.get(el.id) ?? [];
                const errors = own.filter((p) => p.severity !== 'warning').length;
                return (
                  <li key={el.id}>
                    <button
                      type="button"
                      aria-pressed={el.id === selectedId}
                      className={errors ? 'has-error' : undefined}
                      onClick={() => {
                        setSelectedId(el.id);
                        setTab('properties');
                      }}
                    >
                      {el.id} <span className="muted">{el.type}</span>
                      {errors > 0 && <span className="badge error">{errors}</span>}
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </nav>
        <Canvas
          doc={doc}
          positions={positions}
          selectedId={selectedId}
          problems={byElement}
          trail={trail}
          arranged={arranged}
          onSelect={setSelectedId}
          onMove={onMove}
          onConnect={onConnect}
          onDeleteElements={remove}
          onDeleteBranches={onDeleteBranches}
        />
        <div className="side">
          <div className="tabs" role="group" aria-label="Panels">
            {/* Simulating runs the flow on the server (its HTTP requests too): operators and admins only. */}
            {(canPublish
              ? (['properties', 'simulate', 'versions'] as const)
              : (['properties', 'versions'] as const)
            ).map((t) => (
              <button key={t} type="button" aria-pressed={tab === t} onClick={() => setTab(t)}>
                {t === 'properties' ? 'Properties' : t === 'simulate' ? 'Simulate' : 'Versions'}
              </button>
            ))}
          </div>
          {tab === 'properties' && (
            <section className="panel properties" aria-labelledby="properties-title">
              {selected ? (
                <>
                  <h2 id="properties-title" tabIndex={-1}>
                    {selected.type} “{selected.id}”
                  </h2>
                  <IdField
                    key={selected.id}
                    element={selected}
                    taken={new Set(targets.filter((t) => t !== selected.id))}
                    problems={byElement.get(selected.id) ?? []}
                    onRename={(to) => rename(selected.id, to)}
                  />
                  {(byElement.get(selected.id) ?? [])
                    .filter((p) => p.path === '' || p.path === undefined)
                    .map((p, i) => (
                      <p key={i} className={`element-problem ${p.severity === 'warning' ? 'warning' : 'error'}`}>
                        <span className="problem-code">{p.code}</span> {p.message}
                      </p>
                    ))}
                  {Object.entries(ELEMENT_SCHEMAS.get(selected.type)?.properties ?? {})
                    .filter(([key]) => key !== 'id' && key !== 'type')
                    .sort(
                      ([a], [b]) =>
                        Number(!COMMON_FIELDS.includes(a as never)) - Number(!COMMON_FIELDS.includes(b as never)),
                    )
                    .map(([key, schema]) => (
                      <Field
                        key={`${selected.id}:${key}`}
                        schema={schema}
                        path={[key]}
                        value={selected[key]}
                        required={ELEMENT_SCHEMAS.get(selected.type)?.required?.includes(key) ?? false}
                        ctx={elementCtx(selected)}
                      />
                    ))}
                </>
              ) : (
                <>
                  <h2 id="properties-title" tabIndex={-1}>
                    Flow settings
                  </h2>
                  {(['id', 'version', 'name', 'description'] as const).map((key) => (
                    <Field
                      key={key}
                      schema={FLOW_SCHEMA.properties?.[key] ?? {}}
                      path={[key]}
                      value={doc[key]}
                      required={key === 'id' || key === 'version'}
                      ctx={flowCtx}
                    />
                  ))}
                  <div className="field">
                    <label htmlFor="flow-start">start</label>
                    <select id="flow-start" value={doc.start} onChange={(e) => edit({ ...doc, start: e.target.value })}>
                      <option value="">(choose)</option>
                      {targets.map((t) => (
                        <option key={t} value={t}>
                          {t}
                        </option>
                      ))}
                    </select>
                  </div>
                  <Field
                    schema={FLOW_SCHEMA.properties?.variables ?? {}}
                    path={['variables']}
                    value={doc.variables}
                    required={false}
                    ctx={flowCtx}
                  />
                </>
              )}
            </section>
          )}
          {tab === 'simulate' && canPublish && (
            <SimulatePanel
              doc={doc}
              onResult={(report: SimulationReport | undefined) =>
                setTrail(
                  report
                    ? {
                        elements: new Set(report.visited ?? report.trail?.map((t) => t.element) ?? []),
                        branches: new Set((report.trail ?? []).map((t) => `${t.element}|${t.branch}`)),
                      }
                    : undefined,
                )
              }
            />
          )}
          {tab === 'versions' && (
            <VersionsPanel
              key={doc.id}
              flowId={doc.id}
              refresh={published}
              onOpen={(d) => load(d, `Opened ${d.id} version ${d.version}.`)}
            />
          )}
        </div>
      </div>
      <section className="problems" aria-labelledby="problems-title">
        <h2 id="problems-title">Problems</h2>
        {problems.length === 0 ? (
          <p>{validation === 'valid' ? 'No problems.' : '—'}</p>
        ) : (
          <ul>
            {problems.map((p, i) => (
              <li key={i} className={p.severity === 'warning' ? 'warning' : 'error'}>
                <button type="button" className="link" onClick={() => showProblem(p)}>
                  <span className="problem-code">{p.code}</span> {p.elementId ? `${p.elementId}: ` : ''}
                  {p.path ? `${p.path}: ` : ''}
                  {p.message}
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </section>
  );
}
