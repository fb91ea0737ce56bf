/**
 * A small world for RBAC use-case tests on in-memory ports: workspaces, role assignments, a
 * directory, a StateStore that counts its calls, and `reconcile()`/sweep helpers.
 */
import type { Capability, CapabilityName } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLimiter } from '../../shared/concurrency';
import { createAzureClients } from '../../shared/azure/clients';
import { MemoryMlResources } from '../../shared/compute/memoryMl';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { MemoryStateStore, type StateStore } from '../../shared/ports/state';
import { reconcile, type ReconcileReport } from '../../shared/reconcile';
import { createRbacModule, type RbacModule, type RbacTuning } from '../../shared/rbac';
import { MemoryDirectory, MemoryRoleAssignments, memoryCatalog } from '../../shared/rbac/memory';
import { loadSettings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';

export const SUB = '11111111-1111-4111-8111-111111111111';
export const rgId = (rg: string): string => `/subscriptions/${SUB}/resourceGroups/${rg}`;
export const wsId = (rg: string, name: string): string => `${rgId(rg)}/providers/Microsoft.MachineLearningServices/workspaces/${name}`;
export const guid = (prefix: string, i: number): string => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`;
export const DS = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
export const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';
export const CLIENT_STATE = 'unit-test-client-state-0123456789';

/** A StateStore that records every call (to prove that something read nothing). */
export class CountingState implements StateStore {
  readonly inner = new MemoryStateStore();
  readonly calls: string[] = [];
  get<T>(p: string, k: string) {
    this.calls.push(`get ${p}/${k}`);
    return this.inner.get<T>(p, k);
  }
  put<T>(p: string, k: string, v: T, o?: { etag?: string; create?: boolean }) {
    this.calls.push(`put ${p}/${k}`);
    return this.inner.put(p, k, v, o);
  }
  delete(p: string, k: string) {
    this.calls.push(`delete ${p}/${k}`);
    return this.inner.delete(p, k);
  }
  list<T>(p: string) {
    this.calls.push(`list ${p}`);
    return this.inner.list<T>(p);
  }
}

export const FAST: Partial<RbacTuning> = {
  retry: { principalNotFoundDelaysMs: [1, 1, 1, 1], throttleRetries: 3, throttleMaxWaitMs: 50, throttleDefaultWaitMs: 1 },
};

export interface World {
  ml: MemoryMlResources;
  ra: MemoryRoleAssignments;
  dir: MemoryDirectory;
  state: CountingState;
  clock: ManualClock;
  enqueued: WorkRequest[];
  audit: MemoryAuditLog;
  alerter: MemoryAlerter;
  sink: ReturnType<typeof memorySink>;
  module: RbacModule;
  capability: Capability;
  reconcile(target: string, opts?: { dryRun?: boolean }): Promise<ReconcileReport>;
  /** listTargets + a reconcile of each, as the sweep and the work queue would do. */
  sweep(): Promise<ReconcileReport[]>;
  /** Runs (and clears) every queued rbac work item, until none is left. */
  drain(): Promise<ReconcileReport[]>;
}

export function makeWorld(
  policy: PolicyInput,
  opts: { env?: Record<string, string>; tuning?: Partial<RbacTuning>; clock?: ManualClock; share?: Pick<World, 'dir' | 'state'> } = {},
): World {
  const clock = opts.clock ?? new ManualClock('2026-03-01T00:00:00Z');
  const settings = loadSettings({
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_PUBLIC_URL: 'https://warden.example.net',
    WARDEN_CLIENT_STATE: CLIENT_STATE,
    ...(opts.env ?? {}),
  });
  const parsed = parsePolicy(policy).policy;
  const ml = new MemoryMlResources();
  const ra = new MemoryRoleAssignments();
  const dir = opts.share?.dir ?? new MemoryDirectory(clock);
  const state = opts.share?.state ?? new CountingState();
  const enqueued: WorkRequest[] = [];
  const audit = new MemoryAuditLog();
  const alerter = new MemoryAlerter();
  const sink = memorySink();
  const logger = createLogger(sink);
  const module = createRbacModule(
    {
      settings,
      policy: parsed,
      clients: createAzureClients(settings),
      clock,
      limiter: createLimiter(4),
      logger,
      state,
      alerter,
      enqueue: async (items) => {
        enqueued.push(...items);
      },
    },
    { ml, directory: dir, roleAssignments: ra, catalog: memoryCatalog(ml), tuning: { ...FAST, ...(opts.tuning ?? {}) } },
  );
  const capabilities = { rbac: module.capability } as unknown as Record<CapabilityName, Capability>;
  const run = (target: string, o: { dryRun?: boolean } = {}): Promise<ReconcileReport> =>
    reconcile({ capability: 'rbac', target, trigger: { kind: 'http' }, ...(o.dryRun ? { dryRun: true } : {}) }, { capabilities, audit, alerter, mode: parsed.mode, logger, clock });
  return {
    ml,
    ra,
    dir,
    state,
    clock,
    enqueued,
    audit,
    alerter,
    sink,
    module,
    capability: module.capability,
    reconcile: run,
    async sweep() {
      const out: ReconcileReport[] = [];
      for (const t of await module.capability.listTargets()) out.push(await run(t));
      return out;
    },
    async drain() {
      const out: ReconcileReport[] = [];
      for (let i = 0; i < 20 && enqueued.length > 0; i++) {
        const items = enqueued.splice(0);
        const seen = new Set<string>();
        for (const item of items) {
          if (item.capability !== 'rbac' || seen.has(item.target)) continue;
          seen.add(item.target);
          out.push(await run(item.target));
        }
      }
      return out;
    },
  };
}

export function addWorkspace(w: World, rg: string, name: string, tags: Record<string, string> = {}): string {
  const id = wsId(rg, name);
  w.ml.addWorkspace({ id, name, subscriptionId: SUB, resourceGroup: rg, location: 'westeurope', tags });
  return id;
}

/** A notification collection as Graph posts it for a group change. */
/** `clientState: null` leaves it out. */
export function notification(groupId: string, clientState: string | null = CLIENT_STATE, members: Array<{ id: string; removed?: boolean }> = []): string {
  return JSON.stringify({
    value: [
      {
        id: `n-${groupId.slice(0, 8)}`,
        subscriptionId: '99999999-0000-4000-8000-000000000001',
        subscriptionExpirationDateTime: '2026-03-20T00:00:00+00:00',
        ...(clientState !== null ? { clientState } : {}),
        changeType: 'updated',
        resource: `Groups/${groupId}`,
        tenantId: '00000000-0000-4000-8000-0000000000aa',
        resourceData: {
          '@odata.type': '#Microsoft.Graph.Group',
          '@odata.id': `Groups/${groupId}`,
          id: groupId,
          organizationId: '00000000-0000-4000-8000-0000000000aa',
          'members@delta': members.map((m) => (m.removed ? { id: m.id, '@removed': 'deleted' } : { id: m.id })),
        },
      },
    ],
  });
}
