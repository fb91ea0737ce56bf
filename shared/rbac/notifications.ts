/**
 * What Graph change notifications turn into. Events are hints: a notification only says "this group
 * changed"; the reconcile it queues reads the truth. So a forged, duplicate or late notification can
 * cost at most a needless read, never a wrong write — and one with a wrong clientState costs nothing.
 *
 * - Webhook (`graphNotifications`): every item's clientState is checked in constant time first; if
 *   none is valid nothing is read or queued (202, so Graph does not retry a forgery). Valid items about
 *   bound groups, or groups nested in them (per the stored nesting map), queue a reconcile of those
 *   bound groups plus one delta catch-up, delayed by {@link NOTIFICATION_DELAY_MS} so that a burst
 *   folds into a few queue messages; items about other groups cause no work. Then 202.
 * - Lifecycle (`graphLifecycle`): `reauthorizationRequired` reauthorizes (recreating the subscription
 *   when Graph no longer has it); `subscriptionRemoved` recreates it; `missed` catches up.
 * - Event Grid partner topic (`graphEvents`): the same, from CloudEvents.
 */
import type { Logger } from '../logging';
import type { Settings } from '../settings';
import { parseEventGridEvent } from '../events/eventgrid';
import {
  MAX_NOTIFICATION_BODY_BYTES,
  changeNotificationCollectionSchema,
  clientStateMatches,
  describeIssues,
  graphPartnerChangeDataSchema,
  graphPartnerLifecycleDataSchema,
  groupIdOf,
  lifecycleCollectionSchema,
} from '../events/graph';
import { InputError } from '../errors';
import type { Directory } from '../ports/directory';
import type { StateStore } from '../ports/state';
import type { Trigger } from '../capability';
import type { WorkRequest } from '../work/item';
import { DELTA_TARGET } from './delta';
import type { NestingMap } from './nesting';
import { currentSubscriptionId, type SubscriptionStatus } from './subscription';

/**
 * How long the work a notification queues stays invisible. The work pipeline does not queue a delayed
 * item for a target while one it queued is still invisible (that one has not started, so its reconcile
 * covers the change), so a burst of notifications for one group costs about two queue messages per
 * delay instead of two per notification, and the webhook answers without waiting on a busy queue.
 */
export const NOTIFICATION_DELAY_MS = 1000;

/** Queues work items on `warden-work`; `delayMs` keeps them invisible that long. */
export type EnqueueWork = (items: WorkRequest[], options?: { delayMs?: number }) => Promise<void>;

export interface NotificationDeps {
  settings: Pick<Settings, 'clientState'>;
  /** Bound group ids, lower case. */
  bound: () => readonly string[];
  nesting: NestingMap;
  enqueue: EnqueueWork;
  directory: Directory;
  state: StateStore;
  ensureSubscription: (options: { recreate?: boolean }, log: Logger) => Promise<SubscriptionStatus>;
}

export interface NotificationReceipt {
  /** 202 accepted (also for rejected clientStates), 400 malformed, 413 too large. */
  status: 202 | 400 | 413;
  accepted: number;
  rejected: number;
  /** Bound groups queued for a reconcile (plus the catch-up when any). */
  enqueued: string[];
  error?: { code: string; message: string };
}

