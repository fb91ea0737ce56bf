/**
 * Keeps secret values out of every output: logs, alerts, audit records, HTTP answers and error
 * messages all pass through {@link redact}. Known secrets (client state, `%NAME%` policy values, a
 * rotated secret's text for the moment it exists) are registered; common secret shapes are masked
 * by pattern as a second line of defence.
 */

const known = new Set<string>();
const MASK = '[REDACTED]';

/** Registers a value that must never appear in output. Short values are ignored (they would mask noise). */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) known.add(value);
}

/** Forgets a secret (after a rotated value has been stored and dropped). Mostly for tests. */
export function forgetSecret(value: string): void {
  known.delete(value);
}

const PATTERNS: Array<[RegExp, string]> = [
  [/(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi, `$1${MASK}`],
  [/("?(?:secretText|clientState|client_state|password|access_token|refresh_token)"?\s*[:=]\s*")([^"]+)(")/gi, `$1${MASK}$3`],
  [/([?&](?:code|sig|token|validationToken|se|sp|sv|skoid|sktid)=)[^&\s"']+/gi, `$1${MASK}`],
  [/(AccountKey=)[^;"'\s]+/gi, `$1${MASK}`],
];

/** Masks every known secret and secret-shaped substring. */
export function redact(text: string): string {
  let out = text;
  for (const s of known) if (out.includes(s)) out = out.split(s).join(MASK);
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** Redacts a JSON-able value by round-tripping it through {@link redact}. */
export function redactValue<T>(value: T): T {
  if (value === undefined) return value;
  try {
    return JSON.parse(redact(JSON.stringify(value))) as T;
  } catch {
    return value;
  }
}
