/**
 * RBAC sync (SPEC §1 #1), wired from the composition root: the capability plus the use cases its
 * triggers call (Graph webhook and lifecycle notifications, Graph partner-topic events, the hourly
 * subscription keeper, the delta catch-up).
 *
 * @example
 * const rbac = createRbacModule({ ...core, state, alerter, enqueue });
 * capabilities.rbac = rbac.capability;
 * await rbac.receiveNotifications(await request.text(), logger);
 */
import type { Capability } from '../capability';
import { DAY_MS } from '../clock';
import type { CoreDeps } from '../deps';
import type { Logger } from '../logging';
import { createMlResources } from '../ports/azure/ml';
import { createDirectoryAdapter } from '../ports/azure/directory';
import { createResourceCatalog, createRoleAssignmentsAdapter } from '../ports/azure/roleAssignments';
import type { Alerter } from '../ports/alerts';
import type { StateStore } from '../ports/state';
import { registerSecret } from '../redact';
import { RbacEngine, type RbacPorts, type RbacTuning } from './capability';
import type { CatchUpResult } from './delta';
import { NestingMap } from './nesting';
import { MAX_MEMBER_PRINCIPALS } from './plan';
import {
  receiveGraphEvent,
  receiveLifecycle,
  receiveNotifications,
  type GraphEventReceipt,
  type LifecycleReceipt,
  type NotificationDeps,
  type EnqueueWork,
  type NotificationReceipt,
} from './notifications';
import { DEFAULT_RETRY_POLICY } from './retry';
import { ensureSubscription, type SubscriptionStatus } from './subscription';

export interface RbacModuleDeps extends CoreDeps {
  state: StateStore;
  alerter: Alerter;
  /** Queues work items on `warden-work`; `delayMs` keeps them invisible that long. */
  enqueue: EnqueueWork;
}

export const DEFAULT_RBAC_TUNING: RbacTuning = {
  snapshotTtlMs: 10 * 60_000,
  membersTtlMs: 10 * 60_000,
  groupTtlMs: 10 * 60_000,
  roleTtlMs: 60 * 60_000,
  nestingTtlMs: 60 * 60_000,
  nestingMemoryTtlMs: 30_000,
  offboardingTtlMs: 7 * DAY_MS,
  retry: DEFAULT_RETRY_POLICY,
  subscriptionLifetimeMinutes: 41_000,
  renewBeforeMs: 3 * DAY_MS,
  maxMemberPrincipals: MAX_MEMBER_PRINCIPALS,
};

export interface RbacModule {
  capability: Capability;
  /** Webhook body of `graphNotifications` (the handshake is answered before this is called). */
  receiveNotifications(body: string, log?: Logger): Promise<NotificationReceipt>;
  /** Webhook body of `graphLifecycle`. */
  receiveLifecycle(body: string, log?: Logger): Promise<LifecycleReceipt>;
  /** One event of `graphEvents` (Event Grid schema or CloudEvent, as the trigger hands it). */
  receiveGraphEvent(event: unknown, log?: Logger): Promise<GraphEventReceipt>;
  /** The hourly `graphSubscriptions` timer. */
  ensureSubscription(log?: Logger): Promise<SubscriptionStatus>;
  /** The Graph delta catch-up (also what the `delta` target runs). */
  catchUp(log?: Logger): Promise<CatchUpResult>;
}

export function createRbacModule(
  deps: RbacModuleDeps,
  ports: Partial<RbacPorts> & { tuning?: Partial<RbacTuning> } = {},
): RbacModule {
  registerSecret(deps.settings.clientState);
  const tuning: RbacTuning = { ...DEFAULT_RBAC_TUNING, ...(ports.tuning ?? {}) };
  const ml = ports.ml ?? createMlResources(deps.clients, { limiter: deps.limiter });
  const directory = ports.directory ?? createDirectoryAdapter(deps.clients, deps.limiter);
  const roleAssignments = ports.roleAssignments ?? createRoleAssignmentsAdapter(deps.clients, deps.limiter);
  const catalog = ports.catalog ?? createResourceCatalog(deps.clients, ml, deps.settings.endpoints.arm, deps.limiter);
  const nesting = new NestingMap({
    state: deps.state,
    directory,
    clock: deps.clock,
    ttlMs: tuning.nestingTtlMs,
    memoryTtlMs: tuning.nestingMemoryTtlMs,
    concurrency: deps.settings.concurrency,
  });
  const engine = new RbacEngine({ core: deps, state: deps.state, enqueue: deps.enqueue, ports: { ml, directory, roleAssignments, catalog }, tuning, nesting });
  const log = deps.logger.child({ capability: 'rbac' });

  const keep = (options: { recreate?: boolean }, l: Logger): Promise<SubscriptionStatus> =>
    ensureSubscription(
      {
        settings: deps.settings,
        directory,
        state: deps.state,
        clock: deps.clock,
        enqueue: deps.enqueue,
        lifetimeMinutes: tuning.subscriptionLifetimeMinutes,
        renewBeforeMs: tuning.renewBeforeMs,
        hasBindings: deps.policy.rbac.bindings.length > 0,
        log: l,
      },
      options,
    );

  const notificationDeps: NotificationDeps = {
    settings: deps.settings,
    bound: () => engine.boundGroups(),
    nesting,
    enqueue: deps.enqueue,
    directory,
    state: deps.state,
    ensureSubscription: keep,
  };

  return {
    capability: engine,
    receiveNotifications: (body, l = log) => receiveNotifications(body, notificationDeps, l),
    receiveLifecycle: (body, l = log) => receiveLifecycle(body, notificationDeps, l),
    receiveGraphEvent: (event, l = log) => receiveGraphEvent(event, notificationDeps, l),
    ensureSubscription: (l = log) => keep({}, l),
    catchUp: (l = log) => engine.catchUp(l),
  };
}

export { RbacEngine, type RbacPorts, type RbacTuning, type MemberSet } from './capability';
export { DELTA_TARGET, type CatchUpResult } from './delta';
export { NOTIFICATION_DELAY_MS, type EnqueueWork, type NotificationReceipt, type LifecycleReceipt, type GraphEventReceipt } from './notifications';
export type { SubscriptionStatus } from './subscription';
export { plan, desiredFor, planOffboarding, toChanges, assignmentName, markOf, markFor, MAX_MEMBER_PRINCIPALS, tooManyMembersFinding } from './plan';
