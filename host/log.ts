/**
 * The host runner's log: one line per record, with time, level, function name and invocation id, like
 * the Functions host's console output. Records go through a sink, so tests capture them.
 */
import { format } from 'node:util';
import { redact } from '../shared/redact';

export type HostLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical';

export interface HostLogRecord {
  time: string;
  level: HostLogLevel;
  /** `host` for the runner itself, `function` for what a handler logs through its context. */
  category: 'host' | 'function';
  functionName?: string;
  invocationId?: string;
  message: string;
}

export type HostLogSink = (record: HostLogRecord) => void;

const LEVEL_TAG: Record<HostLogLevel, string> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info ',
  warning: 'warn ',
  error: 'error',
  critical: 'crit ',
};

/** `2026-01-01T00:00:00.000Z info  [work 3f2a9c1e] Reconciled …` */
export function formatHostLog(r: HostLogRecord): string {
  const who = r.functionName ? ` [${r.functionName}${r.invocationId ? ` ${r.invocationId.slice(0, 8)}` : ''}]` : '';
  return `${r.time} ${LEVEL_TAG[r.level]}${who} ${r.message}`;
}

export const consoleHostSink: HostLogSink = (r) => {
  const line = formatHostLog(r);
  if (r.level === 'error' || r.level === 'critical' || r.level === 'warning') process.stderr.write(`${line}\n`);
  else process.stdout.write(`${line}\n`);
};

/** Turns `context.log(...)` arguments into one line (errors as `Name: message`, objects as JSON). */
/** Every argument as text, with secret values masked (a failed invocation's error may quote a request). */
export function formatArgs(args: readonly unknown[]): string {
  return redact(args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return `${a.name}: ${a.message}`;
      try {
        return JSON.stringify(a) ?? format(a);
      } catch {
        return format(a);
      }
    })
    .join(' '));
}

export interface FunctionRef {
  functionName?: string;
  invocationId?: string;
}

export interface HostLogger {
  emit(record: Omit<HostLogRecord, 'time'>): void;
  info(message: string, fn?: FunctionRef): void;
  warn(message: string, fn?: FunctionRef): void;
  error(message: string, fn?: FunctionRef): void;
}

export function createHostLogger(sink: HostLogSink, now: () => Date = () => new Date()): HostLogger {
  const emit: HostLogger['emit'] = (r) => sink({ time: now().toISOString(), ...r });
  const at = (level: HostLogLevel) => (message: string, fn?: FunctionRef) => emit({ level, category: 'host', message, ...fn });
  return { emit, info: at('information'), warn: at('warning'), error: at('error') };
}
