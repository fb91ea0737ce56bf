/**
 * RBAC sync end to end on the emulator and Azurite: real SDK clients, real adapters, the Graph
 * subscription created through the emulated Graph (validation handshake against the registered
 * handlers), change notifications pushed by the emulator into those handlers, work items reconciled
 * through `reconcile()`. Every assertion is on the emulator's end state or its request record.
 */
import type { Emulator, TenantFile } from '../../emulator';
import { DAY_MS } from '../../shared/clock';
import type { PolicyInput } from '../../shared/policy';
import { DELTA_TARGET } from '../../shared/rbac';
import { withEmulator } from '../helpers/emulator';
import { CLIENT_STATE, startRbac, type RbacHarness } from './rbac-harness';

const TENANT = 'f0f0f0f0-0000-4000-8000-000000000001';
const SUB = 'f1f1f1f1-0000-4000-8000-000000000001';
const DS = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';
const u = (i: number): string => `f2f2f2f2-0000-4000-8000-${String(i).padStart(12, '0')}`;
const g = (i: number): string => `f3f3f3f3-0000-4000-8000-${String(i).padStart(12, '0')}`;
const SP = 'f4f4f4f4-0000-4000-8000-000000000001';
const wsId = (rg: string, name: string): string => `/subscriptions/${SUB}/resourceGroups/${rg}/providers/Microsoft.MachineLearningServices/workspaces/${name}`;
const users = (n: number, disabled: number[] = []) =>
  Array.from({ length: n }, (_, i) => ({ id: u(i + 1), displayName: `User ${i + 1}`, userPrincipalName: `user${i + 1}@contoso.example`, ...(disabled.includes(i + 1) ? { accountEnabled: false } : {}) }));

const armWrites = (emu: Emulator, mark: number) => emu.record.since(mark, { service: 'arm' }).filter((r) => r.method !== 'GET');
const assignmentsAt = (emu: Emulator, scope: string) => emu.arm.roleAssignments({ scope });
const principalsAt = (emu: Emulator, scope: string, role = DS): string[] =>
  emu.arm
    .roleAssignments({ scope, roleDefinitionId: role })
    .map((a) => a.principalId.toLowerCase())
    .sort();

describe('group mode', () => {
  const GV = g(1);
  const tenant: TenantFile = {
    tenantId: TENANT,
    subscriptionId: SUB,
    directory: { users: users(3), groups: [{ id: GV, displayName: 'Vision', securityEnabled: true, members: [u(1), u(2)] }] },
    resources: {
      subscriptions: [
        {
          id: SUB,
          resourceGroups: [
            { name: 'rg-ml-vision', location: 'westeurope', workspaces: Array.from({ length: 5 }, (_, i) => ({ name: `ws-v${i}`, tags: { team: 'vision' } })) },
            { name: 'rg-ml-edge', location: 'westeurope', workspaces: Array.from({ length: 3 }, (_, i) => ({ name: `ws-e${i}`, tags: { Team: 'vision' } })) },
            { name: 'rg-ml-nlp', location: 'westeurope', workspaces: Array.from({ length: 4 }, (_, i) => ({ name: `ws-n${i}`, tags: { team: 'nlp' } })) },
          ],
        },
      ],
    },
  };
  const bindings = [
    { id: 'vision-ds', group: GV, role: 'AzureML Data Scientist', match: { tags: { team: 'vision' } } },
    { id: 'vision-reader', group: GV, role: 'Reader', match: { tags: { team: 'vision' } } },
    { id: 'vision-operator', group: GV, role: 'e503ece1-11d0-4e8e-8e2c-7a6c3bf38815', match: { tags: { team: 'vision' }, resourceGroups: ['rg-ml-*'] } },
  ];
  let emu: Emulator;

  beforeAll(async () => {
    emu = await withEmulator({ tenant });
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('report mode plans everything and writes nothing', async () => {
    const w = await startRbac(emu, { mode: 'report', scopes: [`/subscriptions/${SUB}`], rbac: { bindings } });
    try {
      const mark = emu.record.mark();
      const reports = await w.sweep();
      expect(reports.flatMap((r) => r.plan.changes)).toHaveLength(24);
      expect(reports.flatMap((r) => r.outcomes).every((o) => o.outcome === 'planned')).toBe(true);
      expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark)).toEqual([]);
      expect(emu.record.writes({ service: 'graph' }).filter((r) => r.seq > mark)).toEqual([]);
    } finally {
      await w.close();
    }
  });

  it('a cold sweep gives every matching workspace exactly one assignment per binding, with reads ≤ 1 per workspace + a constant', async () => {
    const w = await startRbac(emu, { mode: 'enforce', scopes: [`/subscriptions/${SUB}`], rbac: { bindings } });
    try {
      const mark = emu.record.mark();
      await w.sweep();
      const writes = armWrites(emu, mark);
      expect(writes).toHaveLength(24);
      expect(writes.every((r) => r.operation === 'arm.roleAssignments.create' && r.status === 201)).toBe(true);
      for (const ws of emu.arm.workspaces()) {
        const mine = assignmentsAt(emu, ws.id);
        if (ws.tags.team === 'vision' || ws.tags.Team === 'vision') {
          expect(mine).toHaveLength(3);
          expect(mine.every((a) => a.principalId === GV && a.principalType === 'Group' && a.description?.startsWith('warden:'))).toBe(true);
        } else {
          expect(mine).toEqual([]);
        }
      }
      const reads = emu.record.since(mark, { service: 'arm', method: 'GET' });
      const byOp = emu.record.countByOperation({ service: 'arm', method: 'GET' });
      expect(reads.filter((r) => r.operation === 'arm.roleAssignments.list')).toHaveLength(12);
      expect(reads.length).toBeLessThanOrEqual(12 + 6);
      expect(byOp['arm.workspaces.get'] ?? 0).toBe(0);
      expect(emu.record.since(mark, { service: 'graph', operation: 'graph.groups.get' })).toHaveLength(1);

      const again = emu.record.mark();
      const second = await w.sweep();
      expect(armWrites(emu, again)).toEqual([]);
      expect(second.every((r) => r.plan.changes.length === 0)).toBe(true);
    } finally {
      await w.close();
    }
  });
});

