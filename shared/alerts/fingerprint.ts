/**
 * De-duplication keys. A finding's identity is its type and subject (ARM ids are case-insensitive);
 * its content hash covers what makes it "changed": severity and details. The same identity with the
 * same hash inside the repeat window is not sent again; a new hash is sent at once (SPEC §5).
 */
import { createHash } from 'node:crypto';
import type { Finding } from '../capability';

/** JSON with object keys sorted at every level, so equal values hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableStringify(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Key of the de-duplication state: one entry per (type, subject). */
export function findingKey(f: Pick<Finding, 'type' | 'subject'>): string {
  return sha256(`${f.type}\n${f.subject.toLowerCase()}`);
}

/** Hash of what, when it changes, makes a finding worth sending again inside the window. */
export function findingHash(f: Pick<Finding, 'severity' | 'details'>): string {
  return sha256(stableStringify({ severity: f.severity, details: f.details })).slice(0, 32);
}
