import type { IncomingHttpHeaders } from 'node:http';

/** Credentials that must not be kept in what tests inspect or print. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'aeg-sas-key', 'aeg-sas-token', 'x-identity-header', 'cookie']);

/** Flattens Node's header object (lower-case names) and masks credential values. */
export function recordHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(', ') : v;
    out[k] = CREDENTIAL_HEADERS.has(k) ? maskCredential(k, value) : value;
  }
  return out;
}

function maskCredential(name: string, value: string): string {
  if (name === 'authorization') {
    const scheme = /^(\S+)\s/.exec(value)?.[1];
    return scheme ? `${scheme} [redacted]` : '[redacted]';
  }
  return '[redacted]';
}