describe('members mode with a nested group, driven by pushed notifications', () => {
  const G = g(10);
  const NESTED = g(11);
  const OTHER_BOUND = g(12);
  const UNRELATED = g(13);
  const WS_A = wsId('rg-ml-vision', 'ws-a');
  const WS_B = wsId('rg-ml-vision', 'ws-b');
  const tenant: TenantFile = {
    tenantId: TENANT,
    subscriptionId: SUB,
    directory: {
      users: users(12, [3]),
      servicePrincipals: [{ id: SP, appId: 'f5f5f5f5-0000-4000-8000-000000000001', displayName: 'vision-pipeline' }],
      groups: [
        { id: NESTED, displayName: 'Vision contractors', members: [u(2), u(3)] },
        { id: G, displayName: 'Vision (M365)', securityEnabled: false, mailEnabled: true, members: [u(1), NESTED, SP] },
        { id: OTHER_BOUND, displayName: 'Vision readers', members: [u(11)] },
        { id: UNRELATED, displayName: 'Finance', members: [u(12)] },
      ],
    },
    resources: {
      subscriptions: [
        {
          id: SUB,
          resourceGroups: [
            {
              name: 'rg-ml-vision',
              location: 'westeurope',
              workspaces: [
                { name: 'ws-a', computes: [{ name: 'ci-user2', computeType: 'ComputeInstance', assignedUser: u(2), state: 'Running', identity: { type: 'SystemAssigned' } }] },
                { name: 'ws-b' },
              ],
            },
          ],
        },
      ],
      roleAssignments: [
        { scope: WS_A, roleName: 'AzureML Data Scientist', principalId: u(5), principalType: 'User', description: 'granted by hand' },
        { scope: WS_A, roleName: 'Owner', principalId: u(6), principalType: 'User' },
      ],
    },
  };
  const policy: PolicyInput = {
    mode: 'enforce',
    scopes: [`/subscriptions/${SUB}`],
    rbac: {
      bindings: [
        { id: 'vision', group: G, role: 'AzureML Data Scientist', principals: 'members', match: { resourceGroups: ['rg-ml-vision'] } },
        { id: 'readers', group: OTHER_BOUND, role: 'Reader', principals: 'group' },
      ],
      forbidden: [{ role: 'Owner', principalTypes: ['User'], action: 'alert' }],
    },
  };
  let emu: Emulator;
  let w: RbacHarness;

  beforeAll(async () => {
    emu = await withEmulator({ tenant });
    w = await startRbac(emu, policy);
    const sub = await w.module.ensureSubscription();
    expect(sub.action).toBe('created');
    await w.sweep();
    await w.drain();
  });
  afterAll(async () => {
    await w.close();
    await emu.stop();
  });

  it('the subscription is one /groups subscription validated against the webhook', () => {
    const subs = emu.graph.subscriptions();
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatchObject({ resource: '/groups', changeType: 'updated', notificationUrl: `${w.publicUrl}/api/graph/notifications`, lifecycleNotificationUrl: `${w.publicUrl}/api/graph/lifecycle` });
    const handshakes = emu.pusher.log.filter((d) => d.kind === 'graph.validation');
    expect(handshakes.map((d) => d.status)).toEqual([200, 200]);
  });

  it('expands enabled users and service principals transitively; a disabled user gets none', () => {
    for (const ws of [WS_A, WS_B]) {
      const expected = [u(1), u(2), SP, ...(ws === WS_A ? [u(5)] : [])].sort();
      expect(principalsAt(emu, ws)).toEqual(expected);
    }
    const types = Object.fromEntries(assignmentsAt(emu, WS_B).map((a) => [a.principalId, a.principalType]));
    expect(types[SP]).toBe('ServicePrincipal');
    expect(principalsAt(emu, WS_A)).not.toContain(u(3));
  });

  it('alerts the forbidden Owner assignment and leaves it (action alert)', () => {
    const alerts = w.alerter.sent.filter((f) => f.type === 'Warden.Rbac.ForbiddenAssignment');
    expect(alerts.map((f) => f.subject)).toContain(WS_A);
    expect(principalsAt(emu, WS_A, OWNER)).toEqual([u(6)]);
  });

  it('a user added to the nested group (pushed notification) gets the assignment', async () => {
    w.enqueued.length = 0;
    emu.graph.addMember(NESTED, u(4));
    await emu.idle();
    expect(w.enqueued.map((i) => i.target).sort()).toEqual([DELTA_TARGET, G].sort());
    expect(w.enqueued.find((i) => i.target === G)?.trigger.kind).toBe('notification');
    await w.drain();
    expect(principalsAt(emu, WS_A)).toContain(u(4));
    expect(principalsAt(emu, WS_B)).toContain(u(4));
  });

  it('a user removed from the nested group loses it, their compute instance is stopped and alerted; the manual assignment stays', async () => {
    const ci = emu.arm.computeId(WS_A, 'ci-user2');
    emu.graph.removeMember(NESTED, u(2));
    await w.drain();
    expect(principalsAt(emu, WS_A)).not.toContain(u(2));
    expect(principalsAt(emu, WS_B)).not.toContain(u(2));
    expect(principalsAt(emu, WS_A)).toContain(u(5));
    const deadline = Date.now() + 5000;
    while (emu.arm.getCompute(ci)?.properties.properties.state !== 'Stopped' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(emu.arm.getCompute(ci)?.properties.properties.state).toBe('Stopped');
    expect(w.alerter.sent.filter((f) => f.type === 'Warden.Rbac.PrincipalOffboarded').map((f) => f.details.principalId)).toEqual([u(2)]);
  });

  it('a notification with a wrong clientState changes nothing and reads nothing', async () => {
    w.enqueued.length = 0;
    const mark = emu.record.mark();
    const forged = JSON.stringify({
      value: [{ subscriptionId: emu.graph.subscriptions()[0]?.id, clientState: 'not-the-secret', changeType: 'updated', resource: `Groups/${G}`, resourceData: { id: G } }],
    });
    expect(await w.post('/api/graph/notifications', forged)).toBe(202);
    expect(w.enqueued).toEqual([]);
    expect(emu.record.since(mark)).toEqual([]);
    expect(w.sink.text()).not.toContain(CLIENT_STATE);
  });

  it('a validation handshake is echoed as text/plain', async () => {
    const res = await fetch(`${w.publicUrl}/api/graph/notifications?validationToken=${encodeURIComponent('Validation: hello & welcome')}`, { method: 'POST', body: '' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('Validation: hello & welcome');
  });

  it('notifications for unrelated groups cause no reconcile', async () => {
    w.enqueued.length = 0;
    emu.graph.addMember(UNRELATED, u(1));
    await emu.idle();
    expect(emu.pusher.log.filter((d) => d.kind === 'graph.notification' && d.body.includes(UNRELATED)).map((d) => d.status)).toEqual([202]);
    expect(w.enqueued).toEqual([]);
  });

  it('a notification lost on purpose is caught up by the delta cursor on the next notification', async () => {
    w.enqueued.length = 0;
    emu.graph.dropNextNotifications(1);
    emu.graph.addMember(NESTED, u(7));
    await emu.idle();
    expect(emu.graph.lostNotifications()).toHaveLength(1);
    expect(w.enqueued).toEqual([]);
    // The next notification is about another bound group; its catch-up finds the lost change.
    emu.graph.addMember(OTHER_BOUND, u(8));
    await emu.idle();
    expect(w.enqueued.map((i) => i.target).sort()).toEqual([DELTA_TARGET, OTHER_BOUND].sort());
    await w.drain();
    expect(principalsAt(emu, WS_A)).toContain(u(7));
    expect(principalsAt(emu, WS_B)).toContain(u(7));
  });

  it('a notification lost on purpose is caught up by the next sweep', async () => {
    w.enqueued.length = 0;
    emu.graph.dropNextNotifications(1);
    emu.graph.addMember(NESTED, u(10));
    await emu.idle();
    expect(w.enqueued).toEqual([]);
    await w.sweep();
    await w.drain();
    expect(principalsAt(emu, WS_A)).toContain(u(10));
    expect(principalsAt(emu, WS_B)).toContain(u(10));
  });

  it('PrincipalNotFound for the first tries of a new principal still ends in the assignment', async () => {
    emu.graph.addUser({ id: u(20), displayName: 'New hire', userPrincipalName: 'newhire@contoso.example' });
    emu.arm.propagate(u(20), { failures: 3 });
    emu.graph.addMember(G, u(20));
    const reports = await w.drain();
    expect(principalsAt(emu, WS_A)).toContain(u(20));
    expect(principalsAt(emu, WS_B)).toContain(u(20));
    expect(reports.flatMap((r) => r.outcomes).some((o) => o.outcome === 'failed')).toBe(false);
    expect(emu.record.count({ operation: 'arm.roleAssignments.create', status: (s) => s === 400 })).toBeGreaterThanOrEqual(3);
  });

  it('429s beyond the SDK’s own retries still end in the right state', async () => {
    emu.faults.add({ service: 'arm', operation: 'arm.roleAssignments.create', status: 429, retryAfterSeconds: 0, times: 6 });
    emu.graph.addMember(NESTED, u(9));
    const reports = await w.drain();
    emu.faults.clear();
    expect(emu.record.count({ operation: 'arm.roleAssignments.create', includeInjected: true, status: (s) => s === 429 })).toBe(6);
    expect(principalsAt(emu, WS_A)).toContain(u(9));
    expect(principalsAt(emu, WS_B)).toContain(u(9));
    expect(reports.flatMap((r) => r.outcomes).some((o) => o.outcome === 'failed')).toBe(false);
  });

  it('a second sweep makes zero writes', async () => {
    const mark = emu.record.mark();
    await w.sweep();
    await w.drain();
    expect(armWrites(emu, mark)).toEqual([]);
  });
});

describe('forbidden assignments with action remove', () => {
  const G = g(30);
  const WS = wsId('rg-ml', 'ws');
  const tenant: TenantFile = {
    tenantId: TENANT,
    subscriptionId: SUB,
    directory: { users: users(3), groups: [{ id: G, displayName: 'Team', members: [u(1)] }] },
    resources: {
      subscriptions: [{ id: SUB, resourceGroups: [{ name: 'rg-ml', location: 'westeurope', workspaces: [{ name: 'ws' }] }] }],
      roleAssignments: [
        { scope: WS, roleName: 'Owner', principalId: u(2), principalType: 'User' },
        { scope: WS, roleName: 'Owner', principalId: G, principalType: 'Group' },
        { scope: `/subscriptions/${SUB}/resourceGroups/rg-ml`, roleName: 'Owner', principalId: u(3), principalType: 'User' },
      ],
    },
  };
  let emu: Emulator;
  beforeAll(async () => {
    emu = await withEmulator({ tenant });
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('removes the forbidden assignment at the workspace, and only that one', async () => {
    const w = await startRbac(emu, {
      mode: 'enforce',
      scopes: [`/subscriptions/${SUB}`],
      rbac: { bindings: [{ id: 'team', group: G, role: 'Reader' }], forbidden: [{ role: 'Owner', principalTypes: ['User'], action: 'remove' }] },
    });
    try {
      const r = await w.reconcile(WS);
      expect(r.outcomes.map((o) => [o.change.action, o.outcome]).sort()).toEqual([
        ['createRoleAssignment', 'applied'],
        ['deleteRoleAssignment', 'applied'],
      ]);
      expect(principalsAt(emu, WS, OWNER)).toEqual([G]);
      expect(emu.arm.roleAssignments({ principalId: u(3) })).toHaveLength(1);
      expect(w.alerter.sent.filter((f) => f.type === 'Warden.Rbac.ForbiddenAssignment').map((f) => f.details.principalId)).toEqual([u(2)]);
    } finally {
      await w.close();
    }
  });
});

describe('the Graph subscription', () => {
  const G = g(40);
  const tenant: TenantFile = {
    tenantId: TENANT,
    subscriptionId: SUB,
    directory: { users: users(2), groups: [{ id: G, displayName: 'Team', members: [u(1)] }] },
    resources: { subscriptions: [{ id: SUB, resourceGroups: [] }] },
  };
  let emu: Emulator;
  let w: RbacHarness;
  beforeAll(async () => {
    emu = await withEmulator({ tenant });
    w = await startRbac(emu, { mode: 'enforce', scopes: [`/subscriptions/${SUB}`], rbac: { bindings: [{ id: 'team', group: G, role: 'Reader' }] } });
  });
  afterAll(async () => {
    await w.close();
    await emu.stop();
  });

  it('is created, left alone, renewed before its 41,760 minutes run out, and recreated after Graph drops it', async () => {
    const created = await w.module.ensureSubscription();
    expect(created.action).toBe('created');
    const left = (): number => (Date.parse(emu.graph.subscriptions()[0]?.expirationDateTime ?? '') - emu.clock.now()) / 60_000;
    expect(left()).toBeGreaterThan(40_000);
    expect(left()).toBeLessThanOrEqual(41_760);
    expect(w.enqueued.map((i) => i.target)).toEqual([DELTA_TARGET]);

    expect((await w.module.ensureSubscription()).action).toBe('unchanged');
    emu.clock.advance(26 * DAY_MS);
    const mark = emu.record.mark();
    const renewed = await w.module.ensureSubscription();
    expect(renewed).toMatchObject({ action: 'renewed', id: created.id });
    expect(emu.record.since(mark, { operation: 'graph.subscriptions.update' })).toHaveLength(1);
    expect(left()).toBeGreaterThan(40_000);

    // Past its expiry without renewal, Graph forgets it; the next hourly check recreates it.
    emu.clock.advance(30 * DAY_MS);
    expect(emu.graph.subscriptions()).toEqual([]);
    const recreated = await w.module.ensureSubscription();
    expect(recreated.action).toBe('recreated');
    expect(emu.graph.subscriptions().map((s) => s.id)).toEqual([recreated.id]);

    emu.graph.dropSubscription(recreated.id ?? '');
    expect((await w.module.ensureSubscription()).action).toBe('recreated');
    expect(emu.graph.subscriptions()).toHaveLength(1);
  });

  it('handles lifecycle notifications pushed by Graph: reauthorizes, and recreates a removed subscription', async () => {
    const { id } = await w.module.ensureSubscription();
    expect(emu.graph.sendLifecycle(id ?? '', 'reauthorizationRequired')).toBe(true);
    await emu.idle();
    expect(emu.graph.subscriptions()[0]?.needsReauthorization).toBe(false);
    expect(emu.record.count({ operation: 'graph.subscriptions.reauthorize' })).toBe(1);

    expect(emu.graph.sendLifecycle(id ?? '', 'subscriptionRemoved')).toBe(true);
    await emu.idle();
    const subs = emu.graph.subscriptions();
    expect(subs).toHaveLength(1);
    expect(subs[0]?.id).not.toBe(id);
    expect(emu.pusher.log.filter((d) => d.kind === 'graph.lifecycle').map((d) => d.status)).toEqual([202, 202]);
  });
});