function parseJson(body: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Work for changed groups: their bound holders, plus one catch-up. Unrelated groups → nothing. */
async function workFor(changes: ReadonlyArray<{ groupId: string; trigger: Trigger }>, d: NotificationDeps): Promise<WorkRequest[]> {
  if (changes.length === 0) return [];
  const bound = new Set(d.bound());
  if (bound.size === 0) return [];
  const index = await d.nesting.index([...bound]);
  const targets = new Map<string, { trigger: Trigger; because: string }>();
  for (const c of changes) {
    const holders = [...(bound.has(c.groupId) ? [c.groupId] : []), ...(index.get(c.groupId) ?? [])];
    for (const h of holders) if (!targets.has(h)) targets.set(h, { trigger: c.trigger, because: c.groupId });
  }
  if (targets.size === 0) return [];
  const items: WorkRequest[] = [...targets].map(([target, t]) => ({
    capability: 'rbac',
    target,
    reason: t.because === target ? `Group ${target} changed (Graph notification)` : `Group ${t.because}, nested in ${target}, changed (Graph notification)`,
    trigger: t.trigger,
  }));
  const first = targets.values().next().value;
  items.push({ capability: 'rbac', target: DELTA_TARGET, reason: 'Catch up group changes after a Graph notification', trigger: first?.trigger ?? { kind: 'notification' } });
  return items;
}

export async function receiveNotifications(body: string, d: NotificationDeps, log: Logger): Promise<NotificationReceipt> {
  const receipt: NotificationReceipt = { status: 202, accepted: 0, rejected: 0, enqueued: [] };
  if (Buffer.byteLength(body, 'utf8') > MAX_NOTIFICATION_BODY_BYTES) {
    return { ...receipt, status: 413, error: { code: 'PayloadTooLarge', message: `A notification body may be at most ${MAX_NOTIFICATION_BODY_BYTES} bytes.` } };
  }
  const json = parseJson(body);
  if (!json.ok) return { ...receipt, status: 400, error: { code: 'InvalidNotification', message: 'The body is not JSON.' } };
  const parsed = changeNotificationCollectionSchema.safeParse(json.value);
  if (!parsed.success) {
    return { ...receipt, status: 400, error: { code: 'InvalidNotification', message: `Not a change notification collection: ${describeIssues(parsed.error)}` } };
  }
  const valid = parsed.data.value.filter((n) => clientStateMatches(d.settings.clientState, n.clientState));
  receipt.accepted = valid.length;
  receipt.rejected = parsed.data.value.length - valid.length;
  if (receipt.rejected > 0) {
    log.warn(`Ignored ${receipt.rejected} Graph notification(s) with a wrong or missing clientState`, {
      subscriptionIds: [...new Set(parsed.data.value.filter((n) => !valid.includes(n)).map((n) => n.subscriptionId))].slice(0, 10),
    });
  }
  if (valid.length === 0) return receipt;

  const changes = valid.flatMap((n) => {
    const groupId = groupIdOf(n);
    return groupId ? [{ groupId, trigger: { kind: 'notification' as const, id: (n.id ?? n.subscriptionId).slice(0, 512) } }] : [];
  });
  const items = await workFor(changes, d);
  if (items.length === 0) {
    log.info(`Graph notification(s) about ${changes.length} group(s) none of which is bound or nested in a bound group; nothing to do`);
    return receipt;
  }
  await d.enqueue(items, { delayMs: NOTIFICATION_DELAY_MS });
  receipt.enqueued = items.filter((i) => i.target !== DELTA_TARGET).map((i) => i.target);
  log.info(`Queued reconciles of ${receipt.enqueued.length} bound group(s) and a delta catch-up`, { groups: receipt.enqueued });
  return receipt;
}

export interface LifecycleReceipt {
  status: 202 | 400 | 413;
  handled: Array<{ subscriptionId: string; event: string; action: string }>;
  rejected: number;
  error?: { code: string; message: string };
}

async function handleLifecycleEvent(
  subscriptionId: string,
  event: string,
  d: NotificationDeps,
  log: Logger,
  options: { manageSubscription: boolean },
): Promise<string> {
  const kind = event.toLowerCase();
  const current = options.manageSubscription ? await currentSubscriptionId(d.state) : undefined;
  const ours = current !== undefined && current.toLowerCase() === subscriptionId.toLowerCase();
  const catchUpItem: WorkRequest = {
    capability: 'rbac',
    target: DELTA_TARGET,
    reason: `Graph lifecycle event ${event}: catch up what may have been missed`,
    trigger: { kind: 'notification', id: `lifecycle:${subscriptionId}`.slice(0, 512) },
  };
  if (kind === 'reauthorizationrequired') {
    if (await d.directory.reauthorizeSubscription(subscriptionId)) {
      log.info('Reauthorized the Graph subscription', { subscriptionId });
      return 'reauthorized';
    }
    if (ours) {
      await d.ensureSubscription({ recreate: true }, log);
      return 'recreated';
    }
    log.warn('A subscription asked for reauthorization but Graph no longer has it', { subscriptionId });
    return 'gone';
  }
  if (kind === 'subscriptionremoved') {
    if (ours) {
      await d.ensureSubscription({ recreate: true }, log);
      return 'recreated';
    }
    if (d.bound().length > 0) await d.enqueue([catchUpItem]);
    log.warn('Graph removed a subscription Warden does not manage; caught up only', { subscriptionId });
    return 'caughtUp';
  }
  if (kind === 'missed') {
    if (d.bound().length > 0) await d.enqueue([catchUpItem]);
    return 'caughtUp';
  }
  log.info('Ignored an unknown Graph lifecycle event', { subscriptionId, event });
  return 'ignored';
}

export async function receiveLifecycle(body: string, d: NotificationDeps, log: Logger): Promise<LifecycleReceipt> {
  const receipt: LifecycleReceipt = { status: 202, handled: [], rejected: 0 };
  if (Buffer.byteLength(body, 'utf8') > MAX_NOTIFICATION_BODY_BYTES) {
    return { ...receipt, status: 413, error: { code: 'PayloadTooLarge', message: `A notification body may be at most ${MAX_NOTIFICATION_BODY_BYTES} bytes.` } };
  }
  const json = parseJson(body);
  if (!json.ok) return { ...receipt, status: 400, error: { code: 'InvalidNotification', message: 'The body is not JSON.' } };
  const parsed = lifecycleCollectionSchema.safeParse(json.value);
  if (!parsed.success) {
    return { ...receipt, status: 400, error: { code: 'InvalidNotification', message: `Not a lifecycle notification collection: ${describeIssues(parsed.error)}` } };
  }
  for (const n of parsed.data.value) {
    if (!clientStateMatches(d.settings.clientState, n.clientState)) {
      receipt.rejected++;
      continue;
    }
    const action = await handleLifecycleEvent(n.subscriptionId, n.lifecycleEvent, d, log, { manageSubscription: true });
    receipt.handled.push({ subscriptionId: n.subscriptionId, event: n.lifecycleEvent, action });
  }
  if (receipt.rejected > 0) log.warn(`Ignored ${receipt.rejected} lifecycle notification(s) with a wrong or missing clientState`);
  return receipt;
}

export interface GraphEventReceipt {
  action: 'queued' | 'ignored' | 'rejected' | 'lifecycle';
  enqueued: string[];
  detail?: string;
}

const CHANGE_TYPES = new Set(['microsoft.graph.groupupdated', 'microsoft.graph.groupcreated', 'microsoft.graph.groupdeleted']);
const LIFECYCLE_TYPES: Record<string, string> = {
  'microsoft.graph.subscriptionreauthorizationrequired': 'reauthorizationRequired',
  'microsoft.graph.subscriptionremoved': 'subscriptionRemoved',
  'microsoft.graph.subscriptionmissed': 'missed',
};

/**
 * One Graph event from an Event Grid partner topic. The clientState is checked when Warden has one
 * configured (a partner-topic-only deployment may not). Subscriptions behind partner topics are
 * managed by the deployment, so their removal is only caught up, never recreated here.
 */
export async function receiveGraphEvent(input: unknown, d: NotificationDeps, log: Logger): Promise<GraphEventReceipt> {
  const e = parseEventGridEvent(input);
  const type = e.type.toLowerCase();
  const check = (clientState: string | null | undefined): boolean => d.settings.clientState === undefined || clientStateMatches(d.settings.clientState, clientState);

  if (CHANGE_TYPES.has(type)) {
    const data = graphPartnerChangeDataSchema.safeParse(e.data);
    if (!data.success) throw new InputError('InvalidEvent', `Not a Graph change event: ${describeIssues(data.error)}`);
    if (!check(data.data.clientState)) {
      log.warn('Ignored a Graph event with a wrong or missing clientState', { eventId: e.id });
      return { action: 'rejected', enqueued: [] };
    }
    const groupId = groupIdOf({ resource: data.data.resource || e.subject, resourceData: data.data.resourceData ?? null });
    const items = groupId ? await workFor([{ groupId, trigger: { kind: 'event', id: e.id.slice(0, 512) } }], d) : [];
    if (items.length === 0) return { action: 'ignored', enqueued: [], detail: 'not about a bound or nested group' };
    await d.enqueue(items, { delayMs: NOTIFICATION_DELAY_MS });
    const enqueued = items.filter((i) => i.target !== DELTA_TARGET).map((i) => i.target);
    log.info(`Queued reconciles of ${enqueued.length} bound group(s) and a delta catch-up`, { groups: enqueued, eventId: e.id });
    return { action: 'queued', enqueued };
  }
  const lifecycle = LIFECYCLE_TYPES[type];
  if (lifecycle) {
    const data = graphPartnerLifecycleDataSchema.safeParse(e.data);
    if (!data.success) throw new InputError('InvalidEvent', `Not a Graph lifecycle event: ${describeIssues(data.error)}`);
    if (!check(data.data.clientState)) {
      log.warn('Ignored a Graph lifecycle event with a wrong or missing clientState', { eventId: e.id });
      return { action: 'rejected', enqueued: [] };
    }
    const action = await handleLifecycleEvent(data.data.subscriptionId, lifecycle, d, log, { manageSubscription: false });
    return { action: 'lifecycle', enqueued: [], detail: action };
  }
  log.debug('Ignored a Graph event of a type RBAC sync does not use', { type: e.type, eventId: e.id });
  return { action: 'ignored', enqueued: [], detail: `type ${e.type}` };
}
