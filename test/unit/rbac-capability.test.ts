import type { PolicyInput } from '../../shared/policy';
import { serviceError } from '../../shared/rbac/memory';
import { DELTA_TARGET } from '../../shared/rbac';
import { addWorkspace, CLIENT_STATE, DS, guid, makeWorld, notification, OWNER, SUB, wsId, type World } from './rbac-helpers';

const G = guid('aaaaaaaa', 1);
const NESTED = guid('aaaaaaaa', 2);
const OTHER_GROUP = guid('aaaaaaaa', 9);
const U = (i: number): string => guid('bbbbbbbb', i);
const SP = guid('dddddddd', 1);

const groupPolicy = (extra: Partial<PolicyInput> = {}): PolicyInput => ({
  mode: 'enforce',
  scopes: [`/subscriptions/${SUB}`],
  rbac: {
    bindings: [
      { id: 'vision-ds', group: G, role: 'AzureML Data Scientist', match: { tags: { team: 'vision' } } },
      { id: 'vision-reader', group: G, role: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', match: { tags: { team: 'vision' } } },
    ],
  },
  ...extra,
});

const membersPolicy = (forbiddenAction: 'alert' | 'remove' = 'alert', mode: 'enforce' | 'report' = 'enforce'): PolicyInput => ({
  mode,
  scopes: [`/subscriptions/${SUB}`],
  rbac: {
    bindings: [{ id: 'vision', group: G, role: 'AzureML Data Scientist', principals: 'members', match: { resourceGroups: ['rg-ml-*'] } }],
    forbidden: [{ role: 'Owner', principalTypes: ['User'], action: forbiddenAction }],
  },
});

function membersWorld(policy: PolicyInput = membersPolicy()): World {
  const w = makeWorld(policy);
  w.dir.addUser(U(1)).addUser(U(2)).addUser(U(3), false).addUser(U(4)).addUser(U(5)).addServicePrincipal(SP);
  w.dir.addGroup(NESTED, { members: [U(2), U(3)] });
  w.dir.addGroup(G, { securityEnabled: false, members: [U(1), NESTED, SP] });
  w.dir.addGroup(OTHER_GROUP, { members: [U(5)] });
  return w;
}

const principalsAt = (w: World, scope: string): string[] => w.ra.at(scope).map((a) => a.principalId).sort();

describe('group mode', () => {
  it('gives every matching workspace exactly one assignment per binding; a second sweep writes nothing', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    const b = addWorkspace(w, 'rg-ml-vision', 'ws-b', { Team: 'vision' });
    const other = addWorkspace(w, 'rg-ml-nlp', 'ws-nlp', { team: 'nlp' });

    const first = await w.sweep();
    expect(first.flatMap((r) => r.outcomes).filter((o) => o.outcome === 'applied')).toHaveLength(4);
    for (const ws of [a, b]) {
      const at = w.ra.at(ws);
      expect(at).toHaveLength(2);
      expect(at.every((x) => x.principalId === G && x.principalType === 'Group')).toBe(true);
      expect(at.map((x) => x.description).sort()).toEqual(['warden:vision-ds', 'warden:vision-reader']);
    }
    expect(w.ra.at(other)).toEqual([]);
    // Reads: one workspace list per scope, each role and group once, one assignment list per workspace.
    expect(w.ml.calls.filter((c) => c.startsWith('listWorkspaces'))).toHaveLength(1);
    expect(w.ml.calls.filter((c) => c.startsWith('getWorkspace'))).toHaveLength(0);
    expect(w.ra.calls.filter((c) => c.startsWith('list '))).toHaveLength(3);
    expect(w.ra.calls.filter((c) => /Role /.test(c))).toHaveLength(2);
    expect(w.dir.calls.filter((c) => c.startsWith('getGroup'))).toHaveLength(1);

    const writesBefore = w.ra.writes().length;
    const second = await w.sweep();
    expect(w.ra.writes().length).toBe(writesBefore);
    expect(second.every((r) => r.plan.changes.length === 0)).toBe(true);
  });

  it('corrects a drifted assignment: a deleted one is recreated under the same name', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    await w.reconcile(a);
    const before = w.ra.at(a).map((x) => x.name).sort();
    const victim = w.ra.at(a)[0];
    if (!victim) throw new Error('no assignment');
    w.ra.assignments.delete(victim.name);
    const r = await w.reconcile(a);
    expect(r.outcomes.map((o) => [o.change.action, o.outcome])).toEqual([['createRoleAssignment', 'applied']]);
    expect(w.ra.at(a).map((x) => x.name).sort()).toEqual(before);
  });

  it('a workspace that stops matching loses Warden’s assignments, never anyone else’s', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    await w.reconcile(a);
    const manual = w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: U(7), principalType: 'User' });
    w.ml.addWorkspace({ id: a, name: 'ws-a', subscriptionId: SUB, resourceGroup: 'rg-ml-vision', location: 'westeurope', tags: { team: 'nlp' } });
    await w.reconcile(a);
    expect(w.ra.at(a).map((x) => x.name)).toEqual([manual.name]);
  });

  it('report mode plans and audits but writes nothing', async () => {
    const w = makeWorld(groupPolicy({ mode: 'report' }));
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    const r = await w.reconcile(a);
    expect(r.plan.changes).toHaveLength(2);
    expect(r.outcomes.every((o) => o.outcome === 'planned')).toBe(true);
    expect(w.ra.writes()).toEqual([]);
    expect(w.audit.records.filter((x) => x.outcome === 'planned')).toHaveLength(2);
  });

  it('an exempt workspace is reported, never changed', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision', 'warden-exempt': 'true' });
    const r = await w.reconcile(a);
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.skipped).toHaveLength(2);
    expect(w.ra.writes()).toEqual([]);
  });

  it('a binding whose group or role cannot be found leaves its assignments alone and alerts', async () => {
    const w = makeWorld({
      mode: 'enforce',
      scopes: [`/subscriptions/${SUB}`],
      rbac: { bindings: [{ id: 'gone', group: G, role: 'No Such Role' }] },
    });
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const mine = w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: G, principalType: 'Group', description: 'warden:gone' });
    const r = await w.reconcile(a);
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings.map((f) => f.type)).toEqual(['Warden.Rbac.RoleNotFound']);
    expect(w.ra.at(a).map((x) => x.name)).toEqual([mine.name]);
  });

  it('prunes the assignments of a binding removed from the policy', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addGroup(G, { securityEnabled: true });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: U(1), principalType: 'User', description: 'warden:retired-binding' });
    await w.reconcile(a);
    expect(w.ra.at(a).map((x) => x.description).sort()).toEqual(['warden:vision-ds', 'warden:vision-reader']);
  });
});

