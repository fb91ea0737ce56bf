/**
 * The fault matrix, part 1: the whole app (emulator, host runner, real functions and SDK clients, a
 * private Azurite) sweeps the small tenant while the emulator throttles, fails or stalls, and every
 * run must end in the same Azure state as a clean run, with every alert delivered, nothing left in
 * the queue and nothing in the poison queue.
 */
import type { RecordedRequest } from '../../emulator/core/types';
import { startAzurite, type Azurite } from '../helpers/azurite';
import {
  appliedChangeSet,
  expectedAppliedChanges,
  deliveredAlerts,
  expectedAlerts,
  expectedGovernedState,
  governedState,
  launchApp,
  successfulWrites,
  type ResilienceApp,
} from './helpers';

/**
 * Every operation Warden may call on the emulated services. Each gets one 429 before anything else;
 * the test fails if Warden calls one not listed here, so "every API" stays true as Warden grows.
 */
const OPERATIONS = [
  'arm.roleDefinitions.list', 'arm.roleDefinitions.get',
  'arm.roleAssignments.list', 'arm.roleAssignments.get', 'arm.roleAssignments.create', 'arm.roleAssignments.delete',
  'arm.subscriptions.list', 'arm.subscriptions.get', 'arm.resourceGroups.list', 'arm.resourceGroups.get', 'arm.resources.list',
  'arm.registries.list', 'arm.registries.get', 'arm.workspaces.list', 'arm.workspaces.get',
  'arm.datastores.list', 'arm.datastores.get',
  'arm.computes.list', 'arm.computes.get', 'arm.computes.put', 'arm.computes.patch', 'arm.computes.delete',
  'arm.computes.stop', 'arm.computes.start', 'arm.computes.restart', 'arm.operations.get', 'arm.operations.result',
  'graph.groups.get', 'graph.groups.list', 'graph.groups.delta', 'graph.groups.transitiveMembers', 'graph.members.list',
  'graph.users.get', 'graph.users.list', 'graph.servicePrincipals.get', 'graph.servicePrincipals.list',
  'graph.directoryObjects.get', 'graph.directoryObjects.getByIds', 'graph.batch',
  'graph.applications.list', 'graph.applications.get', 'graph.applications.delta', 'graph.applications.owners',
  'graph.applications.addPassword', 'graph.applications.removePassword', 'graph.sendMail',
  'graph.subscriptions.create', 'graph.subscriptions.get', 'graph.subscriptions.list', 'graph.subscriptions.update',
  'graph.subscriptions.delete', 'graph.subscriptions.reauthorize',
  'keyvault.secrets.get', 'keyvault.secrets.set', 'keyvault.secrets.update', 'keyvault.secrets.versions', 'keyvault.secrets.list',
  'eventgrid.topic.publish', 'webhook.post',
];
const FAULTED_SERVICES = new Set(['arm', 'graph', 'keyvault', 'eventgrid', 'webhook']);

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

/** The end of every run: the clean run's Azure state, every alert delivered, nothing queued or poisoned. */
async function expectCorrectAndComplete(a: ResilienceApp): Promise<void> {
  expect(governedState(a.emu)).toEqual(expectedGovernedState());
  expect(await a.poisonMessages()).toEqual([]);
  expect(await a.queueDepth()).toEqual({ work: 0, poison: 0 });
  // The audit trail holds every change that was made.
  expect(await appliedChangeSet()).toEqual(expectedAppliedChanges());
  expect(deliveredAlerts(a.emu)).toEqual({ eventGrid: expectedAlerts(), webhook: expectedAlerts(), mail: expectedAlerts() });
  // One effective write per change: a retried request never wrote twice.
  expect(successfulWrites(a.emu)).toEqual({
    'arm.computes.put': 1,
    'arm.roleAssignments.create': 2,
    'graph.applications.addPassword': 1,
    'keyvault.secrets.set': 1,
  });
}

function injected(a: ResilienceApp): RecordedRequest[] {
  return a.emu.record.find({ includeInjected: true }).filter((r) => r.injected);
}

