// The properties form of an element, generated from its JSON Schema: one control per field, by the
// field's shape (text, number, checkbox, choice, group, map, list, one-of), with the validator's
// problems shown on the field they are about.
import { useId, useState, type ReactNode } from 'react';
import { getIn, isTargetPath, pathString, type JsonSchema, type PathKey, type Problem } from './model.js';

export interface FormContext {
  elementType: string;
  /** Ids a branch may lead to. */
  targets: readonly string[];
  problems: readonly Problem[];
  onChange: (path: PathKey[], value: unknown) => void;
  /** DOM id prefix, unique per element, so a problem can focus its field. */
  idPrefix: string;
}

export const fieldDomId = (prefix: string, path: readonly PathKey[]): string =>
  `${prefix}-${pathString(path).replace(/[^A-Za-z0-9_-]/g, '_')}`;

const typeOf = (schema: JsonSchema): string | undefined =>
  Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;

function problemsAt(ctx: FormContext, path: readonly PathKey[], nested: boolean): Problem[] {
  const key = pathString(path);
  return ctx.problems.filter(
    (p) =>
      p.path === key || (nested && (p.path?.startsWith(`${key}.`) === true || p.path?.startsWith(`${key}[`) === true)),
  );
}

function ProblemList({ problems, id }: { problems: readonly Problem[]; id: string }) {
  if (problems.length === 0) return null;
  return (
    <ul className="field-problems" id={id}>
      {problems.map((p, i) => (
        <li key={i} className={p.severity === 'warning' ? 'warning' : 'error'}>
          <span className="problem-code">{p.code}</span> {p.message}
        </li>
      ))}
    </ul>
  );
}

interface FieldProps {
  schema: JsonSchema;
  path: PathKey[];
  value: unknown;
  required: boolean;
  ctx: FormContext;
}

