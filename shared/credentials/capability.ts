/**
 * The credentials capability: plans one application from the real state (the inventory, or Graph
 * directly when the inventory may be stale; the Key Vault secret; pending removals) and applies a
 * plan through the ports.
 *
 * A rotation: `addPassword` → the secret text is registered with the redactor at once → it is written
 * to Key Vault (tried twice with the same credential) → only then is the previous password scheduled
 * for removal after `overlapDays`. If Key Vault cannot take it, the new password is removed again, so
 * no credential that nobody knows lingers on the app; should even that fail, the password is recorded
 * for immediate removal (and the planner's orphan rule catches it without the record). The secret text
 * lives in one local variable of {@link rotate} and goes nowhere else: not into change data, findings,
 * errors or logs.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type Capability, type Change, type ChangeOutcome, type Plan } from '../capability';
import { type Clock, DAY_MS } from '../clock';
import { classifyError, codeOf, InputError, messageOf, statusOf, TerminalError, ThrottledError, TransientError } from '../errors';
import type { Logger } from '../logging';
import type { Policy } from '../policy';
import type { WorkRequest } from '../work/item';
import type { AppRegistration, Applications, NewPassword } from '../ports/applications';
import { latestVersion, type SecretVersion, type Secrets } from '../ports/secrets';
import { ConcurrencyError, type StateStore } from '../ports/state';
import { failedOutcome } from '../reconcile';
import { redact, registerSecret } from '../redact';
import { CredentialInventory, type InventorySnapshot } from './inventory';
import {
  GUID_RE,
  MANAGED_BY_WARDEN,
  PARTITIONS,
  type PendingRemoval,
  pendingRemovalSchema,
  removalKey,
  SECRET_CONTENT_TYPE,
  TAG_APP_ID,
  TAG_KEY_ID,
  TAG_MANAGED_BY,
  wardenPasswordName,
} from './model';
import { needsAttention, planCredentials, type RemovePasswordData, type RotateSecretData, rotatedFinding, withNotify } from './plan';

/** The inventory answers plans for this long after a sync; older, Graph is asked directly. */
export const INVENTORY_FRESH_MS = 10 * 60 * 1000;
/** Owners' addresses are cached this long. */
export const OWNERS_TTL_MS = 24 * 3600 * 1000;
/**
 * A rotation holds the app's lease this long past its last renewal; the holder renews it every third of
 * that while it runs, so a slow rotation keeps it and a crashed holder's lease expires soon.
 */
export const ROTATION_LEASE_MS = 15 * 1000;
/** The follow-up of a run that found the lease held comes this long after the lease would expire. */
const LEASE_FOLLOW_UP_MARGIN_MS = 1000;
/** Key Vault writes of one new secret (each already retried by the SDK). */
const STORE_ATTEMPTS = 2;
const COMPENSATE_ATTEMPTS = 3;

export interface CredentialsPorts {
  applications: Applications;
  secrets: Secrets;
}

export interface CredentialsCapabilityDeps {
  policy: Readonly<Policy>;
  clock: Clock;
  logger: Logger;
  state: StateStore;
  ports: CredentialsPorts;
  /** Queues work (delayed with `delayMs`): the re-check of an app whose rotation another run holds. */
  enqueue: (items: WorkRequest[], options?: { delayMs?: number }) => Promise<void>;
  /** {@link ROTATION_LEASE_MS} unless a test shortens it. */
  rotationLeaseMs?: number;
}

/** The rotation lease of one app: ours (release it when done), or held by another run until `until`. */
type Lease = { held: false; release: () => Promise<void> } | { held: true; until: Date };

export interface CredentialsCapability extends Capability {
  /** The delta-fed inventory (the sweep's `listTargets` syncs it). */
  readonly inventory: CredentialInventory;
}

const rotateDataSchema = z.object({
  appId: z.string(),
  objectId: z.string(),
  appName: z.string(),
  vaultUrl: z.string(),
  secretName: z.string(),
  supersedes: z.array(z.string()),
  reason: z.string(),
  notify: z.array(z.string()),
});

