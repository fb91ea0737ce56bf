/**
 * Error classes with stable codes. Every class sets `name` and keeps `cause`, and the work pipeline
 * decides retries from them: throttled (respect Retry-After), transient (retry with backoff), terminal
 * (record, alert, complete — retrying cannot help).
 */

export type ErrorClass = 'throttled' | 'transient' | 'terminal';

export class WardenError extends Error {
  readonly code: string;
  /** HTTP status to answer with when this error reaches an HTTP route. */
  readonly status: number;
  constructor(code: string, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.status = options.status ?? 500;
  }
}

/** One problem in a setting or policy, named by its key or JSON path. */
export interface Issue {
  path: string;
  message: string;
}

function describe(issues: readonly Issue[]): string {
  return issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n');
}

/** Bad or missing app settings: every problem at once, each with the setting's name. */
export class SettingsError extends WardenError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[]) {
    super('InvalidSettings', `Invalid app settings:\n${describe(issues)}`, { status: 500 });
    this.name = 'SettingsError';
    this.issues = issues;
  }
}

/** An invalid policy: every problem at once, each with its JSON path (`rbac.bindings[0].role`). */
export class PolicyError extends WardenError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], source = 'policy') {
    super('InvalidPolicy', `Invalid ${source}:\n${describe(issues)}`, { status: 500 });
    this.name = 'PolicyError';
    this.issues = issues;
  }
}

/** Bad input on a route or trigger: answered with a 4xx, never retried. */
export class InputError extends WardenError {
  constructor(code: string, message: string, status = 400, cause?: unknown) {
    super(code, message, { status, cause });
    this.name = 'InputError';
  }
}

/** A failure that retrying cannot fix (bad configuration, forbidden, not found…). */
export class TerminalError extends WardenError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { status: 500, cause });
    this.name = 'TerminalError';
  }
}

/** A failure worth retrying (5xx, timeouts, propagation delays). */
export class TransientError extends WardenError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { status: 503, cause });
    this.name = 'TransientError';
  }
}

/** The service asked us to slow down. */
export class ThrottledError extends WardenError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number, cause?: unknown) {
    super('Throttled', message, { status: 503, cause });
    this.name = 'ThrottledError';
    this.retryAfterMs = retryAfterMs;
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ESOCKETTIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'REQUEST_SEND_ERROR', 'AbortError', 'TimeoutError',
]);

/** Status code of an SDK error: `RestError.statusCode` (Azure) or `GraphError.statusCode`. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { statusCode?: unknown; status?: unknown; response?: { status?: unknown } };
  if (typeof e.statusCode === 'number' && e.statusCode > 0) return e.statusCode;
  if (typeof e.response?.status === 'number') return e.response.status;
  if (typeof e.status === 'number' && !(err instanceof WardenError)) return e.status;
  return undefined;
}

/** Service error code: ARM `error.code` (`RoleAssignmentExists`, `PrincipalNotFound`), Graph `code`. */
export function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}

/** Decides what the work pipeline does with a failure. Unknown errors are transient (retry, then poison). */
export function classifyError(err: unknown): ErrorClass {
  if (err instanceof ThrottledError) return 'throttled';
  if (err instanceof TransientError) return 'transient';
  if (err instanceof TerminalError || err instanceof InputError || err instanceof PolicyError || err instanceof SettingsError) {
    return 'terminal';
  }
  if (err instanceof AggregateError) {
    const classes = err.errors.map(classifyError);
    if (classes.includes('throttled')) return 'throttled';
    if (classes.includes('transient')) return 'transient';
    return classes.length > 0 ? 'terminal' : 'transient';
  }
  const status = statusOf(err);
  const code = codeOf(err);
  if (status === 429) return 'throttled';
  if (code === 'PrincipalNotFound') return 'transient';
  if (status !== undefined) {
    if (status === 408 || status >= 500) return 'transient';
    if (status >= 400) return 'terminal';
  }
  if (code && NETWORK_CODES.has(code)) return 'transient';
  const name = (err as { name?: unknown } | null)?.name;
  if (typeof name === 'string' && NETWORK_CODES.has(name)) return 'transient';
  return 'transient';
}

/** A message safe to show: the error's own message, without stack or nested bodies. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : 'Unknown error';
}