describe('members mode with a nested group', () => {
  it('expands transitive members (users and service principals, enabled only) and follows nesting', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    await w.reconcile(a);
    expect(principalsAt(w, a)).toEqual([U(1), U(2), SP].sort());
    const types = Object.fromEntries(w.ra.at(a).map((x) => [x.principalId, x.principalType]));
    expect(types[SP]).toBe('ServicePrincipal');
    expect(types[U(1)]).toBe('User');
  });

  it('a user added to the nested group (pushed notification) gets an assignment; removed, loses it; manual ones stay', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const manual = w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: U(5), principalType: 'User' });
    await w.sweep();
    w.enqueued.length = 0;

    w.dir.addMember(NESTED, U(4));
    const receipt = await w.module.receiveNotifications(notification(NESTED, CLIENT_STATE, [{ id: U(4) }]));
    expect(receipt).toMatchObject({ status: 202, accepted: 1, rejected: 0, enqueued: [G] });
    expect(w.enqueued.map((i) => i.target).sort()).toEqual([DELTA_TARGET, G].sort());
    await w.drain();
    expect(principalsAt(w, a)).toEqual([U(1), U(2), U(4), U(5), SP].sort());

    w.dir.removeMember(NESTED, U(4));
    await w.module.receiveNotifications(notification(NESTED, CLIENT_STATE, [{ id: U(4), removed: true }]));
    await w.drain();
    expect(principalsAt(w, a)).toEqual([U(1), U(2), U(5), SP].sort());
    expect(w.ra.at(a).some((x) => x.name === manual.name)).toBe(true);
  });

  it('a user who is disabled gets nothing; one disabled later loses Warden’s assignment', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    await w.reconcile(a);
    expect(principalsAt(w, a)).not.toContain(U(3));
    w.dir.setAccountEnabled(U(1), false);
    await w.reconcile(G);
    expect(principalsAt(w, a)).not.toContain(U(1));
  });

  it('alerts a forbidden Owner assignment, and removes it when the policy says remove', async () => {
    for (const action of ['alert', 'remove'] as const) {
      const w = membersWorld(membersPolicy(action));
      const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
      const owner = w.ra.seed({ scope: a, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${OWNER}`, principalId: U(5), principalType: 'User' });
      const r = await w.reconcile(a);
      expect(w.alerter.sent.filter((f) => f.type === 'Warden.Rbac.ForbiddenAssignment').map((f) => f.subject)).toEqual([a]);
      expect(w.ra.at(a).some((x) => x.name === owner.name)).toBe(action === 'alert');
      expect(r.outcomes.filter((o) => o.change.action === 'deleteRoleAssignment')).toHaveLength(action === 'remove' ? 1 : 0);
    }
  });

  it('fetches member pages once per run across workspaces', async () => {
    const w = membersWorld();
    for (let i = 0; i < 4; i++) addWorkspace(w, 'rg-ml-vision', `ws-${i}`);
    await w.sweep();
    const pages = w.dir.calls.filter((c) => c.startsWith(`transitiveMembers ${G}`));
    expect(pages.length).toBe(Math.ceil(5 / w.dir.pageSize));
    expect(w.ra.writes()).toHaveLength(12);
  });

  it('a cached member list is replaced when a fresh read elsewhere changed it', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const b = addWorkspace(w, 'rg-ml-vision', 'ws-b');
    await w.sweep();
    w.dir.addMember(G, U(4));
    // The group target reads fresh and records the new fingerprint …
    await w.reconcile(G);
    expect(principalsAt(w, a)).toContain(U(4));
    // … so a later resource reconcile never prunes the new member with a stale cached list.
    w.ra.assignments.forEach((x, k) => {
      if (x.principalId === U(4) && x.scope === b) w.ra.assignments.delete(k);
    });
    await w.reconcile(b);
    expect(principalsAt(w, b)).toContain(U(4));
  });

  it('PrincipalNotFound on the first tries of a new principal still ends in the assignment', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    w.ra.notReplicated.set(U(1), 3);
    const r = await w.reconcile(a);
    expect(r.retryable).toBe(false);
    expect(principalsAt(w, a)).toContain(U(1));
    expect(w.sink.text()).toMatch(/not yet known to ARM; retrying/);
  });

  it('PrincipalNotFound beyond the retries is a retryable failure, not an alert, and the next run creates it', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    w.ra.notReplicated.set(U(1), 6);
    const r = await w.reconcile(a);
    expect(r.retryable).toBe(true);
    expect(w.alerter.sent.filter((f) => f.type.endsWith('ChangeFailed'))).toEqual([]);
    await w.reconcile(a);
    expect(principalsAt(w, a)).toContain(U(1));
  });

  it('429 with Retry-After after the SDK gave up is waited out and retried', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    w.ra.fail('create', 2, () => serviceError(429, 'TooManyRequests', 'slow down', { 'Retry-After': '0' }));
    const r = await w.reconcile(a);
    expect(r.outcomes.every((o) => o.outcome === 'applied')).toBe(true);
    expect(principalsAt(w, a)).toEqual([U(1), U(2), SP].sort());
  });

  it('409 RoleAssignmentExists counts as present', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const plan = await w.capability.plan(a);
    // Someone grants the same role to U1 between plan and apply.
    w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: U(1), principalType: 'User' });
    const outcomes = await w.capability.apply(plan);
    expect(outcomes.find((o) => (o.change.data as { principalId?: string }).principalId === U(1))).toMatchObject({ outcome: 'unchanged', result: 'exists' });
  });
});

describe('offboarding', () => {
  function withInstance(w: World, ws: string, user: string, state = 'Running'): string {
    const id = `${ws}/computes/ci-${user.slice(-2)}`;
    w.ml.addCompute({ id, name: `ci-${user.slice(-2)}`, workspaceId: ws, computeType: 'ComputeInstance', tags: {}, identity: { type: 'None', userAssignedIdentities: [] }, disableLocalAuth: false, assignedUserObjectId: user, state });
    return id;
  }

  it('members mode: a member who leaves has the compute instances assigned to them stopped, and it is alerted', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    await w.reconcile(a);
    const ci = withInstance(w, a, U(2));
    const other = withInstance(w, a, U(1));
    w.dir.removeMember(NESTED, U(2));
    const r = await w.reconcile(G);
    expect(r.outcomes.map((o) => o.change.action).sort()).toEqual(['deleteRoleAssignment', 'stopComputeInstance']);
    expect(w.ml.computes.get(ci.toLowerCase())?.state).toBe('Stopped');
    expect(w.ml.computes.get(other.toLowerCase())?.state).toBe('Running');
    expect(w.alerter.sent.map((f) => f.type)).toContain('Warden.Rbac.PrincipalOffboarded');
    expect((await w.reconcile(G)).plan.changes).toEqual([]);
  });

  it('a member who still reaches the workspace through another binding keeps their instance running', async () => {
    const w = makeWorld({
      mode: 'enforce',
      scopes: [`/subscriptions/${SUB}`],
      rbac: {
        bindings: [
          { id: 'vision', group: G, role: 'AzureML Data Scientist', principals: 'members' },
          { id: 'readers', group: OTHER_GROUP, role: 'Reader', principals: 'group' },
        ],
      },
    });
    w.dir.addUser(U(1)).addUser(U(5));
    w.dir.addGroup(G, { securityEnabled: false, members: [U(1), U(5)] });
    w.dir.addGroup(OTHER_GROUP, { members: [U(5)] });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    await w.reconcile(a);
    const ci = withInstance(w, a, U(5));
    w.dir.removeMember(G, U(5));
    const r = await w.reconcile(G);
    expect(r.outcomes.map((o) => o.change.action)).toEqual(['deleteRoleAssignment']);
    expect(w.ml.computes.get(ci.toLowerCase())?.state).toBe('Running');
  });

  it('group mode: the delta catch-up sees a member leave and the reconcile stops their instance', async () => {
    const w = makeWorld(groupPolicy());
    w.dir.addUser(U(1)).addUser(U(2));
    w.dir.addGroup(G, { securityEnabled: true, members: [U(1), U(2)] });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    await w.sweep();
    const ci = withInstance(w, a, U(2));
    w.enqueued.length = 0;
    w.dir.removeMember(G, U(2));
    const result = await w.module.catchUp();
    expect(result.enqueued).toEqual([G]);
    expect(result.offboardingCandidates).toBe(1);
    await w.drain();
    expect(w.ml.computes.get(ci.toLowerCase())?.state).toBe('Stopped');
    expect(await w.state.inner.list('rbac-offboard')).toEqual([]);
  });

  it('report mode alerts an offboarding but stops nothing', async () => {
    const w = membersWorld(membersPolicy('alert', 'report'));
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    w.ra.seed({ scope: a, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS}`, principalId: U(4), principalType: 'User', description: 'warden:vision' });
    const ci = withInstance(w, a, U(4));
    const r = await w.reconcile(a);
    expect(r.plan.changes.map((c) => c.action)).toContain('stopComputeInstance');
    expect(w.ml.computes.get(ci.toLowerCase())?.state).toBe('Running');
    expect(w.alerter.sent.map((f) => f.type)).toContain('Warden.Rbac.PrincipalOffboarded');
    expect(w.ml.writes()).toEqual([]);
  });
});