describe('fault matrix on the emulator', () => {
  it('a clean run reaches the expected state (the reference for every faulted run)', async () => {
    app = await launchApp({ azurite });
    await app.sweep();
    await expectCorrectAndComplete(app);
  }, 60_000);

  it('429 with Retry-After on every API: each call is throttled once, waited out, and the run ends the same', async () => {
    app = await launchApp({ azurite });
    const rules = new Map(OPERATIONS.map((operation) => [operation, app?.emu.faults.add({ operation, status: 429, retryAfterSeconds: 1, times: 1 }) ?? 0]));
    await app.sweep(90_000);
    await expectCorrectAndComplete(app);

    const used = [...new Set(app.emu.record.find({ includeInjected: true }).filter((r) => FAULTED_SERVICES.has(r.service)).map((r) => r.operation))];
    const unlisted = used.filter((op) => !rules.has(op));
    expect(unlisted).toEqual([]);
    // Every API Warden used answered 429 once and was called again afterwards.
    const notThrottled = used.filter((op) => app?.emu.faults.fired(rules.get(op) ?? 0) !== 1);
    expect(notThrottled).toEqual([]);
    expect(used.length).toBeGreaterThanOrEqual(15);

    // Retry-After was honoured: a throttled write came back no sooner than a second later. (Alert
    // sinks post every alert to one URL, so their retries cannot be told apart by path; that every
    // alert arrived is checked above.)
    const all = app.emu.record.find({ includeInjected: true });
    const shared = new Set(['graph.sendMail', 'eventgrid.topic.publish', 'webhook.post']);
    const writes = injected(app).filter((r) => r.method !== 'GET' && !shared.has(r.operation));
    expect(writes.map((r) => r.operation).sort()).toEqual(['arm.computes.put', 'arm.roleAssignments.create', 'graph.applications.addPassword', 'keyvault.secrets.set']);
    for (const t of writes) {
      const next = all.find((r) => r.seq > t.seq && r.operation === t.operation && r.path === t.path && !r.injected);
      expect({ operation: t.operation, retried: next !== undefined, waitedMs: (next?.time ?? 0) - t.time >= 900 }).toEqual({ operation: t.operation, retried: true, waitedMs: true });
    }
  }, 120_000);

  it('intermittent 5xx and dropped connections on ARM, Graph and Key Vault: retried, nothing written twice, the run ends the same', async () => {
    app = await launchApp({ azurite });
    const governed = [
      { service: 'arm' as const },
      { service: 'keyvault' as const },
      // Graph reads and the one Graph write Warden makes (sendMail is an alert sink, tested below).
      { service: 'graph' as const, method: 'GET' },
      { operation: 'graph.applications.addPassword' },
    ];
    for (const where of governed) {
      app.emu.faults.add({ ...where, status: 503, probability: 0.2, times: 12 });
      app.emu.faults.add({ ...where, status: 500, probability: 0.1, times: 6 });
      app.emu.faults.add({ ...where, status: 502, probability: 0.1, times: 4 });
    }
    // One of each for certain: a Graph 500 (which the Graph SDK itself does not retry) on the sweep's
    // first read, and connections closed without an answer, on writes and reads alike.
    app.emu.faults.add({ operation: 'graph.applications.delta', status: 500, times: 1 });
    app.emu.faults.add({ operation: 'arm.roleAssignments.create', reset: true, times: 1 });
    app.emu.faults.add({ operation: 'graph.groups.delta', reset: true, times: 1 });
    app.emu.faults.add({ operation: 'keyvault.secrets.versions', reset: true, times: 1 });
    await app.sweep(90_000);
    await expectCorrectAndComplete(app);
    expect(injected(app).length).toBeGreaterThan(3);
  }, 120_000);

  it('alert sinks down for a while (webhook 503, Event Grid 500, mail 500): every alert still reaches every sink', async () => {
    app = await launchApp({ azurite });
    app.emu.webhook.failNext('alerts', 1000, 503);
    const eg = app.emu.faults.add({ operation: 'eventgrid.topic.publish', status: 500 });
    const mail = app.emu.faults.add({ operation: 'graph.sendMail', status: 500 });
    await app.sweep(90_000);
    expect(governedState(app.emu)).toEqual(expectedGovernedState());
    expect(deliveredAlerts(app.emu)).toEqual({ eventGrid: [], webhook: [], mail: [] });
    // The sinks recover; by the next sweep every alert, one-off ones (a rotation) included, has arrived.
    app.emu.webhook.failNext('alerts', 0, 503);
    app.emu.faults.remove(eg);
    app.emu.faults.remove(mail);
    await app.sweep(90_000);
    await expectCorrectAndComplete(app);
  }, 120_000);

  it('answers slower than the function timeout: the invocation times out, is retried, and nothing is done twice', async () => {
    app = await launchApp({ azurite, hostJson: { functionTimeout: '00:00:02' } });
    for (const operation of ['arm.roleAssignments.create', 'arm.computes.put', 'graph.applications.addPassword', 'keyvault.secrets.set']) {
      app.emu.faults.add({ operation, delayMs: 3500, times: 1 });
    }
    await app.sweep(90_000);
    // Invocations that outlived the timeout finish in the background; wait for them too.
    await app.settle(30_000);
    expect(app.allLogs()).toMatch(/Timeout value of 2000 ms exceeded/);
    await expectCorrectAndComplete(app);
  }, 120_000);
});
