/**
 * The compute capability end to end on the emulated ARM: computes created "in the portal" push their
 * ResourceWriteSuccess events (Event Grid schema, as Azure delivers them to a Functions Event Grid
 * trigger), the `resourceEvents` use case maps them to work items, and each item is reconciled through
 * `reconcile()` with the real ML adapter and SDK. Asserts the emulator's end state and its request record.
 */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import type { Capability, CapabilityName, Finding } from '../../shared/capability';
import { DedupingAlerter } from '../../shared/alerts';
import type { AlertSink } from '../../shared/alerts';
import { createAzureClients, type AzureClients } from '../../shared/azure/clients';
import { systemClock } from '../../shared/clock';
import { createComputeModule } from '../../shared/compute';
import { createLimiter } from '../../shared/concurrency';
import { handleResourceEvent } from '../../shared/events/resource';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type Policy, type PolicyInput } from '../../shared/policy';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { TableStateStore } from '../../shared/ports/state';
import { reconcile, type ReconcileReport } from '../../shared/reconcile';
import { loadSettings, type Settings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';
import { startArm, startEventReceiver, type ArmHarness, type EventReceiver } from '../helpers/emulator';

const SUB = '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const OUT_SUB = '7f7f7f7f-0000-4000-8000-000000000099';
const WS = `/subscriptions/${SUB}/resourceGroups/rg-vision/providers/Microsoft.MachineLearningServices/workspaces/ws-vision`;
const OUT_WS = `/subscriptions/${OUT_SUB}/resourceGroups/rg-other/providers/Microsoft.MachineLearningServices/workspaces/ws-other`;
const UAI = `/subscriptions/${SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-compute`;
const USER = 'c3c3c3c3-0000-4000-8000-000000000001';

const section = {
  subscriptions: [
    { id: SUB, resourceGroups: [{ name: 'rg-vision', location: 'westeurope', workspaces: [{ name: 'ws-vision', tags: { team: 'vision' } }] }] },
    { id: OUT_SUB, resourceGroups: [{ name: 'rg-other', location: 'westeurope', workspaces: [{ name: 'ws-other', computes: [{ name: 'cc-other', computeType: 'AmlCompute' }] }] }] },
  ],
};

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

let arm: ArmHarness;
let receiver: EventReceiver;
let settings: Settings;
let clients: AzureClients;

beforeAll(async () => {
  arm = await startArm({ section, principals: { lookup: () => ({ type: 'User' }) } });
  receiver = await startEventReceiver();
  arm.events.subscribe({ name: 'warden-resources', topic: '*', endpoint: receiver.url('resourceEvents'), schema: 'EventGridSchema' });
  settings = loadSettings({
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: arm.url,
    WARDEN_GRAPH_ENDPOINT: arm.url,
    WARDEN_POLICY: JSON.stringify({ scopes: [`/subscriptions/${SUB}`] }),
  });
  clients = createAzureClients(settings, { retry: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 }, lroPollMs: 10 });
});
afterAll(async () => {
  await arm.close();
  await receiver.close();
});
beforeEach(() => {
  arm.control.lroPolls = 1;
  arm.ctx.faults.clear();
});

/** Warden's side for one policy: the compute module, an in-memory work queue, audit and a de-duplicating alerter. */
function warden(policyInput: Partial<PolicyInput> = {}) {
  const policy: Policy = parsePolicy({ mode: 'enforce', scopes: [`/subscriptions/${SUB}`], ...policyInput }).policy;
  const sink = memorySink();
  const logger = createLogger(sink);
  // Follow-up counters and alert marks live in Azurite, as in production.
  const state = new TableStateStore(TableClient.fromConnectionString(storage(), `cmpstate${randomBytes(5).toString('hex')}`, { allowInsecureConnection: true }));
  const queue: Array<{ item: WorkRequest; delayMs: number | undefined }> = [];
  const enqueue = async (items: WorkRequest[], options?: { delayMs?: number }): Promise<void> => {
    for (const item of items) queue.push({ item, delayMs: options?.delayMs });
  };
  const mod = createComputeModule({ settings, policy, clients, clock: systemClock, limiter: createLimiter(8), logger, state, enqueue });
  const alerts: Finding[] = [];
  const alertSink: AlertSink = { name: 'webhook', accepts: () => true, send: async (f) => void alerts.push(f) };
  const alerter = new DedupingAlerter({ sinks: [alertSink], repeatHours: 24, state, clock: systemClock, logger });
  const audit = new MemoryAuditLog();
  const capabilities = { compute: mod.capability } as unknown as Record<CapabilityName, Capability>;
  let seen = receiver.received.length;

  /** Delivers the events pushed so far to the `resourceEvents` use case. */
  async function pumpEvents(): Promise<void> {
    await arm.pusher.drain();
    const fresh = receiver.received.slice(seen);
    seen = receiver.received.length;
    for (const d of fresh) {
      for (const ev of Array.isArray(d.body) ? d.body : [d.body]) await handleResourceEvent(ev, { policy, enqueue, logger });
    }
  }
  /** Runs the work queued so far, not what it queues (delays are not waited for: the test moves the world on instead). */
  async function runQueue(): Promise<ReconcileReport[]> {
    const reports: ReconcileReport[] = [];
    for (const { item } of queue.splice(0)) {
      reports.push(await reconcile({ capability: item.capability, target: item.target, trigger: item.trigger }, { capabilities, audit, alerter, mode: policy.mode, logger, clock: systemClock }));
    }
    return reports;
  }
  return { policy, mod, queue, alerts, audit, sink, pumpEvents, runQueue, enqueue, logger, capabilities, alerter };
}

