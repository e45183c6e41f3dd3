// The services' structured logger: one JSON object per line on stderr (pino).
//
//   import { createLogger } from '../logging.js';
//   const log = createLogger('bridge', config.logLevel);
//   log.info('ready');                                      // a message alone
//   log.warn({ callId, attempt }, 'signal refused');        // fields first, then the message
//   log.error({ err }, 'cannot stop');                      // `err` (or `error`): name, message, stack
//   const sub = log.child({ module: 'outbox' });            // fields on every line of `sub`
//   if (log.isLevelEnabled('debug')) log.debug({ plan }, 'planned'); // skip building costly fields
//
// Every line: {"level":"warn","time":"2026-11-24T10:00:00.000Z","component":"bridge","callId":"…","attempt":2,"msg":"signal refused"}
// The level comes from DIALFLOW_LOG_LEVEL (config.logLevel); lines below it are dropped before
// their fields are serialised.
//
// Masked and hidden input (DTMF digits, and whatever a flow rendered from them) must never reach a
// log. Log ids, types, counts and reasons, never a command's or an event's body: `dtmf`, `digits`,
// a prompt's `text`, request `body`/`headers` and credentials are replaced by "[redacted]" at any
// depth of the fields (and four levels deep in child bindings) as a safety net. Where the masked values themselves
// are known (a call transcript's Redactor, src/cli/masking.ts), pass it as `redactor`: every
// message and field is then redacted by value as well. Temporal's SDK, workflow and activity logs come here through temporalLogger().
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger as TemporalLogger, LogLevel as TemporalLogLevel, LogMetadata } from '@temporalio/common';

export type Logger = PinoLogger;
/** config.logLevel's values, plus `trace` and `silent` (tests). */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** What the CLI's Redactor (src/cli/masking.ts) offers: replace known masked values anywhere in a value. */
export interface ValueRedactor {
  value<T>(v: T): T;
}

export interface LoggerOptions {
  /** Where lines go; stderr (synchronously, so nothing is lost when the process exits) by default. */
  destination?: DestinationStream;
  /** Redaction by value, on top of the fixed field names below. */
  redactor?: ValueRedactor;
}

/** Field names whose values may carry what a caller typed, or secrets: redacted wherever they appear. */
export const REDACTED_FIELDS = [
  'dtmf',
  'digits',
  'text',
  'body',
  'headers',
  'password',
  'apiKey',
  'token',
  'authorization',
] as const;

export const REDACTED = '[redacted]';
const SENSITIVE = new Set<string>(REDACTED_FIELDS);
/** Deeper than any record we write; a bound on cyclic values (pino itself prints cycles as "[Circular]"). */
const MAX_DEPTH = 10;

export function createLogger(component: string, level: LogLevel, opts: LoggerOptions = {}): Logger {
  const { redactor } = opts;
  return pino(
    {
      level,
      base: { component },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        // Level names instead of pino's numbers: the lines are read by people and grep as often as by tools.
        level: (label) => ({ level: label }),
        log: (fields) => redactFields(fields, 0) as Record<string, unknown>,
      },
      // formatters.log does not see a child logger's bindings: pino's own redaction covers them,
      // to the depth of an event's properties inside a binding.
      redact: { paths: REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`, `*.*.*.${f}`]), censor: REDACTED },
      serializers: { err: stdSerializers.err, error: stdSerializers.err },
      ...(redactor
        ? {
            hooks: {
              logMethod(args: Parameters<pino.LogFn>, method: pino.LogFn) {
                return method.apply(this, args.map((a) => redactArg(a, redactor)) as Parameters<pino.LogFn>);
              },
            },
          }
        : {}),
    },
    opts.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** Plain objects and arrays, copied with sensitive fields replaced; anything else (errors, dates) as is. */
function redactFields(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v: unknown) => redactFields(v, depth + 1));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE.has(k) ? REDACTED : redactFields(v, depth + 1);
  return out;
}

/** Strings and plain fields by value; an Error keeps its class and stack, with its message redacted. */
function redactArg(arg: unknown, redactor: ValueRedactor): unknown {
  if (arg instanceof Error) return redactError(arg, redactor);
  if (arg && typeof arg === 'object' && !Array.isArray(arg))
    return Object.fromEntries(
      Object.entries(arg).map(([k, v]) => [k, v instanceof Error ? redactError(v, redactor) : redactor.value(v)]),
    );
  return redactor.value(arg);
}

function redactError(err: Error, redactor: ValueRedactor): Error {
  const copy = Object.create(Object.getPrototypeOf(err) as object) as Error;
  Object.assign(copy, err);
  copy.message = redactor.value(err.message);
  copy.stack = err.stack === undefined ? undefined : redactor.value(err.stack);
  return copy;
}

const PINO_LEVELS = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
} as const satisfies Record<TemporalLogLevel, LogLevel>;

/** The Temporal level of a dialflow level: what the SDK and its core should still emit. */
export function temporalLevel(level: LogLevel): TemporalLogLevel {
  return level === 'silent' ? 'ERROR' : (level.toUpperCase() as TemporalLogLevel);
}

/**
 * Temporal's Logger interface on top of ours, for `Runtime.install({ logger })`: the SDK's own logs,
 * workflow `log` (through the SDK's sink) and activity `log` become lines of the same logger, their
 * metadata (sdkComponent, workflowId, activityType …) as fields.
 */
export function temporalLogger(log: Logger): TemporalLogger {
  const emit = (level: TemporalLogLevel, message: string, meta?: LogMetadata) => {
    const fn = PINO_LEVELS[level];
    if (!log.isLevelEnabled(fn)) return;
    // Symbol keys (the SDK's log timestamp) are not fields; pino skips them when it serialises.
    if (meta) log[fn](meta, message);
    else log[fn](message);
  };
  return {
    log: emit,
    trace: (m, meta) => emit('TRACE', m, meta),
    debug: (m, meta) => emit('DEBUG', m, meta),
    info: (m, meta) => emit('INFO', m, meta),
    warn: (m, meta) => emit('WARN', m, meta),
    error: (m, meta) => emit('ERROR', m, meta),
  };
}