describe('targets', () => {
  it('lists every governed resource once plus the delta catch-up', async () => {
    const w = makeWorld(groupPolicy({ scopes: [`/subscriptions/${SUB}`, `/subscriptions/${SUB}/resourceGroups/rg-ml-vision`] }));
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a', { team: 'vision' });
    const b = addWorkspace(w, 'rg-other', 'ws-b');
    expect(await w.capability.listTargets()).toEqual([a, b, DELTA_TARGET]);
  });

  it('parses resource ids, compute ids (→ workspace), group ids and delta; refuses anything else', () => {
    const w = makeWorld(groupPolicy());
    const ws = wsId('rg', 'ws');
    expect(w.capability.parseTarget(`${ws}/computes/ci`)).toBe(ws);
    expect(w.capability.parseTarget(G.toUpperCase())).toBe(G);
    expect(w.capability.parseTarget('DELTA')).toBe(DELTA_TARGET);
    expect(() => w.capability.parseTarget('not-a-target')).toThrow(/rbac target/);
    expect(w.capability.inScope(wsId('rg', 'ws'))).toBe(true);
    expect(w.capability.inScope('/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/x')).toBe(false);
  });

  it('a group target covers the workspaces of the bindings of bound groups that hold it', async () => {
    const w = membersWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const r = await w.reconcile(NESTED);
    expect(r.plan.changes.map((c) => c.resource)).toEqual([a, a, a]);
    const unrelated = await w.reconcile(OTHER_GROUP);
    expect(unrelated.plan.changes).toEqual([]);
    expect(unrelated.plan.skipped[0]?.reason).toMatch(/neither bound nor nested/);
  });

  it('a deleted workspace plans nothing', async () => {
    const w = makeWorld(groupPolicy());
    const r = await w.reconcile(wsId('rg-ml-vision', 'gone'));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.skipped[0]?.reason).toMatch(/does not exist/);
  });
});

