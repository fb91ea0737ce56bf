/**
 * The fault matrix, part 2: operations that fail, and events that arrive twice, late, out of order or
 * not at all. Events are hints: whatever arrives, the reconcile reads the truth, so the end state is
 * the clean run's and an event about something already settled causes reads, never a write.
 */
import { randomUUID } from 'node:crypto';
import { startAzurite, type Azurite } from '../helpers/azurite';
import {
  azureWrites,
  CLIENT_STATE,
  clusterId,
  DATA_SCIENTIST,
  deliveredAlerts,
  expectedAlerts,
  expectedGovernedState,
  governedState,
  IDS,
  launchApp,
  SECRET_NAME,
  successfulWrites,
  VAULT,
  waitFor,
  workspaceId,
  type ResilienceApp,
} from './helpers';

let azurite: Azurite;
let app: ResilienceApp | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);

afterEach(async () => {
  await app?.stop();
  app = undefined;
});

afterAll(async () => {
  await azurite?.stop();
});

async function postEvents(a: ResilienceApp, functionName: string, events: unknown[]): Promise<number> {
  const res = await fetch(`${a.url}/runtime/webhooks/eventgrid?functionName=${functionName}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
    body: JSON.stringify(events),
  });
  return res.status;
}

function groupNotification(groupId: string): Record<string, unknown> {
  return {
    value: [
      {
        id: randomUUID(),
        subscriptionId: randomUUID(),
        clientState: CLIENT_STATE,
        changeType: 'updated',
        resource: `Groups/${groupId}`,
        tenantId: IDS.tenant,
        resourceData: { '@odata.type': '#Microsoft.Graph.Group', '@odata.id': `Groups/${groupId}`, id: groupId },
      },
    ],
  };
}

async function postNotification(a: ResilienceApp, body: unknown): Promise<number> {
  const res = await fetch(`${a.url}/api/graph/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return res.status;
}

function newcomerAssignments(a: ResilienceApp): number {
  return a.emu.arm.roleAssignments({ scope: workspaceId(), principalId: IDS.newcomer, roleDefinitionId: DATA_SCIENTIST }).length;
}

describe('failed operations and unreliable events', () => {
  it('an Azure ML operation that fails (the cluster update LRO ends Failed): a retryable failure, re-read, the cluster keeps its identity', async () => {
    app = await launchApp({ azurite });
    app.emu.arm.failNextOperation({ resourceName: 'cluster-res', times: 1 });
    await app.sweep(60_000);
    // The emulator's failed update still stores the new model (identity included) with
    // provisioningState Failed, as ARM does; the retry reads that and has nothing left to do.
    const expected = expectedGovernedState();
    expected.computes = expected.computes.map((c) => c.replace('cluster-res | SystemAssigned | Succeeded', 'cluster-res | SystemAssigned | Failed'));
    expect(governedState(app.emu)).toEqual(expected);
    expect(deliveredAlerts(app.emu).eventGrid).toEqual(expectedAlerts());
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
    const logs = app.allLogs();
    expect(logs).toMatch(/Failed to: Assign the system-assigned managed identity to compute cluster 'cluster-res'/);
    expect(logs).toMatch(/capability=compute target=\S+cluster-res \S+ dequeueCount=1 error=\S+ReconcileIncomplete\S+ errorClass=transient|Reconcile failed \(transient\); the host retries it \(try 1 of 5\).*cluster-res/);
    // Retryable, so no "could not change" alert: the retry found the identity in place.
    expect(deliveredAlerts(app.emu).eventGrid.filter((a) => a.includes('ChangeFailed') || a.includes('Work.Failed'))).toEqual([]);
    expect(app.emu.record.count({ operation: 'arm.computes.put' })).toBe(1);
  }, 90_000);

  it('duplicate, late and out-of-order events about settled resources cause reads, never a write', async () => {
    app = await launchApp({ azurite });
    await app.sweep();
    expect(governedState(app.emu)).toEqual(expectedGovernedState());
    const settled = governedState(app.emu);
    const mark = app.emu.record.mark();
    const original = app.emu.events.published.find((e) => e.subject === clusterId() && e.eventType === 'Microsoft.Resources.ResourceWriteSuccess');
    expect(original).toBeDefined();

    // Event Grid delivers at least once: three copies of each write event.
    app.emu.arm.emitWriteEvent(workspaceId(), { count: 3 });
    app.emu.arm.emitWriteEvent(clusterId(), { count: 3, httpMethod: 'PUT' });
    // Out of order: a delete event for a compute that still exists, before another write event.
    app.emu.arm.emitDeleteEvent(clusterId());
    app.emu.arm.emitWriteEvent(clusterId());
    // Late: the cluster's first write event (from before Warden gave it an identity), again, as a CloudEvent too.
    expect(await postEvents(app, 'resourceEvents', [original, original])).toBe(202);
    const cloud = {
      specversion: '1.0',
      id: original?.id,
      type: original?.eventType,
      source: original?.topic,
      subject: original?.subject,
      time: original?.eventTime,
      data: original?.data,
    };
    expect(await postEvents(app, 'resourceEvents', [cloud])).toBe(202);
    // Key Vault: the rotated secret "near expiry", three times (it was just rotated).
    for (let i = 0; i < 3; i++) app.emu.keyvault.emitSecretEvent(VAULT, SECRET_NAME, 'SecretNearExpiry');
    // Graph: the same change notification about the bound group, three times.
    const note = groupNotification(IDS.team);
    for (let i = 0; i < 3; i++) expect(await postNotification(app, note)).toBe(202);
    await app.settle();

    expect(azureWrites(app.emu, mark)).toEqual([]);
    expect(governedState(app.emu)).toEqual(settled);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
    // Not dropped: every hint was reconciled against the truth.
    const reads = new Set(app.emu.record.since(mark).map((r) => r.operation));
    expect([...reads]).toEqual(expect.arrayContaining(['arm.workspaces.get', 'arm.computes.get', 'graph.groups.transitiveMembers']));
  }, 90_000);

  it('a new cluster announced by interim, duplicate and out-of-order events gets its identity exactly once', async () => {
    app = await launchApp({ azurite });
    await app.sweep();
    const mark = app.emu.record.mark();
    // Created in the portal: "Creating" first, "Succeeded" 1.5 s later, each event delivered twice.
    const created = app.emu.arm.createCompute(workspaceId(), { name: 'late-cluster', computeType: 'AmlCompute', provisioningState: 'Creating' }, { succeedAfterMs: 1500 });
    app.emu.arm.emitWriteEvent(created.id);
    const fixed = await waitFor('the new cluster’s identity', () => app?.emu.arm.getCompute(created.id)?.identity?.type === 'SystemAssigned', 30_000);
    expect(fixed).toBe(true);
    // A stale "Creating" event arrives after all that.
    const stale = app.emu.events.published.find((e) => e.subject === created.id);
    expect(await postEvents(app, 'resourceEvents', [stale, stale])).toBe(202);
    // (The 30 s re-check the "Creating" event asked for stays queued; it will find nothing to do.)
    await app.settle(30_000, { visibleOnly: true });
    expect(app.emu.record.since(mark, { operation: 'arm.computes.put' }).filter((r) => r.status < 300)).toHaveLength(1);
    expect(app.emu.arm.getCompute(created.id)?.properties.provisioningState).toBe('Succeeded');
    expect((await app.queueDepth()).poison).toBe(0);
  }, 90_000);

  it('lost Graph notifications: the next sweep’s delta catch-up grants the new member anyway', async () => {
    app = await launchApp({ azurite });
    expect((await app.host.invoke('graphSubscriptions')).ok).toBe(true);
    await app.sweep();
    expect(app.emu.graph.subscriptions()).toHaveLength(1);
    app.emu.graph.addUser({ id: IDS.newcomer, displayName: 'Newcomer', userPrincipalName: 'newcomer@contoso.example' });
    app.emu.graph.dropNextNotifications(10);
    app.emu.graph.addMember(IDS.team, IDS.newcomer);
    await app.settle();
    expect(app.emu.graph.lostNotifications().length).toBeGreaterThan(0);
    expect(newcomerAssignments(app)).toBe(0);
    await app.sweep();
    expect(newcomerAssignments(app)).toBe(1);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
  }, 90_000);

  it('a late Graph notification about a member who has left since changes nothing', async () => {
    app = await launchApp({ azurite });
    expect((await app.host.invoke('graphSubscriptions')).ok).toBe(true);
    await app.sweep();
    app.emu.graph.addUser({ id: IDS.newcomer, displayName: 'Newcomer', userPrincipalName: 'newcomer@contoso.example' });
    // The "member added" notification takes 20 s to arrive; meanwhile a sweep grants, the member
    // leaves, and a second sweep revokes.
    app.emu.graph.notificationDelayMs = 20_000;
    app.emu.graph.addMember(IDS.team, IDS.newcomer);
    app.emu.graph.notificationDelayMs = 0;
    const sweep = async (): Promise<void> => {
      const r = await app?.host.invoke('sweep');
      expect(r?.ok).toBe(true);
      await app?.settle(20_000, { visibleOnly: true, pushes: false });
    };
    await sweep();
    await waitFor('the newcomer’s assignment', () => newcomerAssignments(app as ResilienceApp) === 1, 20_000);
    app.emu.graph.removeMember(IDS.team, IDS.newcomer);
    await sweep();
    await waitFor('the newcomer’s assignment to go', () => newcomerAssignments(app as ResilienceApp) === 0, 20_000);
    const mark = app.emu.record.mark();
    const notified = (): number => (app?.allLogs().match(/Executing 'Functions\.graphNotifications'/g) ?? []).length;
    // Delivered so far: the validation handshake and the (prompt) "member removed" notification.
    const before = notified();
    // Now the late notification arrives (emu.idle waits for it), and everything settles.
    expect(app.emu.graph.subscriptions()).toHaveLength(1);
    await app.settle(40_000);
    // The late notification was acted on (a delta catch-up read Graph) and changed nothing.
    expect(notified()).toBe(before + 1);
    expect(app.emu.record.since(mark, { operation: 'graph.groups.delta' }).length).toBeGreaterThan(0);
    expect(newcomerAssignments(app)).toBe(0);
    expect(azureWrites(app.emu, mark)).toEqual([]);
    expect(successfulWrites(app.emu)).toMatchObject({ 'arm.roleAssignments.create': 3, 'arm.roleAssignments.delete': 1 });
  }, 90_000);
});
