/**
 * The pure planner of the credentials capability: from one application's credential metadata, the
 * Key Vault secret Warden rotates it into (if the policy names one), the pending removals and the
 * clock, decide what to change and what to tell people. Nothing here reads or writes anything.
 *
 * Guarantees (property-tested in `test/unit/credentials*.test.ts`):
 * - the password Key Vault currently holds is never removed while it is valid;
 * - a valid password Warden did not make is removed only when a rotation superseded it and its
 *   overlap has passed (a stored pending removal);
 * - the same input gives the same plan (change ids are deterministic).
 */
import { emptyPlan, type Change, type Finding, type Plan } from '../capability';
import { DAY_MS } from '../clock';
import type { CredentialsPolicy, Mode } from '../policy';
import type { AppCredential, AppRegistration } from '../ports/applications';
import type { SecretVersion } from '../ports/secrets';
import { uuidV5 } from '../uuid';
import {
  day,
  isWardenMade,
  ORPHAN_GRACE_MS,
  type PendingRemoval,
  type RotationTarget,
  TAG_KEY_ID,
  tagValue,
  timeOf,
} from './model';

export const FINDING = {
  expiring: 'Warden.Credentials.Expiring',
  expired: 'Warden.Credentials.Expired',
  rotated: 'Warden.Credentials.Rotated',
  appNotFound: 'Warden.Credentials.AppNotFound',
} as const;

export type RemovalReason = 'overlapEnded' | 'expired' | 'orphaned';

/** What `rotateSecret` needs to run (never a secret). */
export interface RotateSecretData extends Record<string, unknown> {
  appId: string;
  objectId: string;
  appName: string;
  vaultUrl: string;
  secretName: string;
  /** Passwords this rotation replaces: removed `overlapDays` after it. */
  supersedes: string[];
  reason: string;
  /** Owners' mail addresses for the Rotated finding. */
  notify: string[];
}

export interface RemovePasswordData extends Record<string, unknown> {
  appId: string;
  objectId: string;
  keyId: string;
  reason: RemovalReason;
  credentialName: string | null;
}

export interface CredentialsPlanInput {
  appId: string;
  now: Date;
  policy: Pick<CredentialsPolicy, 'warnDays' | 'rotateDaysBefore' | 'overlapDays' | 'removeExpired'>;
  mode: Mode;
  /** Undefined: the application does not exist. */
  app: AppRegistration | undefined;
  /** The policy's `credentials.rotate` entry for this app, if any. */
  rotation?: RotationTarget | undefined;
  /** The current version of the rotation's Key Vault secret (undefined: no such secret). */
  vaultCurrent?: SecretVersion | undefined;
  /** Pending removals of this app. */
  pending: readonly PendingRemoval[];
}

function credentialLabel(c: AppCredential): string {
  const kind = c.kind === 'password' ? 'Client secret' : 'Certificate';
  return c.displayName ? `${kind} "${c.displayName}"` : `${kind} ${c.keyId}`;
}

function appLabel(app: AppRegistration): string {
  return `app "${app.displayName}" (${app.appId})`;
}

function credentialResource(appId: string, c: Pick<AppCredential, 'kind' | 'keyId'>): string {
  return `${appId}/${c.kind === 'password' ? 'passwordCredentials' : 'keyCredentials'}/${c.keyId}`;
}