const cid = (name: string, ws = WS): string => `${ws}/computes/${name}`;

/** The stored compute without what an identity update legitimately changes. */
function settingsOf(id: string): unknown {
  const c = arm.control.getCompute(id);
  if (!c) throw new Error(`no compute ${id}`);
  const { identity: _i, properties, ...rest } = c;
  const { modifiedOn: _m, provisioningState: _p, ...props } = properties;
  return { ...rest, properties: props };
}

describe('compute identity on the emulator', () => {
  it('gives a cluster created without identity the configured identity after its event, changing nothing else', async () => {
    const w = warden({ compute: { identity: { type: 'UserAssigned', id: UAI } } });
    arm.control.createCompute(WS, {
      name: 'cc-new',
      computeType: 'AmlCompute',
      vmSize: 'STANDARD_NC6',
      description: 'GPU training',
      tags: { team: 'vision' },
      disableLocalAuth: true,
      scaleSettings: { maxNodeCount: 6, minNodeCount: 1, nodeIdleTimeBeforeScaleDown: 'PT900S' },
      remoteLoginPortPublicAccess: 'Disabled',
      properties: { vmPriority: 'LowPriority', propertyBag: { owner: 'vision' }, enableNodePublicIp: false },
    });
    const before = settingsOf(cid('cc-new'));
    await w.pumpEvents();
    expect(w.queue.map((q) => [q.item.capability, q.item.target])).toEqual([['compute', cid('cc-new')]]);
    const mark = arm.ctx.record.mark();
    const [report] = await w.runQueue();
    expect(report?.outcomes.map((o) => [o.change.action, o.outcome])).toEqual([['assignIdentity', 'applied']]);

    const after = arm.control.getCompute(cid('cc-new'));
    expect(after?.identity?.type).toBe('UserAssigned');
    expect(Object.keys(after?.identity?.userAssignedIdentities ?? {})).toEqual([UAI]);
    expect(settingsOf(cid('cc-new'))).toEqual(before);
    // GET (the plan, whose JSON the PUT reuses), PUT, then the operation's status polls and its final GET.
    const ops = arm.ctx.record.since(mark, { service: 'arm' }).map((r) => r.operation);
    expect(ops.filter((o) => o !== 'arm.operations.get')).toEqual(['arm.computes.get', 'arm.computes.put', 'arm.computes.get']);
    expect(w.alerts.map((f) => [f.type, f.subject])).toEqual([['Warden.Compute.IdentityMissing', cid('cc-new')]]);

    // Warden's own write comes back as an event: recognised by its request id, it queues nothing.
    await w.pumpEvents();
    expect(w.queue).toEqual([]);
    expect(w.sink.text()).toContain("Ignored resource event: Warden's own write");
    // Writes by anyone else (an operator's update, duplicates as Event Grid delivers them) are reconciled: they plan nothing.
    arm.control.emitWriteEvent(cid('cc-new'), { count: 2, httpMethod: 'PUT' });
    arm.control.emitWriteEvent(cid('cc-new'));
    await w.pumpEvents();
    const writesBefore = arm.ctx.record.writes({ service: 'arm' }).length;
    const again = await w.runQueue();
    expect(again).toHaveLength(3);
    for (const r of again) expect(r.plan.changes).toEqual([]);
    expect(arm.ctx.record.writes({ service: 'arm' }).length).toBe(writesBefore);
    expect(w.alerts).toHaveLength(1);
  });

  it('stops a compute instance without identity (its identity cannot be changed)', async () => {
    const w = warden({ compute: { onViolation: { cluster: 'assign-identity', instance: 'stop' } } });
    arm.control.createCompute(WS, { name: 'ci-ada', computeType: 'ComputeInstance', assignedUser: USER, state: 'Running' });
    await w.pumpEvents();
    const [report] = await w.runQueue();
    expect(report?.outcomes.map((o) => [o.change.action, o.outcome])).toEqual([['stopCompute', 'applied']]);
    const ci = arm.control.getCompute(cid('ci-ada'));
    expect(ci?.properties.properties.state).toBe('Stopped');
    expect(ci?.identity).toBeUndefined();
    // Next sweep: still no identity, but stopped: reported again (the alerter suppresses it), nothing written.
    await w.enqueue([{ capability: 'compute', target: cid('ci-ada'), reason: 'sweep', trigger: { kind: 'schedule', id: 'sweep' } }]);
    const [sweep] = await w.runQueue();
    expect(sweep?.plan.changes).toEqual([]);
    expect(sweep?.alerts.map((a) => a.outcome)).toEqual(['suppressed']);
  });

  it('only alerts an exempt compute', async () => {
    const w = warden();
    arm.control.createCompute(WS, { name: 'cc-exempt', computeType: 'AmlCompute', tags: { 'warden-exempt': 'true' } });
    await w.pumpEvents();
    const mark = arm.ctx.record.mark();
    const [report] = await w.runQueue();
    expect(report?.plan.changes).toEqual([]);
    expect(arm.ctx.record.since(mark).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(arm.control.getCompute(cid('cc-exempt'))?.identity).toBeUndefined();
    expect(w.alerts).toEqual([expect.objectContaining({ type: 'Warden.Compute.IdentityMissing', severity: 'info', details: expect.objectContaining({ exempt: true }) })]);
    expect(w.audit.records.some((r) => r.action === 'leaveAlone' && r.summary.includes('warden-exempt'))).toBe(true);
  });

  it('writes nothing in report mode, and still audits and alerts', async () => {
    const w = warden({ mode: 'report', compute: { requireLocalAuthDisabled: true, onViolation: { cluster: 'delete', instance: 'delete' } } });
    arm.control.createCompute(WS, { name: 'cc-report', computeType: 'AmlCompute', disableLocalAuth: false });
    arm.control.createCompute(WS, { name: 'ci-report', computeType: 'ComputeInstance', assignedUser: USER });
    await w.pumpEvents();
    const mark = arm.ctx.record.mark();
    const reports = await w.runQueue();
    expect(reports.flatMap((r) => r.outcomes.map((o) => [o.change.action, o.outcome]))).toEqual([
      ['deleteCompute', 'planned'],
      ['deleteCompute', 'planned'],
    ]);
    expect(arm.ctx.record.since(mark).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(arm.control.getCompute(cid('cc-report'))).toBeDefined();
    // The instance was created with local auth on too (the default).
    expect(w.alerts.map((a) => [a.type, a.subject]).sort()).toEqual([
      ['Warden.Compute.IdentityMissing', cid('cc-report')],
      ['Warden.Compute.IdentityMissing', cid('ci-report')],
      ['Warden.Compute.LocalAuthEnabled', cid('cc-report')],
      ['Warden.Compute.LocalAuthEnabled', cid('ci-report')],
    ]);
    expect(w.audit.records.filter((r) => r.outcome === 'planned')).toHaveLength(2);
  });

  it('judges a cluster only once it is built: a re-check follows the interim event', async () => {
    const w = warden();
    arm.control.createCompute(WS, { name: 'cc-slow', computeType: 'AmlCompute', provisioningState: 'Creating' });
    await w.pumpEvents();
    const mark = arm.ctx.record.mark();
    const [first] = await w.runQueue();
    expect(first?.plan.changes).toEqual([]);
    expect(first?.plan.skipped[0]?.reason).toContain('still creating');
    expect(arm.ctx.record.since(mark).map((r) => r.operation)).toEqual(['arm.computes.get']);
    expect(w.queue).toEqual([
      { item: expect.objectContaining({ capability: 'compute', target: cid('cc-slow'), trigger: { kind: 'followup', id: 'recheck-1' } }), delayMs: 30_000 },
    ]);
    // Still creating when the re-check comes: another, later re-check.
    await w.runQueue();
    expect(w.queue.map((q) => q.delayMs)).toEqual([60_000]);
    // Built: the next re-check fixes it (and the "Succeeded" event's reconcile finds nothing left to do).
    arm.control.setComputeState(cid('cc-slow'), { provisioningState: 'Succeeded' });
    await w.pumpEvents();
    const reports = await w.runQueue();
    expect(reports.flatMap((r) => r.outcomes.map((o) => o.change.action))).toEqual(['assignIdentity']);
    expect(arm.control.getCompute(cid('cc-slow'))?.identity?.type).toBe('SystemAssigned');
  });

  it('reads and writes nothing for a forged event naming a compute outside the scopes', async () => {
    const w = warden();
    const forged = {
      id: 'forged-1',
      topic: `/subscriptions/${OUT_SUB}/resourceGroups/rg-other`,
      subject: cid('cc-other', OUT_WS),
      eventType: 'Microsoft.Resources.ResourceWriteSuccess',
      eventTime: new Date().toISOString(),
      data: { resourceUri: cid('cc-other', OUT_WS), operationName: 'Microsoft.MachineLearningServices/workspaces/computes/write', status: 'Succeeded' },
      dataVersion: '2',
      metadataVersion: '1',
    };
    const mark = arm.ctx.record.mark();
    const mapping = await handleResourceEvent(forged, { policy: w.policy, enqueue: w.enqueue, logger: w.logger });
    expect(mapping).toMatchObject({ kind: 'ignored', reason: 'outside the policy scopes' });
    expect(w.queue).toEqual([]);
    // Even asked directly (HTTP remediate), the reconcile never touches it.
    const direct = await reconcile(
      { capability: 'compute', target: cid('cc-other', OUT_WS), trigger: { kind: 'http', caller: 'test' } },
      { capabilities: w.capabilities, audit: w.audit, alerter: w.alerter, mode: 'enforce', logger: w.logger, clock: systemClock },
    );
    expect(direct.inScope).toBe(false);
    expect(arm.ctx.record.since(mark).filter((r) => r.path.toLowerCase().includes(OUT_SUB))).toEqual([]);
    expect(arm.control.getCompute(cid('cc-other', OUT_WS))?.identity).toBeUndefined();
    expect(w.sink.text()).toContain('Ignored resource event: outside the policy scopes');
  });

  it('fixes one new cluster from its event with 3 calls plus the operation’s status polls, its own write’s event included', async () => {
    const w = warden();
    arm.control.createCompute(WS, { name: 'cc-one', computeType: 'AmlCompute', vmSize: 'STANDARD_DS3_V2', properties: { futureSetting: { mode: 'strict' } } });
    const before = settingsOf(cid('cc-one'));
    const counts = arm.ctx.record.countByOperation({ service: 'arm' });
    await w.pumpEvents();
    const reports = await w.runQueue();
    // The event of Warden's own PUT arrives and is recognised; nothing else is queued.
    await w.pumpEvents();
    reports.push(...(await w.runQueue()));
    const after = arm.ctx.record.countByOperation({ service: 'arm' });
    const calls = Object.fromEntries(Object.entries(after).flatMap(([op, n]) => (n > (counts[op] ?? 0) ? [[op, n - (counts[op] ?? 0)]] : [])));
    expect(w.sink.text()).toContain("Ignored resource event: Warden's own write");
    const { 'arm.operations.get': polls, ...rest } = calls;
    expect(rest).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    expect(polls).toBeGreaterThan(0);
    expect(reports.map((r) => r.outcomes.map((o) => [o.change.action, o.outcome]))).toEqual([[['assignIdentity', 'applied']]]);
    expect(arm.control.getCompute(cid('cc-one'))?.identity?.type).toBe('SystemAssigned');
    expect(settingsOf(cid('cc-one'))).toEqual(before);
  });

  it('fixes 30 new clusters from their events with 3 calls each plus the operation polls', async () => {
    const w = warden();
    const names = Array.from({ length: 30 }, (_, i) => `cc-bulk-${String(i).padStart(2, '0')}`);
    for (const name of names) arm.control.createCompute(WS, { name, computeType: 'AmlCompute' });
    await w.pumpEvents();
    expect(w.queue).toHaveLength(30);
    const mark = arm.ctx.record.mark();
    const reports = await w.runQueue();
    expect(reports.every((r) => r.outcomes.length === 1 && r.outcomes[0]?.outcome === 'applied')).toBe(true);
    for (const name of names) expect(arm.control.getCompute(cid(name))?.identity?.type).toBe('SystemAssigned');
    // The events of Warden's own PUTs queue no second reconcile.
    await w.pumpEvents();
    expect(w.queue).toEqual([]);
    const byOp = arm.ctx.record.countByOperation({ service: 'arm' });
    const since = arm.ctx.record.since(mark, { service: 'arm' });
    const perCompute = since.filter((r) => r.operation === 'arm.computes.put' || r.operation === 'arm.computes.get').length / names.length;
    // GET (the plan), PUT of that GET's JSON, and the poller's final GET of the PUT URL.
    expect(perCompute).toBe(3);
    expect(since.filter((r) => r.operation === 'arm.computes.put')).toHaveLength(30);
    expect(byOp['arm.computes.patch'] ?? 0).toBe(0);
  });
});