/** A labelled leaf control with its problems. */
function Leaf({
  path,
  ctx,
  hint,
  children,
}: {
  path: PathKey[];
  ctx: FormContext;
  hint?: string;
  children: (id: string, describedBy: string | undefined, invalid: boolean) => ReactNode;
}) {
  const id = fieldDomId(ctx.idPrefix, path);
  const problems = problemsAt(ctx, path, false);
  const problemsId = `${id}-problems`;
  const hintId = `${id}-hint`;
  const describedBy =
    [problems.length > 0 ? problemsId : '', hint ? hintId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${problems.some((p) => p.severity !== 'warning') ? ' has-error' : ''}`}>
      <label htmlFor={id}>{pathString(path)}</label>
      {children(
        id,
        describedBy,
        problems.some((p) => p.severity !== 'warning'),
      )}
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
      <ProblemList problems={problems} id={problemsId} />
    </div>
  );
}

const UNSET = '';
const OPEN = '\u0000open';

function TargetField({ path, value, ctx, nullable }: FieldProps & { nullable: boolean }) {
  const current = value === null ? OPEN : typeof value === 'string' ? value : UNSET;
  const known = ctx.targets.includes(current) || current === UNSET || current === OPEN;
  return (
    <Leaf path={path} ctx={ctx}>
      {(id, describedBy, invalid) => (
        <select
          id={id}
          className="target"
          value={current}
          aria-describedby={describedBy}
          aria-invalid={invalid || undefined}
          onChange={(e) =>
            ctx.onChange(path, e.target.value === UNSET ? undefined : e.target.value === OPEN ? null : e.target.value)
          }
        >
          <option value={UNSET}>(not set)</option>
          {nullable && <option value={OPEN}>(enabled, not connected)</option>}
          {!known && <option value={current}>{current} (missing)</option>}
          {ctx.targets.map((t) => (
            <option key={t} value={t}>
              → {t}
            </option>
          ))}
        </select>
      )}
    </Leaf>
  );
}

function ScalarField({ schema, path, value, required, ctx }: FieldProps) {
  const type = typeOf(schema);
  const hint = schema.description;
  if (schema.enum) {
    return (
      <Leaf path={path} ctx={ctx} hint={hint}>
        {(id, describedBy, invalid) => (
          <select
            id={id}
            value={value === undefined ? '' : String(value)}
            aria-describedby={describedBy}
            aria-invalid={invalid || undefined}
            onChange={(e) => ctx.onChange(path, e.target.value === '' ? undefined : e.target.value)}
          >
            <option value="">
              {required ? '(choose)' : `(default${schema.default !== undefined ? `: ${String(schema.default)}` : ''})`}
            </option>
            {schema.enum?.map((option) => (
              <option key={String(option)} value={String(option)}>
                {String(option)}
              </option>
            ))}
          </select>
        )}
      </Leaf>
    );
  }
  if (type === 'boolean') {
    const id = fieldDomId(ctx.idPrefix, path);
    const problems = problemsAt(ctx, path, false);
    return (
      <div className="field checkbox">
        <input
          id={id}
          type="checkbox"
          checked={value === true || (value === undefined && schema.default === true)}
          onChange={(e) => ctx.onChange(path, e.target.checked)}
        />
        <label htmlFor={id}>{pathString(path)}</label>
        <ProblemList problems={problems} id={`${id}-problems`} />
      </div>
    );
  }
  if (type === 'integer' || type === 'number') {
    return (
      <Leaf path={path} ctx={ctx} hint={hint}>
        {(id, describedBy, invalid) => (
          <input
            id={id}
            type="number"
            inputMode={type === 'integer' ? 'numeric' : 'decimal'}
            step={type === 'integer' ? 1 : 'any'}
            min={schema.minimum}
            max={schema.maximum}
            placeholder={schema.default !== undefined ? String(schema.default) : undefined}
            value={typeof value === 'number' ? value : ''}
            aria-describedby={describedBy}
            aria-invalid={invalid || undefined}
            onChange={(e) => ctx.onChange(path, e.target.value === '' ? undefined : Number(e.target.value))}
          />
        )}
      </Leaf>
    );
  }
  const multiline = (schema.maxLength ?? 0) > 200 || path.at(-1) === 'text';
  return (
    <Leaf path={path} ctx={ctx} hint={hint}>
      {(id, describedBy, invalid) => {
        const common = {
          id,
          value: typeof value === 'string' ? value : '',
          placeholder: typeof schema.default === 'string' ? schema.default : undefined,
          'aria-describedby': describedBy,
          'aria-invalid': invalid || undefined,
          'aria-required': required || undefined,
          onChange: (e: { target: { value: string } }) =>
            ctx.onChange(path, e.target.value === '' && !required ? undefined : e.target.value),
        };
        return multiline ? <textarea rows={3} {...common} /> : <input type="text" {...common} />;
      }}
    </Leaf>
  );
}

/** Anything the generator has no control for: edited as JSON. */
function JsonField({ path, value, ctx }: FieldProps) {
  const [text, setText] = useState(() => (value === undefined ? '' : JSON.stringify(value, null, 2)));
  const [error, setError] = useState<string | undefined>();
  return (
    <Leaf path={path} ctx={ctx} hint={error ?? 'JSON'}>
      {(id, describedBy) => (
        <textarea
          id={id}
          rows={3}
          value={text}
          aria-describedby={describedBy}
          onChange={(e) => setText(e.target.value)}
          onBlur={() => {
            if (text.trim() === '') return ctx.onChange(path, undefined);
            try {
              ctx.onChange(path, JSON.parse(text) as unknown);
              setError(undefined);
            } catch (err) {
              if (!(err instanceof SyntaxError)) throw err;
              setError(`not JSON: ${err.message}`);
            }
          }}
        />
      )}
    </Leaf>
  );
}

function Group({
  path,
  ctx,
  children,
  open,
}: {
  path: PathKey[];
  ctx: FormContext;
  children: ReactNode;
  open: boolean;
}) {
  const problems = problemsAt(ctx, path, true);
  const own = problems.filter((p) => p.path === pathString(path));
  // What the user opened stays open: otherwise a validation result that clears the group's last
  // problem (often while its field is being typed in) would close it under the cursor.
  const [opened, setOpened] = useState(open);
  return (
    <details
      className={`group${problems.some((p) => p.severity !== 'warning') ? ' has-error' : ''}`}
      open={opened || open || problems.length > 0}
      onToggle={(e) => setOpened(e.currentTarget.open)}
    >
      <summary>
        {pathString(path)}
        {problems.length > 0 && (
          <span className="badge error">
            {' '}
            {problems.length} problem{problems.length > 1 ? 's' : ''}
          </span>
        )}
      </summary>
      <ProblemList problems={own} id={`${fieldDomId(ctx.idPrefix, path)}-problems`} />
      {children}
    </details>
  );
}

function ObjectField({ schema, path, value, ctx }: FieldProps) {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  return (
    <Group path={path} ctx={ctx} open={value !== undefined || path[0] === 'next'}>
      {Object.entries(props).map(([key, child]) => (
        <Field
          key={key}
          schema={child}
          path={[...path, key]}
          value={getIn(value, [key])}
          required={required.has(key)}
          ctx={ctx}
        />
      ))}
    </Group>
  );
}

/** A map of free keys (responses, dataPayload, headers …): rows of key and value. */
function MapField({ schema, path, value, ctx }: FieldProps) {
  const entries = Object.entries(typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {});
  const [newKey, setNewKey] = useState('');
  const valueSchema = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {};
  const addId = `${fieldDomId(ctx.idPrefix, path)}-new`;
  const renameKey = (from: string, to: string) => {
    if (to === from || to === '') return;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of entries) copy[k === from ? to : k] = v;
    ctx.onChange(path, copy);
  };
  return (
    <Group path={path} ctx={ctx} open={entries.length > 0 || path[0] === 'responses'}>
      {entries.map(([key, entryValue]) => (
        <div key={key} className="map-row">
          <label className="visually-hidden" htmlFor={`${fieldDomId(ctx.idPrefix, [...path, key])}-key`}>
            key of {pathString([...path, key])}
          </label>
          <input
            id={`${fieldDomId(ctx.idPrefix, [...path, key])}-key`}
            className="map-key"
            defaultValue={key}
            onBlur={(e) => renameKey(key, e.target.value)}
          />
          <Field schema={valueSchema} path={[...path, key]} value={entryValue} required ctx={ctx} />
          <button type="button" className="small" onClick={() => ctx.onChange([...path, key], undefined)}>
            Remove {pathString([...path, key])}
          </button>
        </div>
      ))}
      <div className="map-add">
        <label htmlFor={addId}>New key of {pathString(path)}</label>
        <input id={addId} value={newKey} onChange={(e) => setNewKey(e.target.value)} />
        <button
          type="button"
          disabled={newKey === '' || entries.some(([k]) => k === newKey)}
          onClick={() => {
            ctx.onChange(
              [...path, newKey],
              isTargetPath(ctx.elementType, [...path, newKey])
                ? (ctx.targets[0] ?? '')
                : typeOf(valueSchema) === 'object'
                  ? {}
                  : '',
            );
            setNewKey('');
          }}
        >
          Add to {pathString(path)}
        </button>
      </div>
    </Group>
  );
}

function ArrayField({ schema, path, value, ctx }: FieldProps) {
  const items = Array.isArray(value) ? (value as unknown[]) : [];
  const itemSchema = schema.items ?? {};
  const groupId = useId();
  if (itemSchema.enum) {
    return (
      <fieldset className="field checkboxes" aria-describedby={`${groupId}-problems`}>
        <legend>{pathString(path)}</legend>
        {itemSchema.enum.map((option) => {
          const id = `${fieldDomId(ctx.idPrefix, path)}-${String(option)}`;
          const checked = items.includes(option);
          return (
            <span key={String(option)} className="checkbox">
              <input
                id={id}
                type="checkbox"
                checked={checked}
                onChange={() => {
                  const next = checked ? items.filter((i) => i !== option) : [...items, option];
                  ctx.onChange(path, next.length === 0 ? undefined : next);
                }}
              />
              <label htmlFor={id}>{String(option)}</label>
            </span>
          );
        })}
        <ProblemList problems={problemsAt(ctx, path, true)} id={`${groupId}-problems`} />
      </fieldset>
    );
  }
  return (
    <Group path={path} ctx={ctx} open={items.length > 0}>
      {items.map((item, i) => (
        <div key={i} className="array-item">
          <Field schema={itemSchema} path={[...path, i]} value={item} required ctx={ctx} />
          <button
            type="button"
            className="small"
            onClick={() =>
              ctx.onChange(
                path,
                items.filter((_, j) => j !== i),
              )
            }
          >
            Remove {pathString([...path, i])}
          </button>
        </div>
      ))}
      <button type="button" onClick={() => ctx.onChange(path, [...items, typeOf(itemSchema) === 'object' ? {} : ''])}>
        Add to {pathString(path)}
      </button>
    </Group>
  );
}

/** One of several object shapes (a play's audio: url, file or voicemail): pick the shape, then its fields. */
function OneOfField({ schema, path, value, ctx }: FieldProps) {
  const variants = (schema.anyOf ?? schema.oneOf ?? []).filter((v) => typeOf(v) === 'object');
  const keyOf = (v: JsonSchema): string => v.required?.[0] ?? Object.keys(v.properties ?? {})[0] ?? '?';
  const chosen = variants.find((v) => typeof value === 'object' && value !== null && keyOf(v) in value);
  const id = `${fieldDomId(ctx.idPrefix, path)}-kind`;
  return (
    <Group path={path} ctx={ctx} open={value !== undefined}>
      <div className="field">
        <label htmlFor={id}>{pathString(path)} kind</label>
        <select
          id={id}
          value={chosen ? keyOf(chosen) : ''}
          onChange={(e) => ctx.onChange(path, e.target.value === '' ? undefined : { [e.target.value]: '' })}
        >
          <option value="">(none)</option>
          {variants.map((v) => (
            <option key={keyOf(v)} value={keyOf(v)}>
              {keyOf(v)}
            </option>
          ))}
        </select>
      </div>
      {chosen &&
        Object.entries(chosen.properties ?? {}).map(([key, child]) => (
          <Field
            key={key}
            schema={child}
            path={[...path, key]}
            value={getIn(value, [key])}
            required={chosen.required?.includes(key) ?? false}
            ctx={ctx}
          />
        ))}
    </Group>
  );
}

export function Field(props: FieldProps) {
  const { schema, path, ctx } = props;
  if (isTargetPath(ctx.elementType, path)) {
    const nullable = (schema.anyOf ?? []).some((v) => v.type === 'null');
    if (typeOf(schema) === 'string' || nullable) return <TargetField {...props} nullable={nullable} />;
  }
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const nonNull = variants.filter((v) => v.type !== 'null');
    if (nonNull.length === 1 && nonNull[0]) return <Field {...props} schema={nonNull[0]} />;
    if (nonNull.every((v) => typeOf(v) === 'object')) return <OneOfField {...props} />;
    return <JsonField {...props} />;
  }
  switch (typeOf(schema)) {
    case 'string':
    case 'number':
    case 'integer':
    case 'boolean':
      return <ScalarField {...props} />;
    case 'object':
      if (schema.properties) return <ObjectField {...props} />;
      if (typeof schema.additionalProperties === 'object') return <MapField {...props} />;
      return <JsonField {...props} />;
    case 'array':
      return <ArrayField {...props} />;
    default:
      return <JsonField {...props} />;
  }
}