/** Plans one application. */
export function planCredentials(input: CredentialsPlanInput): Plan {
  const { appId, app, policy } = input;
  const plan = emptyPlan('credentials', appId);
  const now = input.now.getTime();

  if (!app) {
    if (input.rotation) {
      plan.findings.push({
        type: FINDING.appNotFound,
        subject: appId,
        severity: 'warning',
        summary: `The policy rotates the client secret of app ${appId} into Key Vault secret ${input.rotation.secretName}, but there is no such application.`,
        details: { appId, vaultUrl: input.rotation.vaultUrl, secretName: input.rotation.secretName },
        actions: ['Fix or remove the credentials.rotate entry in the policy.'],
      });
    }
    plan.skipped.push({ resource: appId, reason: 'No application has this app id' });
    return plan;
  }

  const passwords = new Map(app.passwords.map((p) => [p.keyId, p]));
  /** Passwords Warden takes care of itself: no expiry finding for them. */
  const handled = new Set<string>();
  const removals = new Map<string, RemovalReason>();
  const expired = (c: AppCredential): boolean => {
    const end = timeOf(c.endDateTime);
    return end !== undefined && end <= now;
  };
  const overlapMs = policy.overlapDays * DAY_MS;
  const pendingKeys = new Set(input.pending.map((p) => p.keyId));

  let currentKeyId: string | undefined;
  let rotation: { supersedes: string[]; reason: string } | undefined;

  if (input.rotation) {
    const target = input.rotation;
    const latest = input.vaultCurrent;
    const tagged = latest?.enabled ? tagValue(latest.tags, TAG_KEY_ID)?.toLowerCase() : undefined;
    const current = tagged ? passwords.get(tagged) : undefined;
    currentKeyId = current?.keyId;
    const horizon = now + policy.rotateDaysBefore * DAY_MS;
    const currentEnd = current ? timeOf(current.endDateTime) : undefined;
    let due: string | undefined;
    if (!latest) due = `Key Vault has no secret ${target.secretName}`;
    else if (!latest.enabled) due = `the current version of Key Vault secret ${target.secretName} is disabled`;
    else if (!tagged) due = `Key Vault secret ${target.secretName} was not written by Warden`;
    else if (!current) due = `the password Key Vault secret ${target.secretName} holds is no longer on the app`;
    else if (currentEnd !== undefined && currentEnd <= horizon) due = `the current client secret expires on ${day(currentEnd)}`;
    else if (latest.expiresOn && latest.expiresOn.getTime() <= horizon) due = `Key Vault secret ${target.secretName} expires on ${day(latest.expiresOn.getTime())}`;
    if (current) handled.add(current.keyId);

    const currentStart = current ? timeOf(current.startDateTime) : undefined;
    for (const p of app.passwords) {
      if (!isWardenMade(p) || p.keyId === currentKeyId) continue;
      handled.add(p.keyId);
      if (!current || pendingKeys.has(p.keyId)) continue;
      const start = timeOf(p.startDateTime);
      if (start !== undefined && currentStart !== undefined && start < currentStart) {
        // An older Warden password: superseded when the current one was made, so its overlap runs from then.
        const removeAfter = currentStart + overlapMs;
        if (removeAfter <= now) removals.set(p.keyId, 'overlapEnded');
        else plan.skipped.push({ resource: credentialResource(appId, p), reason: `Kept until ${new Date(removeAfter).toISOString()} (overlap after rotation)` });
      } else if (start === undefined || now - start >= ORPHAN_GRACE_MS) {
        // Newer than the one Key Vault holds: a rotation that never reached Key Vault; nobody knows its secret.
        removals.set(p.keyId, 'orphaned');
      } else {
        plan.skipped.push({ resource: credentialResource(appId, p), reason: 'A rotation may still be storing this password' });
      }
    }

    if (due) {
      const supersedes = new Set<string>();
      if (current) supersedes.add(current.keyId);
      for (const p of app.passwords) {
        const end = timeOf(p.endDateTime);
        if (end !== undefined && end > now && end <= horizon) supersedes.add(p.keyId);
        if (!current && isWardenMade(p)) supersedes.add(p.keyId);
      }
      const list = [...supersedes].filter((k) => !removals.has(k) && !pendingKeys.has(k)).sort();
      rotation = { supersedes: list, reason: due };
      const data: RotateSecretData = {
        appId,
        objectId: app.id,
        appName: app.displayName,
        vaultUrl: target.vaultUrl,
        secretName: target.secretName,
        supersedes: list,
        reason: due,
        notify: [],
      };
      plan.changes.push({
        id: uuidV5(`credentials|rotateSecret|${appId}|${currentKeyId ?? '-'}|${list.join(',')}`),
        capability: 'credentials',
        target: appId,
        action: 'rotateSecret',
        description: `Rotate the client secret of ${appLabel(app)} into Key Vault secret ${target.secretName} (${due})`,
        resource: appId,
        destructive: false,
        data,
      });
    }
  }

  for (const rec of input.pending) {
    handled.add(rec.keyId);
    const p = passwords.get(rec.keyId);
    if (!p || removals.has(p.keyId)) continue;
    if (p.keyId === currentKeyId && !expired(p)) {
      plan.skipped.push({ resource: credentialResource(appId, p), reason: 'Scheduled for removal but still held by Key Vault' });
      continue;
    }
    const after = timeOf(rec.removeAfter) ?? 0;
    if (after <= now) removals.set(p.keyId, rec.reason === 'orphaned' ? 'orphaned' : 'overlapEnded');
    else plan.skipped.push({ resource: credentialResource(appId, p), reason: `Kept until ${new Date(after).toISOString()} (overlap after rotation)` });
  }

  if (policy.removeExpired) {
    for (const p of app.passwords) if (expired(p) && !removals.has(p.keyId)) removals.set(p.keyId, 'expired');
  }

  for (const [keyId, reason] of [...removals].sort(([a], [b]) => a.localeCompare(b))) {
    const p = passwords.get(keyId);
    if (!p) continue;
    const why = reason === 'expired' ? 'expired' : reason === 'orphaned' ? 'left over from an unfinished rotation' : 'replaced, overlap ended';
    const data: RemovePasswordData = { appId, objectId: app.id, keyId, reason, credentialName: p.displayName };
    plan.changes.push({
      id: uuidV5(`credentials|removePassword|${appId}|${keyId}`),
      capability: 'credentials',
      target: appId,
      action: 'removePassword',
      description: `Remove ${credentialLabel(p).toLowerCase()} from ${appLabel(app)} (${why})`,
      resource: credentialResource(appId, p),
      destructive: true,
      data,
    });
  }

  const rotatingAway = new Set(rotation?.supersedes ?? []);
  const warnHorizon = now + policy.warnDays * DAY_MS;
  for (const c of [...app.passwords, ...app.certificates]) {
    if (c.kind === 'password' && handled.has(c.keyId)) continue;
    const end = timeOf(c.endDateTime);
    if (end === undefined || end > warnHorizon) continue;
    const isExpired = end <= now;
    const willRotate = c.kind === 'password' && rotatingAway.has(c.keyId) && !isExpired;
    // In enforce mode the rotation's own Rotated finding tells the owners; a second mail would be noise.
    if (willRotate && input.mode === 'enforce') continue;
    const actions: string[] = [];
    if (isExpired) {
      actions.push(
        c.kind === 'password' && policy.removeExpired
          ? 'Warden removes it (credentials.removeExpired).'
          : `Remove it from the app registration${c.kind === 'password' ? ' (or set credentials.removeExpired)' : ''}.`,
      );
    } else if (willRotate && input.rotation) {
      actions.push(`Warden would rotate it into Key Vault secret ${input.rotation.secretName} (the policy is in report mode).`);
    } else {
      actions.push(
        c.kind === 'password'
          ? 'Add a new client secret, update the apps that use it, then remove this one — or let Warden rotate it (credentials.rotate).'
          : 'Upload a new certificate, update the apps that use it, then remove this one.',
      );
    }
    plan.findings.push(credentialFinding(app, c, end, isExpired, actions));
  }

  return plan;
}

