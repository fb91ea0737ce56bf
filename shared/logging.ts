/**
 * Structured logging. Every line carries the invocation id, trigger, capability and target where
 * known, says what happened ("Created role assignment …"), and passes through {@link redact}.
 */
import type { InvocationContext } from '@azure/functions';
import { redact, redactValue } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface LogRecord {
  time: string;
  level: LogLevel;
  message: string;
  fields: LogFields;
}

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

/** Where log lines go: the Functions context, the console, or a test's array. */
export type LogSink = (record: LogRecord) => void;

function serialiseError(e: unknown): unknown {
  if (e instanceof Error) {
    const out: Record<string, unknown> = { name: e.name, message: e.message };
    const code = (e as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const status = (e as { statusCode?: unknown }).statusCode;
    if (status !== undefined) out.statusCode = status;
    return out;
  }
  return e;
}

/** One line of text for a record: `message key=value …`, secrets masked. */
export function formatRecord(r: LogRecord): string {
  const parts = Object.entries(r.fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const val = typeof v === 'string' ? v : JSON.stringify(serialiseError(v));
      return `${k}=${/\s/.test(val) ? JSON.stringify(val) : val}`;
    });
  return redact(parts.length ? `${r.message} ${parts.join(' ')}` : r.message);
}

export function createLogger(sink: LogSink, base: LogFields = {}, now: () => Date = () => new Date()): Logger {
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    const merged: LogFields = { ...base, ...(fields ?? {}) };
    if (merged.error !== undefined) merged.error = serialiseError(merged.error);
    sink({ time: now().toISOString(), level, message: redact(message), fields: redactValue(merged) });
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(sink, { ...base, ...fields }, now),
  };
}

/** A sink that writes through the Functions invocation context (Application Insights in Azure). */
export function contextSink(context: InvocationContext): LogSink {
  return (r) => {
    const line = formatRecord(r);
    if (r.level === 'error') context.error(line);
    else if (r.level === 'warn') context.warn(line);
    else if (r.level === 'debug') context.debug(line);
    else context.info(line);
  };
}

/** Logger for one invocation, tagged with its id and function name. */
export function loggerFromContext(context: InvocationContext, fields: LogFields = {}): Logger {
  return createLogger(contextSink(context), { invocationId: context.invocationId, function: context.functionName, ...fields });
}

/** A sink that keeps records in memory (tests assert on them, including "no secret anywhere"). */
export function memorySink(): LogSink & { records: LogRecord[]; text(): string } {
  const records: LogRecord[] = [];
  const sink = ((r: LogRecord) => {
    records.push(r);
  }) as LogSink & { records: LogRecord[]; text(): string };
  sink.records = records;
  sink.text = () => records.map(formatRecord).join('\n');
  return sink;
}

/** Console sink for tools and start-up (before any invocation exists). */
export const consoleSink: LogSink = (r) => {
  const line = `${r.time} ${r.level.toUpperCase()} ${formatRecord(r)}`;
  if (r.level === 'error' || r.level === 'warn') console.error(line);
  else console.log(line);
};

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A sink that drops records below `min`. */
export function levelFilter(sink: LogSink, min: LogLevel): LogSink {
  return (r) => {
    if (LEVEL_RANK[r.level] >= LEVEL_RANK[min]) sink(r);
  };
}
