/**
 * `PrincipalNotFound`: a user who has just joined a bound group is not yet known to ARM (Entra
 * replication takes seconds, sometimes minutes). For seconds, the role-assignment write is retried in
 * place with backoff and nothing fails. For minutes, the whole chain runs: the in-place backoff gives
 * up, the work item fails as retryable, the host retries it, on its last try it moves to
 * `warden-work-poison` with a `Warden.Work.Failed` alert, and the next sweep grants the assignment once
 * the principal has replicated. (The host's `maxDequeueCount` is 2 here instead of 5, so the chain
 * takes two tries of ~37 s of backoff each rather than five.)
 */
import { startAzurite, type Azurite } from '../helpers/azurite';
import { DATA_SCIENTIST, deliveredAlerts, IDS, launchApp, waitFor, workspaceId, type ResilienceApp } from './helpers';

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

function addNewcomer(a: ResilienceApp): void {
  a.emu.graph.addUser({ id: IDS.newcomer, displayName: 'Newcomer', userPrincipalName: 'newcomer@contoso.example' });
  a.emu.graph.addMember(IDS.team, IDS.newcomer);
}

function newcomerAssignments(a: ResilienceApp): number {
  return a.emu.arm.roleAssignments({ scope: workspaceId(), principalId: IDS.newcomer, roleDefinitionId: DATA_SCIENTIST }).length;
}

function principalNotFound(a: ResilienceApp): number {
  return a.emu.record.count({ operation: 'arm.roleAssignments.create', status: (s) => s === 400 });
}

const failureAlerts = (a: ResilienceApp): string[] => deliveredAlerts(a.emu).eventGrid.filter((x) => /Work\.Failed|ChangeFailed/.test(x));

describe('PrincipalNotFound while a new member replicates', () => {
  it('for seconds: retried in place with backoff, granted in the same reconcile, nothing fails', async () => {
    app = await launchApp({ azurite });
    addNewcomer(app);
    app.emu.arm.propagate(IDS.newcomer, { forMs: 4000 });
    await app.sweep(60_000);
    expect(newcomerAssignments(app)).toBe(1);
    expect(principalNotFound(app)).toBeGreaterThanOrEqual(1);
    expect(app.allLogs()).toMatch(/The principal is not yet known to ARM; retrying/);
    expect(failureAlerts(app)).toEqual([]);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
    // Only the newcomer's first tries failed; every assignment was written once.
    expect(app.emu.record.count({ operation: 'arm.roleAssignments.create', status: (s) => s === 201 })).toBe(3);
  }, 90_000);

  it('for minutes: backoff, host retry, poison with an alert, and the next sweep grants it', async () => {
    app = await launchApp({ azurite, env: { AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2' } });
    addNewcomer(app);
    app.emu.arm.propagate(IDS.newcomer, { forMs: 10 * 60_000 });
    const sweep = await app.host.invoke('sweep');
    expect(sweep.ok).toBe(true);
    const alerted = await waitFor(
      'the Warden.Work.Failed alert',
      () => deliveredAlerts(app?.emu ?? (undefined as never)).eventGrid.find((x) => x.startsWith('Warden.Work.Failed')),
      150_000,
      500,
    );
    expect(alerted).toBe(`Warden.Work.Failed ${workspaceId()}`);
    await app.settle(60_000, { pushes: true });
    // Both tries used the whole in-place backoff; the host retried once, then gave up.
    const logs = app.allLogs();
    expect(logs).toMatch(/Reconcile failed \(transient\); the host retries it \(try 1 of 2\)/);
    expect(logs).toMatch(/failed 2 times; the message moves to warden-work-poison/);
    expect(principalNotFound(app)).toBeGreaterThanOrEqual(10);
    const poison = await app.poisonMessages();
    expect(poison.map((m) => (JSON.parse(m) as { capability: string; target: string }).target)).toEqual([workspaceId()]);
    expect(newcomerAssignments(app)).toBe(0);
    // The other members were granted meanwhile.
    expect(app.emu.arm.roleAssignments({ scope: workspaceId(), roleDefinitionId: DATA_SCIENTIST })).toHaveLength(2);

    // Replication completes; the next sweep grants the assignment (nothing is lost).
    app.emu.arm.propagate(IDS.newcomer, { failures: 0 });
    await app.sweep(60_000);
    expect(newcomerAssignments(app)).toBe(1);
    expect((await app.queueDepth()).work).toBe(0);
  }, 180_000);
});
