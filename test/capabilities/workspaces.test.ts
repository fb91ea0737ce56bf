/**
 * The workspace baseline end to end on the emulated ARM: a workspace created at 2 a.m. pushes its
 * ResourceWriteSuccess, the `resourceEvents` use case queues its posture check and its RBAC sync, and
 * the posture check reads the registry and datastores through the real SDK and alerts each problem
 * once, however often the sweep sees it again (the alerter's repeat window, state in Azurite).
 */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import type { Capability, CapabilityName, Finding } from '../../shared/capability';
import { DedupingAlerter, type AlertSink } from '../../shared/alerts';
import { createAzureClients, type AzureClients } from '../../shared/azure/clients';
import { ManualClock } from '../../shared/clock';
import { createLimiter } from '../../shared/concurrency';
import { handleResourceEvent } from '../../shared/events/resource';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type Policy, type PolicyInput } from '../../shared/policy';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { TableStateStore } from '../../shared/ports/state';
import { reconcile, type ReconcileReport } from '../../shared/reconcile';
import { loadSettings, type Settings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';
import { createWorkspacesModule } from '../../shared/workspaces';
import { startArm, startEventReceiver, type ArmHarness, type EventReceiver } from '../helpers/emulator';

const SUB = '8b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e';
const OUT_SUB = '7f7f7f7f-0000-4000-8000-000000000098';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-vision`;
const wsId = (name: string, rg = RG): string => `${rg}/providers/Microsoft.MachineLearningServices/workspaces/${name}`;
const ACR = `${RG}/providers/Microsoft.ContainerRegistry/registries/crvision`;
const OUT_WS = wsId('ws-other', `/subscriptions/${OUT_SUB}/resourceGroups/rg-other`);

const section = {
  subscriptions: [
    {
      id: SUB,
      resourceGroups: [{ name: 'rg-vision', location: 'westeurope', registries: [{ name: 'crvision', adminUserEnabled: true }], workspaces: [] }],
    },
    { id: OUT_SUB, resourceGroups: [{ name: 'rg-other', location: 'westeurope', workspaces: [{ name: 'ws-other', datastores: [{ name: 'keyed', credentialsType: 'AccountKey' as const }] }] }] },
  ],
};

let arm: ArmHarness;
let receiver: EventReceiver;
let settings: Settings;
let clients: AzureClients;

function stateTable(): TableStateStore {
  const conn = process.env.WARDEN_TEST_STORAGE;
  if (!conn) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return new TableStateStore(TableClient.fromConnectionString(conn, `wsstate${randomBytes(5).toString('hex')}`, { allowInsecureConnection: true }));
}

beforeAll(async () => {
  arm = await startArm({ section });
  receiver = await startEventReceiver();
  arm.events.subscribe({ name: 'warden-resources', topic: '*', endpoint: receiver.url('resourceEvents'), schema: 'CloudEventSchemaV1_0' });
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

function warden(policyInput: Partial<PolicyInput> = {}) {
  const policy: Policy = parsePolicy({ mode: 'enforce', scopes: [`/subscriptions/${SUB}`], ...policyInput }).policy;
  const sink = memorySink();
  const logger = createLogger(sink);
  const state = stateTable();
  const clock = new ManualClock('2026-03-01T02:00:00Z');
  const queue: WorkRequest[] = [];
  const enqueue = async (items: WorkRequest[]): Promise<void> => void queue.push(...items);
  const mod = createWorkspacesModule({ settings, policy, clients, clock, limiter: createLimiter(8), logger, state, enqueue });
  const alerts: Finding[] = [];
  const alertSink: AlertSink = { name: 'webhook', accepts: () => true, send: async (f) => void alerts.push(f) };
  const alerter = new DedupingAlerter({ sinks: [alertSink], repeatHours: policy.alerts.repeatHours, state, clock, logger });
  const audit = new MemoryAuditLog();
  const capabilities = { workspaces: mod.capability } as unknown as Record<CapabilityName, Capability>;
  let seen = receiver.received.length;

  async function pumpEvents(): Promise<void> {
    await arm.pusher.drain();
    const fresh = receiver.received.slice(seen);
    seen = receiver.received.length;
    for (const d of fresh) for (const ev of Array.isArray(d.body) ? d.body : [d.body]) await handleResourceEvent(ev, { policy, enqueue, logger });
  }
  /** Runs queued `workspaces` work; other capabilities' items (rbac) are returned for inspection. */
  async function runQueue(): Promise<{ reports: ReconcileReport[]; others: WorkRequest[] }> {
    const reports: ReconcileReport[] = [];
    const others: WorkRequest[] = [];
    for (const item of queue.splice(0)) {
      if (item.capability !== 'workspaces') {
        others.push(item);
        continue;
      }
      reports.push(await reconcile({ capability: 'workspaces', target: item.target, trigger: item.trigger }, { capabilities, audit, alerter, mode: policy.mode, logger, clock }));
    }
    return { reports, others };
  }
  async function sweep(): Promise<void> {
    for (const target of await mod.capability.listTargets()) {
      queue.push({ capability: 'workspaces', target, reason: 'sweep', trigger: { kind: 'schedule', id: 'sweep' } });
    }
    await runQueue();
  }
  return { policy, mod, queue, alerts, audit, clock, sink, logger, alerter, capabilities, pumpEvents, runQueue, sweep, enqueue };
}

describe('workspace baseline on the emulator', () => {
  it('queues RBAC sync and a posture check for a new workspace, and alerts each problem once, not once per sweep', async () => {
    const w = warden();
    arm.control.createWorkspace('rg-vision', {
      name: 'ws-night',
      tags: { team: 'vision' },
      containerRegistry: 'crvision',
      datastores: [
        { name: 'workspaceblobstore', credentialsType: 'AccountKey', isDefault: true },
        { name: 'partner_sas', credentialsType: 'Sas' },
        { name: 'identity_store', credentialsType: 'None' },
      ],
    });
    await w.pumpEvents();
    expect(w.queue.map((i) => [i.capability, i.target])).toEqual([
      ['workspaces', wsId('ws-night')],
      ['rbac', wsId('ws-night')],
    ]);
    const { reports, others } = await w.runQueue();
    expect(others.map((o) => [o.capability, o.target])).toEqual([['rbac', wsId('ws-night')]]);
    expect(reports[0]?.plan.changes).toEqual([]);
    const expected = [
      ['Warden.Workspaces.CredentialDatastore', `${wsId('ws-night')}/datastores/partner_sas`],
      ['Warden.Workspaces.CredentialDatastore', `${wsId('ws-night')}/datastores/workspaceblobstore`],
      ['Warden.Workspaces.RegistryAdminUserEnabled', ACR],
    ];
    expect(w.alerts.map((f) => [f.type, f.subject]).sort()).toEqual(expected);

    // Sweeps and duplicate events within the repeat window: the same findings, not sent again.
    await w.sweep();
    w.clock.advance(6 * 3600_000);
    await w.sweep();
    arm.control.emitWriteEvent(wsId('ws-night'), { count: 2 });
    await w.pumpEvents();
    await w.runQueue();
    expect(w.alerts).toHaveLength(3);
    // After the window, a problem still there is worth a reminder.
    w.clock.advance(24 * 3600_000);
    await w.sweep();
    expect(w.alerts).toHaveLength(6);
  });

  it('re-checks the posture when a datastore changes, and a fixed registry stops alerting', async () => {
    const w = warden();
    arm.control.createWorkspace('rg-vision', { name: 'ws-ds', containerRegistry: 'crvision' });
    await w.pumpEvents();
    await w.runQueue();
    expect(w.alerts.map((f) => f.type)).toEqual(['Warden.Workspaces.RegistryAdminUserEnabled']);

    arm.control.setRegistryAdminUser(ACR, false);
    arm.control.addDatastore(wsId('ws-ds'), { name: 'sp_store', datastoreType: 'AzureDataLakeGen2', credentialsType: 'ServicePrincipal' });
    arm.control.emitWriteEvent(`${wsId('ws-ds')}/datastores/sp_store`);
    await w.pumpEvents();
    expect(w.queue.map((i) => [i.capability, i.target])).toEqual([['workspaces', wsId('ws-ds')]]);
    const { reports } = await w.runQueue();
    expect(reports[0]?.plan.findings.map((f) => f.type)).toEqual(['Warden.Workspaces.CredentialDatastore']);
    expect(w.alerts.map((f) => f.subject)).toEqual([ACR, `${wsId('ws-ds')}/datastores/sp_store`]);
    arm.control.setRegistryAdminUser(ACR, true);
  });

  it('writes nothing to Azure, in either mode', async () => {
    arm.control.createWorkspace('rg-vision', { name: 'ws-modes', datastores: [{ name: 'keyed', credentialsType: 'AccountKey' }] });
    for (const mode of ['enforce', 'report'] as const) {
      const w = warden({ mode });
      const mark = arm.ctx.record.mark();
      await w.sweep();
      expect(arm.ctx.record.since(mark).filter((r) => r.method !== 'GET')).toEqual([]);
      expect(w.alerts.length).toBeGreaterThan(0);
    }
  });

  it('reads nothing for a forged event naming a workspace outside the scopes', async () => {
    const w = warden();
    const mark = arm.ctx.record.mark();
    const forged = {
      specversion: '1.0',
      id: 'forged-ws',
      source: `/subscriptions/${OUT_SUB}/resourceGroups/rg-other`,
      type: 'Microsoft.Resources.ResourceWriteSuccess',
      subject: OUT_WS,
      time: new Date().toISOString(),
      data: { resourceUri: OUT_WS, operationName: 'Microsoft.MachineLearningServices/workspaces/write' },
    };
    await expect(handleResourceEvent(forged, { policy: w.policy, enqueue: w.enqueue, logger: w.logger })).resolves.toMatchObject({ kind: 'ignored' });
    expect(w.queue).toEqual([]);
    const direct = await reconcile(
      { capability: 'workspaces', target: OUT_WS, trigger: { kind: 'http', caller: 'test' } },
      { capabilities: w.capabilities, audit: w.audit, alerter: w.alerter, mode: 'enforce', logger: w.logger, clock: w.clock },
    );
    expect(direct.inScope).toBe(false);
    expect(arm.ctx.record.since(mark)).toEqual([]);
    expect(w.alerts).toEqual([]);
  });

  it('does nothing for a deleted workspace but log it', async () => {
    const w = warden();
    arm.control.createWorkspace('rg-vision', { name: 'ws-gone' });
    await w.pumpEvents();
    w.queue.splice(0);
    arm.control.deleteWorkspace(wsId('ws-gone'));
    await w.pumpEvents();
    expect(w.queue).toEqual([]);
    expect(w.sink.text()).toContain('workspace deleted: nothing left to enforce');
    // A late write event for it (out of order) plans nothing: the reconcile finds it gone.
    arm.control.emitWriteEvent(wsId('ws-gone'));
    await w.pumpEvents();
    const { reports } = await w.runQueue();
    expect(reports[0]?.plan.skipped[0]?.reason).toContain('does not exist');
  });
});