const removeDataSchema = z.object({
  appId: z.string(),
  objectId: z.string(),
  keyId: z.string(),
  reason: z.enum(['overlapEnded', 'expired', 'orphaned']),
  credentialName: z.string().nullable(),
});

const ownersCacheSchema = z.object({ mails: z.array(z.string()), fetchedAt: z.string() });
const leaseSchema = z.object({ owner: z.string(), until: z.string() });

export function createCredentialsCapability(deps: CredentialsCapabilityDeps): CredentialsCapability {
  const { policy, clock, logger, state } = deps;
  const leaseMs = deps.rotationLeaseMs ?? ROTATION_LEASE_MS;
  const { applications, secrets } = deps.ports;
  const cp = policy.credentials;
  const inventory = new CredentialInventory({ state, applications, clock, logger });
  const rotationOf = (appId: string) => cp.rotate.find((r) => r.appId.toLowerCase() === appId);

  async function pendingRemovals(): Promise<Array<{ key: string; value: PendingRemoval }>> {
    const rows = await state.list<unknown>(PARTITIONS.removals);
    const out: Array<{ key: string; value: PendingRemoval }> = [];
    for (const r of rows) {
      const parsed = pendingRemovalSchema.safeParse(r.value);
      if (parsed.success) out.push({ key: r.key, value: parsed.data });
      else logger.warn('Ignored an unreadable pending credential removal', { key: r.key });
    }
    return out;
  }

  /** The app as it is now: from the inventory when it is fresh and Warden has not written the app since, else from Graph. */
  async function readApp(appId: string): Promise<AppRegistration | undefined> {
    const now = clock.now().getTime();
    const touched = await state.get<unknown>(PARTITIONS.touched, appId);
    if (!touched) {
      const stored = await inventory.lookup(appId);
      if (stored?.app && now - stored.syncedAt.getTime() <= INVENTORY_FRESH_MS) return stored.app;
    }
    return applications.getByAppId(appId);
  }

  async function ownerMails(app: AppRegistration): Promise<string[]> {
    const cached = await state.get<unknown>(PARTITIONS.owners, app.appId);
    const parsed = cached ? ownersCacheSchema.safeParse(cached.value) : undefined;
    if (parsed?.success && clock.now().getTime() - Date.parse(parsed.data.fetchedAt) < OWNERS_TTL_MS) return parsed.data.mails;
    const mails = await applications.ownerMails(app.id);
    await state.put(PARTITIONS.owners, app.appId, { mails, fetchedAt: clock.now().toISOString() });
    return mails;
  }

  /** Marks the app as written by Warden: plans read it from Graph until a delta round has seen it again. */
  async function touch(appId: string): Promise<void> {
    try {
      await state.put(PARTITIONS.touched, appId, { at: clock.now().toISOString() });
    } catch (err) {
      logger.warn('Could not mark the application as changed', { appId, error: err });
    }
  }

  /**
   * Takes the app's rotation lease, or says until when another run holds it. While ours, it is renewed
   * so it never runs out under a rotation that is still going; a crashed holder's lease ends within
   * `leaseMs` of its last renewal.
   */
  async function acquireLease(appId: string): Promise<Lease> {
    const owner = randomUUID();
    const leaseValue = () => ({ owner, until: new Date(clock.now().getTime() + leaseMs).toISOString() });
    /** The lease another run holds now, if any (an unreadable or expired one is nobody's). */
    const heldBy = (row: { value: unknown } | undefined): Lease | undefined => {
      const parsed = row ? leaseSchema.safeParse(row.value) : undefined;
      const until = parsed?.success ? Date.parse(parsed.data.until) : NaN;
      return until > clock.now().getTime() ? { held: true, until: new Date(until) } : undefined;
    };
    try {
      await state.put(PARTITIONS.locks, appId, leaseValue(), { create: true });
    } catch (err) {
      if (!(err instanceof ConcurrencyError)) throw err;
      const row = await state.get<unknown>(PARTITIONS.locks, appId);
      const other = heldBy(row);
      if (other) return other;
      try {
        await state.put(PARTITIONS.locks, appId, leaseValue(), row ? { etag: row.etag } : { create: true });
      } catch (again) {
        if (!(again instanceof ConcurrencyError)) throw again;
        // Someone else took the expired lease over first.
        const taken = heldBy(await state.get<unknown>(PARTITIONS.locks, appId));
        if (taken) return taken;
        throw new TransientError('RotationLeaseContention', `The rotation lease of app ${appId} changed hands while taking it`);
      }
    }

    let renewing: Promise<void> = Promise.resolve();
    const renew = async (): Promise<void> => {
      const held = await state.get<unknown>(PARTITIONS.locks, appId);
      const parsed = held ? leaseSchema.safeParse(held.value) : undefined;
      if (!held || !parsed?.success || parsed.data.owner !== owner) {
        logger.warn('The rotation lease was lost while rotating', { appId });
        return;
      }
      await state.put(PARTITIONS.locks, appId, leaseValue(), { etag: held.etag });
    };
    const timer = setInterval(() => {
      renewing = renewing.then(renew).catch((err: unknown) => logger.warn('Could not renew the rotation lease', { appId, error: err }));
    }, Math.max(10, Math.floor(leaseMs / 3)));
    timer.unref();

    const release = async (): Promise<void> => {
      clearInterval(timer);
      await renewing;
      try {
        const held = await state.get<unknown>(PARTITIONS.locks, appId);
        const parsed = held ? leaseSchema.safeParse(held.value) : undefined;
        if (parsed?.success && parsed.data.owner === owner) await state.delete(PARTITIONS.locks, appId);
      } catch (err) {
        logger.warn('Could not release the rotation lease (it expires by itself)', { appId, error: err });
      }
    };
    return { held: false, release };
  }

  /**
   * Another run holds the app's rotation lease: this run does not wait for it and does not fail. It
   * queues a re-check of the app for when the lease ends, so a holder that finishes leaves nothing to do
   * and a holder that crashed has its rotation picked up then. Only if that cannot be queued does the
   * change fail (transiently), so the work item is retried and nothing is lost.
   */
  async function deferToLeaseHolder(change: Change, appId: string, until: Date): Promise<ChangeOutcome> {
    const delayMs = Math.max(0, until.getTime() - clock.now().getTime()) + LEASE_FOLLOW_UP_MARGIN_MS;
    try {
      await deps.enqueue(
        [{ capability: 'credentials', target: appId, reason: `re-check after another run's rotation of app ${appId}`, trigger: { kind: 'followup', id: change.id } }],
        { delayMs },
      );
    } catch (err) {
      throw new TransientError('RotationInProgress', `Another rotation of app ${appId} is in progress and no re-check could be queued: ${messageOf(err)}`);
    }
    logger.info(`Another run is rotating app ${appId}; re-checking it when its lease ends`, { appId, leaseUntil: until.toISOString(), delayMs });
    return { change, outcome: 'skipped', result: 'rotationInProgress' };
  }

  /** A Key Vault failure as an error that carries no request (the SDK's error holds the request body: the secret). */
  function keyVaultError(err: unknown, name: string): Error {
    const status = statusOf(err);
    const code = codeOf(err);
    const message = `Key Vault did not store secret ${name}${status ? ` (${status}${code ? ` ${code}` : ''})` : ''}: ${redact(messageOf(err))}`;
    const cls = classifyError(err);
    if (cls === 'throttled') return new ThrottledError(message);
    if (cls === 'transient') return new TransientError(code ?? 'KeyVaultUnavailable', message);
    return new TerminalError(code ?? 'KeyVaultRefused', message);
  }

  async function storeSecret(data: RotateSecretData, created: NewPassword): Promise<SecretVersion> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= STORE_ATTEMPTS; attempt++) {
      try {
        return await secrets.set(data.vaultUrl, data.secretName, created.secretText, {
          expiresOn: new Date(created.endDateTime),
          contentType: SECRET_CONTENT_TYPE,
          tags: { [TAG_APP_ID]: data.appId, [TAG_KEY_ID]: created.keyId, [TAG_MANAGED_BY]: MANAGED_BY_WARDEN },
        });
      } catch (err) {
        lastError = err;
        if (classifyError(err) === 'terminal') break;
        logger.warn('Key Vault did not take the new secret; trying again with the same credential', {
          appId: data.appId,
          secretName: data.secretName,
          attempt,
          status: statusOf(err),
        });
      }
    }
    throw keyVaultError(lastError, data.secretName);
  }

  /** Removes a password whose secret never reached Key Vault; if that fails too, records it for the next reconcile. */
  async function compensate(data: RotateSecretData, keyId: string): Promise<void> {
    for (let attempt = 1; attempt <= COMPENSATE_ATTEMPTS; attempt++) {
      try {
        await applications.removePassword(data.objectId, keyId);
        logger.info('Removed the new password again because Key Vault did not store it', { appId: data.appId, keyId });
        return;
      } catch (err) {
        logger.warn('Could not remove the unstored password', { appId: data.appId, keyId, attempt, error: err });
      }
    }
    const now = clock.now().toISOString();
    const rec: PendingRemoval = { appId: data.appId, objectId: data.objectId, keyId, removeAfter: now, reason: 'orphaned', createdAt: now };
    try {
      await state.put(PARTITIONS.removals, removalKey(data.appId, keyId), rec);
    } catch (err) {
      logger.error('Could not record the unstored password for removal; the planner removes it as an orphan', { appId: data.appId, keyId, error: err });
    }
  }

  async function rotate(change: Change): Promise<ChangeOutcome> {
    const data: RotateSecretData = rotateDataSchema.parse(change.data);
    const lease = await acquireLease(data.appId);
    if (lease.held) return deferToLeaseHolder(change, data.appId, lease.until);
    try {
      const start = clock.now();
      const endDateTime = new Date(start.getTime() + cp.lifetimeDays * DAY_MS);
      let created: NewPassword;
      try {
        created = await applications.addPassword(data.objectId, { displayName: wardenPasswordName(data), endDateTime });
      } catch (err) {
        if (statusOf(err) === 403) {
          throw new TerminalError(
            'NotAnOwner',
            `Warden may not add a password to app ${data.appId}: make Warden's identity an owner of the app (Application.ReadWrite.OwnedBy). ${messageOf(err)}`,
          );
        }
        throw err;
      }
      registerSecret(created.secretText);
      await touch(data.appId);
      let stored: SecretVersion;
      try {
        stored = await storeSecret(data, created);
      } catch (err) {
        await compensate(data, created.keyId);
        throw err;
      }
      const removeAfter = new Date(start.getTime() + cp.overlapDays * DAY_MS).toISOString();
      for (const keyId of data.supersedes) {
        const rec: PendingRemoval = {
          appId: data.appId,
          objectId: data.objectId,
          keyId,
          removeAfter,
          reason: 'superseded',
          supersededBy: created.keyId,
          createdAt: start.toISOString(),
        };
        try {
          await state.put(PARTITIONS.removals, removalKey(data.appId, keyId), rec);
        } catch (err) {
          logger.error('Could not schedule the removal of the replaced password; remove it by hand after the overlap', { appId: data.appId, keyId, error: err });
        }
      }
      logger.info(`Rotated the client secret of app ${data.appId} into Key Vault secret ${data.secretName}`, {
        appId: data.appId,
        keyId: created.keyId,
        secretVersion: stored.version,
        supersedes: data.supersedes,
      });
      return {
        change,
        outcome: 'applied',
        result: 'rotated',
        findings: [rotatedFinding({ data, newKeyId: created.keyId, endDateTime: created.endDateTime, version: stored.version, removeAfter })],
      };
    } finally {
      await lease.release();
    }
  }

  async function remove(change: Change): Promise<ChangeOutcome> {
    const data: RemovePasswordData = removeDataSchema.parse(change.data);
    const result = await applications.removePassword(data.objectId, data.keyId);
    await touch(data.appId);
    await state.delete(PARTITIONS.removals, removalKey(data.appId, data.keyId));
    return { change, outcome: result === 'removed' ? 'applied' : 'unchanged', result };
  }

  return {
    name: 'credentials',
    inventory,

    async listTargets(): Promise<string[]> {
      const snapshot: InventorySnapshot = await inventory.sync();
      const now = clock.now();
      const pending = await pendingRemovals();
      // A pending removal whose password is gone (removed by hand, or its app deleted) is done.
      for (const p of pending) {
        const app = snapshot.apps.get(p.value.appId);
        if (!app || !app.passwords.some((x) => x.keyId === p.value.keyId)) await state.delete(PARTITIONS.removals, p.key);
      }
      // Apps a delta round has seen since Warden wrote them can be planned from the inventory again.
      if (snapshot.changed.size > 0) {
        for (const t of await state.list<unknown>(PARTITIONS.touched)) {
          if (snapshot.changed.has(t.key)) await state.delete(PARTITIONS.touched, t.key);
        }
      }
      const rotate = new Set(cp.rotate.map((r) => r.appId.toLowerCase()));
      const pendingApps = new Set(pending.map((p) => p.value.appId));
      const targets = new Set<string>(rotate);
      for (const app of snapshot.apps.values()) {
        if (needsAttention(app, { now, warnDays: Math.max(cp.warnDays, cp.rotateDaysBefore), rotate, pending: pendingApps })) targets.add(app.appId);
      }
      return [...targets].sort();
    },

    parseTarget(target: string): string {
      const t = target.trim();
      if (!GUID_RE.test(t)) throw new InputError('InvalidTarget', 'A credentials target is an application (client) id: a GUID.');
      return t.toLowerCase();
    },

    inScope(): boolean {
      // App registrations belong to the tenant, not to an ARM scope: every app is governed.
      return true;
    },

    async plan(target: string): Promise<Plan> {
      const appId = target.toLowerCase();
      const rotation = rotationOf(appId);
      const app = await readApp(appId);
      const pending = app ? (await pendingRemovals()).map((p) => p.value).filter((p) => p.appId === appId) : [];
      const vaultCurrent = rotation && app ? latestVersion(await secrets.versions(rotation.vaultUrl, rotation.secretName)) : undefined;
      const plan = planCredentials({
        appId,
        now: clock.now(),
        policy: cp,
        mode: policy.mode,
        app,
        rotation: rotation ? { appId, vaultUrl: rotation.vaultUrl, secretName: rotation.secretName } : undefined,
        vaultCurrent,
        pending,
      });
      const wantsOwners = policy.alerts.mail?.notifyOwners === true;
      if (!app || !wantsOwners || (plan.findings.length === 0 && !plan.changes.some((c) => c.action === 'rotateSecret'))) return plan;
      return withNotify(plan, await ownerMails(app));
    },

    async apply(plan: Plan): Promise<ChangeOutcome[]> {
      const ordered = [...plan.changes].sort((a, b) => Number(a.action !== 'rotateSecret') - Number(b.action !== 'rotateSecret'));
      const outcomes: ChangeOutcome[] = [];
      for (const change of ordered) {
        try {
          if (change.action === 'rotateSecret') outcomes.push(await rotate(change));
          else if (change.action === 'removePassword') outcomes.push(await remove(change));
          else outcomes.push({ change, outcome: 'skipped', result: 'unknown action' });
        } catch (err) {
          logger.warn(`Failed to ${change.action} for app ${change.target}`, { changeId: change.id, error: err });
          outcomes.push(failedOutcome(change, err));
        }
      }
      return outcomes;
    },
  };
}
