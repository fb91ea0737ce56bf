/**
 * Names and small rules the credentials capability shares between its planner, its executor, its
 * inventory and its Key Vault event handler.
 */
import { z } from 'zod';
import type { AppCredential } from '../ports/applications';

/** Prefix of the display name of every password Warden adds: `warden:<vault>/<secret>`. */
export const WARDEN_MARK = 'warden:';

/** Tags Warden writes on every Key Vault version it stores (the event handler matches on them). */
export const TAG_APP_ID = 'appId';
export const TAG_KEY_ID = 'keyId';
export const TAG_MANAGED_BY = 'managedBy';
export const MANAGED_BY_WARDEN = 'warden';
/** Content type of the Key Vault versions Warden writes. */
export const SECRET_CONTENT_TYPE = 'application/vnd.warden.entra-client-secret';

/**
 * A Warden-made password newer than the one Key Vault holds is a left-over of a rotation that did not
 * finish (its secret text is lost). It is removed only after this grace, so a rotation still in
 * flight on another instance is never disturbed.
 */
export const ORPHAN_GRACE_MS = 15 * 60 * 1000;

/** StateStore partitions. */
export const PARTITIONS = {
  inventory: 'credentials-inventory',
  removals: 'credentials-removals',
  owners: 'credentials-owners',
  touched: 'credentials-touched',
  locks: 'credentials-locks',
} as const;

export const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** One `credentials.rotate` entry of the policy. */
export interface RotationTarget {
  appId: string;
  vaultUrl: string;
  secretName: string;
}

/** A password to remove once its overlap has passed; stored so the overlap survives restarts. */
export const pendingRemovalSchema = z.object({
  appId: z.string(),
  objectId: z.string(),
  keyId: z.string(),
  /** ISO time after which the password is removed. */
  removeAfter: z.string(),
  reason: z.enum(['superseded', 'orphaned']),
  /** The password that replaced it. */
  supersededBy: z.string().optional(),
  createdAt: z.string(),
});
export type PendingRemoval = z.infer<typeof pendingRemovalSchema>;

export function removalKey(appId: string, keyId: string): string {
  return `${appId.toLowerCase()}/${keyId.toLowerCase()}`;
}

/** The display name Warden gives the passwords it adds for one rotation target. */
export function wardenPasswordName(target: Pick<RotationTarget, 'vaultUrl' | 'secretName'>): string {
  let vault: string;
  try {
    vault = new URL(target.vaultUrl).hostname.split('.')[0] ?? 'vault';
  } catch {
    vault = 'vault';
  }
  return `${WARDEN_MARK}${vault}/${target.secretName}`;
}

export function isWardenMade(c: Pick<AppCredential, 'displayName'>): boolean {
  return (c.displayName ?? '').toLowerCase().startsWith(WARDEN_MARK);
}

/** Epoch ms of an ISO time, undefined for null or garbage. */
export function timeOf(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/** A tag value, looked up case-insensitively (tags written by hand vary). */
export function tagValue(tags: Readonly<Record<string, string>>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(tags)) if (k.toLowerCase() === want) return v;
  return undefined;
}

/** Same vault: scheme, host and port compared case-insensitively (trailing slashes ignored). */
export function sameVault(a: string, b: string): boolean {
  try {
    return new URL(a).origin.toLowerCase() === new URL(b).origin.toLowerCase();
  } catch {
    return false;
  }
}

/** `2026-01-11` for summaries (stable text, so a finding does not change from one day to the next). */
export function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
