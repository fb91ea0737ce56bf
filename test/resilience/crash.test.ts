/**
 * The fault matrix, part 3: the process and the storage under Warden fail. A host runner killed
 * (SIGKILL, no drain) in the middle of reconciles and another started; Azurite restarted while work
 * is in flight; two host runners (separate processes, separate runtimes) working the same queue at
 * once. Every run ends in the clean run's Azure state, each change written once, nothing lost.
 */
import { startAzurite, type Azurite } from '../helpers/azurite';
import {
  appliedChangeSet,
  expectedAppliedChanges,
  deliveredAlerts,
  expectedAlerts,
  expectedGovernedState,
  governedState,
  IDS,
  CLIENT_STATE,
  launchApp,
  spawnHost,
  successfulWrites,
  waitFor,
  workspaceId,
  clusterId,
  type ChildHost,
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

const ONE_WRITE_EACH = {
  'arm.computes.put': 1,
  'arm.roleAssignments.create': 2,
  'graph.applications.addPassword': 1,
  'keyvault.secrets.set': 1,
};

async function expectCorrectAndComplete(a: ResilienceApp): Promise<void> {
  expect(governedState(a.emu)).toEqual(expectedGovernedState());
  expect(await a.poisonMessages()).toEqual([]);
  expect(await a.queueDepth()).toEqual({ work: 0, poison: 0 });
  // The audit trail holds every change that was made.
  expect(await appliedChangeSet()).toEqual(expectedAppliedChanges());
  expect(deliveredAlerts(a.emu).eventGrid).toEqual(expectedAlerts());
  expect(successfulWrites(a.emu)).toEqual(ONE_WRITE_EACH);
}

async function runByHand(host: { url: string }, name: string): Promise<void> {
  const res = await fetch(`${host.url}/admin/functions/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(res.status).toBe(202);
}

/** Error lines of a host's output (the runner writes `<time> error [fn id] …`). */
function errorLines(text: string): string[] {
  return text.split('\n').filter((l) => / (error|crit) /.test(l.slice(0, 40)));
}

describe('crashes, storage restarts and concurrent hosts', () => {
  it('a host killed mid-reconcile and another started: the work is finished, nothing written twice, nothing lost', async () => {
    app = await launchApp({ azurite, noHost: true });
    const port = Number(new URL(app.url).port);
    // Slow writes keep reconciles in flight when the host dies.
    const creates = app.emu.faults.add({ operation: 'arm.roleAssignments.create', delayMs: 4000, times: 2 });
    const put = app.emu.faults.add({ operation: 'arm.computes.put', delayMs: 4000, times: 1 });
    const first = await spawnHost(app.env, { port, leaseMs: 3000 });
    app.attach(first);
    await runByHand(first, 'sweep');
    await waitFor(
      'role-assignment and compute writes in flight (and the rotation done and alerted)',
      () =>
        app?.emu.faults.fired(creates) === 2 &&
        app.emu.faults.fired(put) === 1 &&
        deliveredAlerts(app.emu).eventGrid.some((x) => x.startsWith('Warden.Credentials.Rotated')),
      30_000,
    );
    expect(first.inFlight()).toBeGreaterThan(0);
    await first.kill();

    // ARM still carries out what it received before the crash, and finishes the operation by itself.
    await waitFor(
      'the writes the dead host sent',
      () => app?.emu.record.count({ operation: 'arm.computes.put' }) === 1 && app.emu.record.count({ operation: 'arm.roleAssignments.create' }) === 2,
      15_000,
    );
    app.emu.arm.completeOperations();

    const second = await spawnHost(app.env, { port, leaseMs: 3000 });
    app.attach(second);
    await app.settle(60_000);
    // The writes the dead host made count as made: audited and alerted, like any other.
    await expectCorrectAndComplete(app);
    // The messages the dead host held came back to the new one, which took the dead claims over.
    expect(second.output()).toMatch(/Took over the target from a reconcile that never finished/);
    expect(errorLines(second.output())).toEqual([]);
  }, 120_000);

  it('Azurite restarted while reconciles run: queued work survives, the run ends the same', async () => {
    const own = await startAzurite();
    try {
      app = await launchApp({ azurite: own, messageLeaseMs: 3000 });
      const creates = app.emu.faults.add({ operation: 'arm.roleAssignments.create', delayMs: 2500, times: 2 });
      const swept = await app.host.invoke('sweep');
      expect(swept.ok).toBe(true);
      await waitFor('reconciles in flight', () => app?.emu.faults.fired(creates) === 2, 30_000);
      const restartedAt = Date.now();
      await own.restart();
      await app.settle(90_000);
      expect(governedState(app.emu)).toEqual(expectedGovernedState());
      expect(deliveredAlerts(app.emu).eventGrid).toEqual(expectedAlerts());
      expect(await app.poisonMessages()).toEqual([]);
      expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
      expect(await appliedChangeSet()).toEqual(expectedAppliedChanges());
      expect(successfulWrites(app.emu)).toEqual(ONE_WRITE_EACH);
      // The restart really fell in the middle of those reconciles: their writes were answered after it began.
      const answered = app.emu.record.find({ operation: 'arm.roleAssignments.create' }).map((r) => r.time);
      expect(answered).toHaveLength(2);
      for (const t of answered) expect(t).toBeGreaterThan(restartedAt);
    } finally {
      await app?.stop();
      app = undefined;
      await own.stop();
    }
  }, 150_000);

  it('two host runners on the same queue: the work is shared, each change is written once, no errors from races', async () => {
    app = await launchApp({ azurite, noHost: true });
    const port = Number(new URL(app.url).port);
    const hosts: ChildHost[] = await Promise.all([spawnHost(app.env, { port }), spawnHost(app.env, { port: 0 })]);
    for (const h of hosts) app.attach(h);
    const [a, b] = hosts as [ChildHost, ChildHost];
    // The sweep runs on both (two timers firing: a second instance, or a restart at the wrong time).
    await Promise.all([runByHand(a, 'sweep'), runByHand(b, 'sweep')]);
    // And a burst of duplicate hints reaches both hosts while that work runs.
    const note = {
      value: [{ subscriptionId: IDS.tenant, clientState: CLIENT_STATE, changeType: 'updated', resource: `Groups/${IDS.team}`, resourceData: { id: IDS.team } }],
    };
    const events = [workspaceId(), clusterId()].map((subject, i) => ({
      id: `dup-${i}`,
      eventType: 'Microsoft.Resources.ResourceWriteSuccess',
      subject,
      topic: `/subscriptions/${IDS.subscription}`,
      eventTime: new Date().toISOString(),
      data: { resourceUri: subject, operationName: 'write', status: 'Succeeded' },
      dataVersion: '2',
    }));
    await Promise.all(
      hosts.flatMap((h) => [
        ...[1, 2, 3].map(() =>
          fetch(`${h.url}/runtime/webhooks/eventgrid?functionName=resourceEvents`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
            body: JSON.stringify(events),
          }).then((r) => expect(r.status).toBe(202)),
        ),
        fetch(`${h.url}/api/graph/notifications`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(note) }).then((r) =>
          expect(r.status).toBe(202),
        ),
      ]),
    );
    await app.settle(90_000);
    expect(governedState(app.emu)).toEqual(expectedGovernedState());
    expect(deliveredAlerts(app.emu).eventGrid).toEqual(expectedAlerts());
    expect(await app.poisonMessages()).toEqual([]);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
    expect(await appliedChangeSet()).toEqual(expectedAppliedChanges());
    // One rotation, one key vault version, one compute update: the writes that are not idempotent.
    const writes = successfulWrites(app.emu);
    expect({ ...writes, 'arm.roleAssignments.create': 0 }).toEqual({ ...ONE_WRITE_EACH, 'arm.roleAssignments.create': 0 });
    // Role assignments have deterministic names: a group reconcile and a workspace reconcile running at
    // once may both PUT the same one, which ARM answers 201 with the existing assignment. No second
    // assignment, no error.
    const creates = app.emu.record.find({ operation: 'arm.roleAssignments.create' });
    expect(new Set(creates.map((r) => r.path.toLowerCase())).size).toBe(2);
    expect(creates.filter((r) => r.status !== 201)).toEqual([]);
    // No write failed: no race surfaced as an error anywhere.
    expect(app.emu.record.writes({ status: (s) => s >= 400 })).toEqual([]);
    // Both hosts took work from the queue.
    for (const h of hosts) expect(h.output()).toMatch(/Executed 'Functions\.work' \(Succeeded/);
    expect(errorLines(a.output())).toEqual([]);
    expect(errorLines(b.output())).toEqual([]);
    // Every alert went out once per sink, though both hosts found the same findings.
    expect(app.emu.eventgrid.received()).toHaveLength(expectedAlerts().length);
  }, 150_000);
});