describe('a members binding over the size limit', () => {
  const LIMIT = 2;
  const seedWarden = (w: World, ws: string, principalId: string, bindingId = 'vision', role = DS): void => {
    w.ra.seed({ scope: ws, roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${role}`, principalId, principalType: 'User', description: `warden:${bindingId}` });
  };

  // membersWorld: G holds U(1), SP and (through NESTED) U(2) and the disabled U(3): three enabled principals.
  function overLimitWorld(policy: PolicyInput = membersPolicy()): World {
    const w = makeWorld(policy, { tuning: { maxMemberPrincipals: LIMIT } });
    w.dir.addUser(U(1)).addUser(U(2)).addUser(U(3), false).addUser(U(4)).addUser(U(5)).addServicePrincipal(SP);
    w.dir.addGroup(NESTED, { members: [U(2), U(3)] });
    w.dir.addGroup(G, { securityEnabled: true, members: [U(1), NESTED, SP] });
    w.dir.addGroup(OTHER_GROUP, { members: [U(5)] });
    return w;
  }

  it('plans nothing for its members, deletes none of its existing assignments, and warns once', async () => {
    const w = overLimitWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const b = addWorkspace(w, 'rg-ml-other', 'ws-b');
    seedWarden(w, a, U(1));
    // A former member's assignment would be pruned under the limit; over it, nothing is.
    seedWarden(w, a, U(4));
    const before = principalsAt(w, a);

    const reports = [await w.reconcile(a), await w.reconcile(G)];
    for (const r of reports) {
      expect(r.plan.changes).toEqual([]);
      const findings = r.plan.findings.filter((f) => f.type === 'Warden.Rbac.TooManyMembers');
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({ subject: G, severity: 'warning', details: { bindingId: 'vision', group: G, limit: LIMIT, principals: 'members' } });
      expect(findings[0]?.summary).toMatch(/3 enabled members, more than the 2/);
      expect(findings[0]?.summary).toMatch(/principals "group"/);
    }
    expect(principalsAt(w, a)).toEqual(before);
    expect(w.ra.at(b)).toEqual([]);
    expect(w.ra.calls.filter((c) => c.startsWith('create') || c.startsWith('delete'))).toEqual([]);
    expect(w.alerter.sent.map((f) => f.type)).toContain('Warden.Rbac.TooManyMembers');
    // The member count is recorded; the members themselves were streamed past, not kept.
    expect((await w.state.inner.get<{ count: number }>('rbac-members', G))?.value.count).toBe(3);
  });

  it('back under the limit, it assigns every member and prunes as before', async () => {
    const w = overLimitWorld();
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    seedWarden(w, a, U(4));
    expect((await w.reconcile(G)).plan.changes).toEqual([]);
    w.dir.removeMember(G, SP);
    const r = await w.reconcile(G);
    expect(r.plan.findings.map((f) => f.type)).not.toContain('Warden.Rbac.TooManyMembers');
    expect(principalsAt(w, a)).toEqual([U(1), U(2)].sort());
    expect((await w.reconcile(a)).plan.changes).toEqual([]);
  });

  it('applies to "auto" on a group that is not security-enabled, advising to make it one', async () => {
    const w = makeWorld(
      { mode: 'enforce', scopes: [`/subscriptions/${SUB}`], rbac: { bindings: [{ id: 'auto', group: G, role: 'AzureML Data Scientist', principals: 'auto' }] } },
      { tuning: { maxMemberPrincipals: LIMIT } },
    );
    w.dir.addUser(U(1)).addUser(U(2)).addUser(U(4));
    w.dir.addGroup(G, { securityEnabled: false, members: [U(1), U(2), U(4)] });
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    seedWarden(w, a, U(1), 'auto');
    const r = await w.reconcile(a);
    expect(r.plan.changes).toEqual([]);
    const f = r.plan.findings.find((x) => x.type === 'Warden.Rbac.TooManyMembers');
    expect(f).toMatchObject({ subject: G, severity: 'warning', details: { principals: 'auto', securityEnabled: false } });
    expect(f?.summary).toMatch(/security-enabled/);
    expect(principalsAt(w, a)).toEqual([U(1)]);
  });

  it('a member of the over-limit group losing another binding keeps their compute instance running', async () => {
    const w = overLimitWorld({
      mode: 'enforce',
      scopes: [`/subscriptions/${SUB}`],
      rbac: {
        bindings: [
          { id: 'vision', group: G, role: 'AzureML Data Scientist', principals: 'members' },
          { id: 'readers', group: OTHER_GROUP, role: 'Reader', principals: 'members' },
        ],
      },
    });
    w.dir.addMember(OTHER_GROUP, U(1));
    const a = addWorkspace(w, 'rg-ml-vision', 'ws-a');
    const ci = `${a}/computes/ci-01`;
    w.ml.addCompute({ id: ci, name: 'ci-01', workspaceId: a, computeType: 'ComputeInstance', tags: {}, identity: { type: 'None', userAssignedIdentities: [] }, disableLocalAuth: false, assignedUserObjectId: U(1), state: 'Running' });
    await w.reconcile(a);
    expect(principalsAt(w, a)).toEqual([U(1), U(5)].sort());
    w.dir.removeMember(OTHER_GROUP, U(1));
    const r = await w.reconcile(OTHER_GROUP);
    expect(r.outcomes.map((o) => o.change.action)).toEqual(['deleteRoleAssignment']);
    expect(w.ml.computes.get(ci.toLowerCase())?.state).toBe('Running');
  });
});
