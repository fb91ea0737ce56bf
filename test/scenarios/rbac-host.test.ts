/**
 * Issue 5's flows end to end through the host runner: Warden's own timer creates the Graph
 * subscription (the emulator performs the real validation handshake against the host), membership
 * changes made in the emulator are pushed as change notifications to /api/graph/notifications,
 * queued, reconciled by the `work` function, and end as role assignments in the emulator's ARM.
 */
import { startApp, type App } from '../helpers/app';

const VISION = '44444444-4444-4444-8444-000000000001';
const CONTRACTORS = '44444444-4444-4444-8444-000000000003';
const NLP = '44444444-4444-4444-8444-000000000002';
const GRACE = '11111111-1111-4111-8111-000000000002';
const ALAN = '11111111-1111-4111-8111-000000000003';
const DS = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';

describe('RBAC sync through the host runner', () => {
  let app: App;
  let wsVision: string;

  beforeAll(async () => {
    app = await startApp({
      policy: (emu) => ({
        mode: 'enforce',
        scopes: [`/subscriptions/${emu.subscriptionId}`],
        rbac: { bindings: [{ id: 'vision-ds', group: VISION, role: 'AzureML Data Scientist', match: { tags: { team: 'vision' } }, principals: 'members' }] },
      }),
    });
    wsVision = app.emu.arm.workspaceId('rg-ml-vision', 'mlw-vision');
    const sub = await app.host.invoke('graphSubscriptions');
    expect(sub.ok).toBe(true);
    await app.host.invoke('sweep');
    await app.settle();
  }, 60_000);
  afterAll(async () => {
    await app?.stop();
  });

  const holds = (principal: string): boolean =>
    app.emu.arm.roleAssignments({ scope: wsVision, principalId: principal }).some((a) => a.roleDefinitionId.toLowerCase().endsWith(DS));

  it('created exactly one subscription on /groups through the real validation handshake', () => {
    const subs = app.emu.graph.subscriptions();
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatchObject({ resource: '/groups', changeType: 'updated' });
  });

  it('a user added to a nested group gets the assignment; removed, loses it', async () => {
    expect(holds(ALAN)).toBe(false);
    app.emu.graph.addMember(CONTRACTORS, ALAN);
    await app.settle();
    expect(holds(ALAN)).toBe(true);

    app.emu.graph.removeMember(CONTRACTORS, ALAN);
    await app.settle();
    expect(holds(ALAN)).toBe(false);
    expect(holds(GRACE)).toBe(true);
  });

  it('a change in an unrelated group causes no reconcile and no ARM call', async () => {
    const mark = app.emu.record.mark();
    app.emu.graph.addMember(NLP, GRACE);
    await app.settle();
    expect(app.emu.record.since(mark, { service: 'arm' })).toEqual([]);
  });

  it('a second sweep makes no writes', async () => {
    const mark = app.emu.record.mark();
    await app.host.invoke('sweep');
    await app.settle();
    expect(app.emu.record.since(mark, { service: 'arm' }).filter((r) => r.method !== 'GET')).toEqual([]);
  });
});
