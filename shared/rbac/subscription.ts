/**
 * Keeps Warden's one Graph change-notification subscription alive: one subscription on `/groups`
 * (group subscriptions are capped at 100 per app and tenant, so never one per group), changeType
 * `updated`, notifications to `{WARDEN_PUBLIC_URL}/api/graph/notifications`, lifecycle events to
 * `…/api/graph/lifecycle`. Called hourly by the `graphSubscriptions` timer and by lifecycle events:
 * created when missing, checked to still exist, renewed when less than `renewBeforeMs` is left of its
 * life (asked for `subscriptionLifetimeMinutes`, under Graph's 41,760), recreated when Graph says it
 * is gone. After a (re)creation a delta catch-up is queued: notifications may have been lost meanwhile.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import type { Settings } from '../settings';
import type { Directory } from '../ports/directory';
import type { StateStore } from '../ports/state';
import type { WorkRequest } from '../work/item';
import { DELTA_TARGET } from './delta';
import { K_SUBSCRIPTION, P_RBAC, readEntry, subscriptionRecordSchema, type SubscriptionRecord } from './store';

export const SUBSCRIPTION_RESOURCE = '/groups';
export const SUBSCRIPTION_CHANGE_TYPE = 'updated';

export type SubscriptionAction = 'disabled' | 'created' | 'recreated' | 'renewed' | 'unchanged';

export interface SubscriptionStatus {
  action: SubscriptionAction;
  id?: string;
  expirationDateTime?: string;
  /** Why nothing is managed (`disabled`). */
  reason?: string;
}

export interface SubscriptionDeps {
  settings: Pick<Settings, 'publicUrl' | 'clientState'>;
  directory: Directory;
  state: StateStore;
  clock: Clock;
  enqueue: (items: WorkRequest[]) => Promise<void>;
  lifetimeMinutes: number;
  renewBeforeMs: number;
  /** Whether any binding exists (no binding, nothing to be notified about). */
  hasBindings: boolean;
  log: Logger;
}

export function notificationUrls(publicUrl: string): { notificationUrl: string; lifecycleNotificationUrl: string } {
  const base = publicUrl.replace(/\/+$/, '');
  return { notificationUrl: `${base}/api/graph/notifications`, lifecycleNotificationUrl: `${base}/api/graph/lifecycle` };
}

/** The id of the subscription Warden keeps, if any. */
export async function currentSubscriptionId(state: StateStore): Promise<string | undefined> {
  return (await readEntry(state, P_RBAC, K_SUBSCRIPTION, subscriptionRecordSchema))?.value.id;
}

export async function ensureSubscription(d: SubscriptionDeps, options: { recreate?: boolean } = {}): Promise<SubscriptionStatus> {
  const { publicUrl, clientState } = d.settings;
  if (!publicUrl || !clientState) return { action: 'disabled', reason: 'WARDEN_PUBLIC_URL is not set: webhook subscriptions are not managed' };
  if (!d.hasBindings) return { action: 'disabled', reason: 'The policy has no rbac bindings' };
  const urls = notificationUrls(publicUrl);
  const now = d.clock.now();
  const expiration = (): string => new Date(d.clock.now().getTime() + d.lifetimeMinutes * 60_000).toISOString();
  const stored = await readEntry(d.state, P_RBAC, K_SUBSCRIPTION, subscriptionRecordSchema);
  const stateHash = createHash('sha256').update(clientState).digest('hex');
  const rec = stored?.value;

  const create = async (action: 'created' | 'recreated', why: string): Promise<SubscriptionStatus> => {
    const sub = await d.directory.createSubscription({
      resource: SUBSCRIPTION_RESOURCE,
      changeType: SUBSCRIPTION_CHANGE_TYPE,
      ...urls,
      expirationDateTime: expiration(),
      clientState,
    });
    const record: SubscriptionRecord = {
      id: sub.id,
      resource: sub.resource,
      notificationUrl: urls.notificationUrl,
      lifecycleNotificationUrl: urls.lifecycleNotificationUrl,
      expirationDateTime: sub.expirationDateTime,
      createdAt: d.clock.now().toISOString(),
      clientStateHash: stateHash,
    };
    await d.state.put(P_RBAC, K_SUBSCRIPTION, record);
    // The one it replaces would keep sending notifications (with an old client state or to an old
    // URL) and count against Graph's 100-per-app quota on /groups.
    if (rec && rec.id !== sub.id) {
      await d.directory.deleteSubscription(rec.id).catch((err: unknown) =>
        d.log.warn('Could not delete the replaced Graph subscription; Graph expires it by itself', { subscriptionId: rec.id, error: err }),
      );
    }
    d.log.info(`${action === 'created' ? 'Created' : 'Recreated'} the Graph subscription on /groups (${why})`, { subscriptionId: sub.id, expirationDateTime: sub.expirationDateTime });
    await d.enqueue([
      { capability: 'rbac', target: DELTA_TARGET, reason: `Graph subscription ${action}: catch up what was missed`, trigger: { kind: 'schedule', id: 'graphSubscriptions' } },
    ]);
    return { action, id: sub.id, expirationDateTime: sub.expirationDateTime };
  };

  if (!rec) return create('created', 'none was recorded');
  if (rec.notificationUrl !== urls.notificationUrl || rec.lifecycleNotificationUrl !== urls.lifecycleNotificationUrl) {
    return create('recreated', 'the app’s public URL changed');
  }
  if (rec.clientStateHash !== undefined && rec.clientStateHash !== stateHash) {
    return create('recreated', 'WARDEN_CLIENT_STATE was rotated');
  }
  if (options.recreate) return create('recreated', 'Graph removed it');

  const live = await d.directory.getSubscription(rec.id);
  if (!live) return create('recreated', 'Graph no longer has it');
  const left = Date.parse(live.expirationDateTime) - now.getTime();
  if (left > d.renewBeforeMs) return { action: 'unchanged', id: rec.id, expirationDateTime: live.expirationDateTime };

  const renewed = await d.directory.renewSubscription(rec.id, expiration());
  if (!renewed) return create('recreated', 'it was gone when renewed');
  await d.state.put(P_RBAC, K_SUBSCRIPTION, { ...rec, expirationDateTime: renewed.expirationDateTime, renewedAt: d.clock.now().toISOString() });
  d.log.info('Renewed the Graph subscription', { subscriptionId: rec.id, expirationDateTime: renewed.expirationDateTime });
  return { action: 'renewed', id: rec.id, expirationDateTime: renewed.expirationDateTime };
}