function credentialFinding(app: AppRegistration, c: AppCredential, end: number, isExpired: boolean, actions: string[]): Finding {
  return {
    type: isExpired ? FINDING.expired : FINDING.expiring,
    // One identity per credential: the alerter de-duplicates on (type, subject), and an app's several
    // expiring credentials must each be alerted once per repeat window, not displace one another.
    subject: credentialResource(app.appId, c),
    severity: isExpired ? 'critical' : 'warning',
    summary: `${credentialLabel(c)} of ${appLabel(app)} ${isExpired ? 'expired' : 'expires'} on ${day(end)}.`,
    details: {
      appId: app.appId,
      appObjectId: app.id,
      appName: app.displayName,
      credential: c.kind,
      keyId: c.keyId,
      displayName: c.displayName,
      endDateTime: new Date(end).toISOString(),
    },
    actions,
  };
}

/** The apply-time finding of a finished rotation. */
export function rotatedFinding(input: {
  data: RotateSecretData;
  newKeyId: string;
  endDateTime: string;
  version: string;
  removeAfter: string | undefined;
}): Finding {
  const { data } = input;
  const removal = data.supersedes.length > 0 && input.removeAfter ? ` The previous secret is removed after ${input.removeAfter.slice(0, 10)}.` : '';
  return {
    type: FINDING.rotated,
    subject: data.appId,
    severity: 'info',
    summary: `Rotated the client secret of app "${data.appName}" (${data.appId}): the new secret is in Key Vault secret ${data.secretName} and expires on ${input.endDateTime.slice(0, 10)}.${removal}`,
    details: {
      appId: data.appId,
      appObjectId: data.objectId,
      appName: data.appName,
      keyId: input.newKeyId,
      vaultUrl: data.vaultUrl,
      secretName: data.secretName,
      secretVersion: input.version,
      endDateTime: input.endDateTime,
      supersedes: data.supersedes,
      ...(input.removeAfter && data.supersedes.length > 0 ? { removeAfter: input.removeAfter } : {}),
      reason: data.reason,
    },
    actions: [
      `Apps that read Key Vault secret ${data.secretName} pick up the new version; anything holding a copy of the old secret must be updated before the overlap ends.`,
    ],
    ...(data.notify.length > 0 ? { notify: data.notify } : {}),
  };
}

/** Adds the owners' addresses to every finding and to the rotation (for its apply-time finding). */
export function withNotify(plan: Plan, mails: readonly string[]): Plan {
  if (mails.length === 0) return plan;
  const notify = [...mails];
  return {
    ...plan,
    findings: plan.findings.map((f) => ({ ...f, notify })),
    changes: plan.changes.map((c): Change => (c.action === 'rotateSecret' ? { ...c, data: { ...c.data, notify } } : c)),
  };
}

/**
 * Whether a sweep should reconcile this app: a credential expires (or has expired) within `warnDays`,
 * the policy rotates it, or a removal is pending. Everything else costs nothing.
 */
export function needsAttention(
  app: AppRegistration,
  opts: { now: Date; warnDays: number; rotate: ReadonlySet<string>; pending: ReadonlySet<string> },
): boolean {
  if (opts.rotate.has(app.appId) || opts.pending.has(app.appId)) return true;
  const horizon = opts.now.getTime() + opts.warnDays * DAY_MS;
  for (const c of [...app.passwords, ...app.certificates]) {
    const end = timeOf(c.endDateTime);
    if (end !== undefined && end <= horizon) return true;
  }
  return false;
}
