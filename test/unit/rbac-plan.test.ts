import fc from 'fast-check';
import type { Compute } from '../../shared/ports/ml';
import { roleGuidOf, type RoleAssignment } from '../../shared/ports/rbac';
import { bindingMatches, globToRegExp, isExempt } from '../../shared/rbac/match';
import {
  assignmentName,
  desiredFor,
  forbiddenRuleFor,
  markOf,
  plan,
  planOffboarding,
  toChanges,
  type DesiredAssignment,
  type ForbiddenMatcher,
  type PlanPolicy,
  type ResolvedBinding,
} from '../../shared/rbac/plan';

const SUB = '11111111-1111-1111-1111-111111111111';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-ml-vision`;
const WS1 = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const WS2 = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws2`;
const DS = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';
const G1 = 'aaaaaaaa-0000-4000-8000-000000000001';
const U1 = 'bbbbbbbb-0000-4000-8000-000000000001';
const U2 = 'bbbbbbbb-0000-4000-8000-000000000002';

const roleId = (guid: string): string => `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;

let n = 0;
function ra(scope: string, guid: string, principalId: string, extra: Partial<RoleAssignment> = {}): RoleAssignment {
  const name = extra.name ?? `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
  return {
    id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
    name,
    scope,
    roleDefinitionId: roleId(guid),
    principalId,
    principalType: 'User',
    description: undefined,
    condition: undefined,
    ...extra,
  };
}

const groupBinding = (id = 'vision', roleGuid = DS): ResolvedBinding => ({ id, groupId: G1, roleGuid, roleName: 'AzureML Data Scientist', mode: 'group', principals: [{ id: G1, type: 'Group' }] });
const membersBinding = (ids: string[], id = 'vision'): ResolvedBinding => ({
  id,
  groupId: G1,
  roleGuid: DS,
  roleName: 'AzureML Data Scientist',
  mode: 'members',
  principals: ids.map((p) => ({ id: p, type: 'User' as const })),
});

const policy = (p: Partial<PlanPolicy> = {}): PlanPolicy => ({ prune: 'managed', forbidden: [], ...p });
const ownerRule = (action: 'alert' | 'remove', principalTypes?: string[]): ForbiddenMatcher => ({ role: 'Owner', roleGuids: new Set([OWNER]), principalTypes, action });

describe('markOf / assignmentName', () => {
  it.each([
    ['warden:vision', 'vision'],
    [' warden:a.b-c_d ', 'a.b-c_d'],
    ['warden:', undefined],
    ['created by warden:vision', undefined],
    ['Warden:vision', undefined],
    [undefined, undefined],
  ])('markOf(%p) is %p', (d, want) => {
    expect(markOf(d)).toBe(want);
  });

  it('names an assignment deterministically from scope, role and principal, case-insensitively', () => {
    const a = assignmentName(WS1, DS, U1);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(assignmentName(WS1.toUpperCase(), DS.toUpperCase(), U1.toUpperCase())).toBe(a);
    expect(assignmentName(WS2, DS, U1)).not.toBe(a);
    expect(assignmentName(WS1, READER, U1)).not.toBe(a);
    expect(assignmentName(WS1, DS, U2)).not.toBe(a);
  });
});

describe('matching', () => {
  const ws = { id: WS1, name: 'ws1', type: 'Microsoft.MachineLearningServices/workspaces', subscriptionId: SUB, resourceGroup: 'rg-ml-vision', tags: { Team: 'vision' } };
  const b = (match: object, resourceType = 'Microsoft.MachineLearningServices/workspaces') => ({ resourceType, match });
  it.each([
    [{}, true],
    [{ tags: { team: 'vision' } }, true],
    [{ tags: { team: 'Vision' } }, false],
    [{ tags: { team: 'vision', env: 'prod' } }, false],
    [{ resourceGroups: ['rg-ml-*'] }, true],
    [{ resourceGroups: ['RG-ML-VIS?ON'] }, true],
    [{ resourceGroups: ['rg-other'] }, false],
    [{ names: ['ws*'], resourceGroups: ['rg-*'] }, true],
    [{ names: ['ws2'] }, false],
  ])('match %j → %p', (match, want) => {
    expect(bindingMatches(b(match), ws)).toBe(want);
  });
  it('compares resource types case-insensitively and refuses other types', () => {
    expect(bindingMatches(b({}, 'microsoft.machinelearningservices/WORKSPACES'), ws)).toBe(true);
    expect(bindingMatches(b({}, 'Microsoft.MachineLearningServices/registries'), ws)).toBe(false);
  });
  it('escapes regex characters in globs', () => {
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a(b)').test('a(b)')).toBe(true);
  });
  it('treats the exemption tag as set unless it says false', () => {
    expect(isExempt({ ...ws, tags: { 'Warden-Exempt': 'yes' } }, 'warden-exempt')).toBe(true);
    expect(isExempt({ ...ws, tags: { 'warden-exempt': 'false' } }, 'warden-exempt')).toBe(false);
    expect(isExempt(ws, 'warden-exempt')).toBe(false);
  });
});

describe('desiredFor', () => {
  it('wants one assignment per (role, principal); the smallest binding id names a duplicate', () => {
    const d = desiredFor(WS1, [membersBinding([U1, U2], 'zeta'), membersBinding([U1], 'alpha'), groupBinding('g')]);
    expect(d).toHaveLength(3);
    expect(d.find((x) => x.principalId === U1)?.bindingId).toBe('alpha');
    expect(d.find((x) => x.principalId === G1)?.principalType).toBe('Group');
  });
});

describe('plan', () => {
  it('group mode: creates one assignment with a deterministic name, warden mark and principalType', () => {
    const p = plan(desiredFor(WS1, [groupBinding()]), { resources: [WS1], assignments: [] }, policy());
    expect(p.deletes).toEqual([]);
    expect(p.creates).toEqual([
      {
        bindingId: 'vision',
        roleName: 'AzureML Data Scientist',
        spec: { scope: WS1, name: assignmentName(WS1, DS, G1), roleDefinitionId: roleId(DS), principalId: G1, principalType: 'Group', description: 'warden:vision' },
      },
    ]);
  });

  it('counts an assignment anyone made at the resource scope as present (role compared by GUID)', () => {
    const manual = ra(WS1, DS, G1, { principalType: 'Group', roleDefinitionId: `/providers/Microsoft.Authorization/roleDefinitions/${DS.toUpperCase()}` });
    const p = plan(desiredFor(WS1, [groupBinding()]), { resources: [WS1], assignments: [manual] }, policy());
    expect(p.creates).toEqual([]);
    expect(p.deletes).toEqual([]);
  });

  it('inherited assignments satisfy nothing and are never touched, even when Warden-marked', () => {
    const inherited = ra(RG, DS, G1, { principalType: 'Group', description: 'warden:vision' });
    const inheritedStale = ra(`/subscriptions/${SUB}`, DS, U2, { description: 'warden:old' });
    const p = plan(desiredFor(WS1, [groupBinding()]), { resources: [WS1], assignments: [inherited, inheritedStale] }, policy());
    expect(p.creates).toHaveLength(1);
    expect(p.deletes).toEqual([]);
  });

  it('prunes Warden-made assignments no binding wants, only with prune: managed', () => {
    const stale = ra(WS1, DS, U2, { description: 'warden:vision' });
    const manual = ra(WS1, DS, 'cccccccc-0000-4000-8000-000000000009');
    const actual = { resources: [WS1], assignments: [stale, manual] };
    const desired = desiredFor(WS1, [membersBinding([U1])]);
    const managed = plan(desired, actual, policy());
    expect(managed.deletes.map((d) => [d.assignment.name, d.reason, d.bindingId])).toEqual([[stale.name, 'unwanted', 'vision']]);
    const none = plan(desired, actual, policy({ prune: 'none' }));
    expect(none.deletes).toEqual([]);
  });

  it('keeps the assignments of bindings whose desired state is unknown', () => {
    const stale = ra(WS1, DS, U2, { description: 'warden:broken' });
    const p = plan([], { resources: [WS1], assignments: [stale] }, policy({ keepBindings: new Set(['broken']) }));
    expect(p.deletes).toEqual([]);
  });

  it('alerts a forbidden assignment; removes it (even unmarked) only when the rule says remove', () => {
    const owner = ra(WS1, OWNER, U1);
    const alert = plan([], { resources: [WS1], assignments: [owner] }, policy({ forbidden: [ownerRule('alert', ['User'])] }));
    expect(alert.deletes).toEqual([]);
    expect(alert.findings).toHaveLength(1);
    expect(alert.findings[0]).toMatchObject({ type: 'Warden.Rbac.ForbiddenAssignment', subject: WS1, severity: 'critical', details: { action: 'alert', managedByWarden: false } });
    const remove = plan([], { resources: [WS1], assignments: [owner] }, policy({ forbidden: [ownerRule('alert'), ownerRule('remove', ['User'])] }));
    expect(remove.deletes.map((d) => [d.assignment.name, d.reason])).toEqual([[owner.name, 'forbidden']]);
  });

  it('matches forbidden rules on principal type', () => {
    const owner = ra(WS1, OWNER, G1, { principalType: 'Group' });
    expect(plan([], { resources: [WS1], assignments: [owner] }, policy({ forbidden: [ownerRule('remove', ['User'])] })).findings).toEqual([]);
    expect(forbiddenRuleFor({ roleGuid: OWNER, principalType: undefined }, [ownerRule('alert', ['User'])])).toBeUndefined();
    expect(forbiddenRuleFor({ roleGuid: OWNER.toUpperCase(), principalType: 'user' }, [ownerRule('alert', ['User'])])?.action).toBe('alert');
  });

  it('never grants what a forbidden rule forbids, and says so', () => {
    const owners: ResolvedBinding = { ...membersBinding([U1, U2], 'admins'), roleGuid: OWNER, roleName: 'Owner' };
    const p = plan(desiredFor(WS1, [owners]), { resources: [WS1], assignments: [] }, policy({ forbidden: [ownerRule('alert', ['User'])] }));
    expect(p.creates).toEqual([]);
    expect(p.findings).toEqual([expect.objectContaining({ type: 'Warden.Rbac.ForbiddenBinding', details: { bindingId: 'admins', rule: 'Owner', principals: 2 } })]);
  });

  it('an exempt resource is reported, never changed', () => {
    const stale = ra(WS1, DS, U2, { description: 'warden:vision' });
    const owner = ra(WS1, OWNER, U1);
    const p = plan(desiredFor(WS1, [membersBinding([U1])]), { resources: [WS1], assignments: [stale, owner] }, policy({ exempt: new Set([WS1.toLowerCase()]), forbidden: [ownerRule('remove')] }));
    expect(p.creates).toEqual([]);
    expect(p.deletes).toEqual([]);
    expect(p.skipped).toHaveLength(2);
    expect(p.findings.map((f) => f.type)).toEqual(['Warden.Rbac.ForbiddenAssignment']);
    expect(p.findings[0]?.summary).toMatch(/exempt/);
  });

  it('is deterministic regardless of input order', () => {
    const desired = desiredFor(WS1, [membersBinding([U1, U2, G1.replace('a', 'd')])]);
    const stale = [ra(WS1, DS, 'eeeeeeee-0000-4000-8000-000000000001', { description: 'warden:x' }), ra(WS1, DS, 'eeeeeeee-0000-4000-8000-000000000002', { description: 'warden:x' })];
    const a = plan(desired, { resources: [WS1], assignments: stale }, policy());
    const b = plan([...desired].reverse(), { resources: [WS1], assignments: [...stale].reverse() }, policy());
    expect(b).toEqual(a);
  });
});

describe('planOffboarding', () => {
  const compute = (name: string, extra: Partial<Compute>): Compute => ({
    id: `${WS1}/computes/${name}`,
    name,
    workspaceId: WS1,
    computeType: 'ComputeInstance',
    tags: {},
    identity: { type: 'None', userAssignedIdentities: [] },
    disableLocalAuth: false,
    ...extra,
  });
  it('stops the running compute instances assigned to a principal that lost the workspace, and alerts', () => {
    const computes = [
      compute('ci-u1', { assignedUserObjectId: U1.toUpperCase(), state: 'Running' }),
      compute('ci-u1-off', { assignedUserObjectId: U1, state: 'Stopped' }),
      compute('ci-u2', { assignedUserObjectId: U2, state: 'Running' }),
      compute('cluster', { computeType: 'AmlCompute', assignedUserObjectId: U1, state: 'Running' }),
    ];
    const { stops, findings } = planOffboarding([{ workspaceId: WS1, principalId: U1, principalType: 'User', computes }]);
    expect(stops.map((s) => s.computeName)).toEqual(['ci-u1']);
    expect(findings).toEqual([expect.objectContaining({ type: 'Warden.Rbac.PrincipalOffboarded', subject: WS1, severity: 'warning' })]);
  });
  it('says nothing when nothing is running', () => {
    expect(planOffboarding([{ workspaceId: WS1, principalId: U1, principalType: 'User', computes: [compute('ci', { assignedUserObjectId: U1, state: 'Stopped' })] }])).toEqual({ stops: [], findings: [] });
  });
});

describe('toChanges', () => {
  it('gives deterministic ids, readable descriptions and marks deletes and stops destructive', () => {
    const stale = ra(WS1, DS, U2, { description: 'warden:vision' });
    const p = plan(desiredFor(WS1, [groupBinding()]), { resources: [WS1], assignments: [stale] }, policy({ roleNames: new Map([[DS, 'AzureML Data Scientist']]) }));
    const stop = { workspaceId: WS1, principalId: U2, principalType: 'User' as const, computeId: `${WS1}/computes/ci`, computeName: 'ci', state: 'Running' };
    const a = toChanges(WS1, p, [stop]);
    const b = toChanges(WS1, p, [stop]);
    expect(a.map((c) => c.id)).toEqual(b.map((c) => c.id));
    expect(new Set(a.map((c) => c.id)).size).toBe(3);
    expect(a.map((c) => [c.action, c.destructive])).toEqual([
      ['createRoleAssignment', false],
      ['deleteRoleAssignment', true],
      ['stopComputeInstance', true],
    ]);
    expect(a[0]?.description).toBe(`Create role assignment 'AzureML Data Scientist' for Group ${G1} on ws1 (binding vision)`);
    expect(a[1]?.description).toContain("Delete role assignment 'AzureML Data Scientist'");
  });
});

describe('plan properties', () => {
  const scopes = [WS1, WS2];
  const parents = [RG, `/subscriptions/${SUB}`];
  const roles = [DS, READER, OWNER];
  const principals = ['p1', 'p2', 'p3', 'p4', 'p5'].map((p, i) => `cccccccc-0000-4000-8000-00000000000${i}`);
  const bindingIds = ['b1', 'b2', 'b3'];

  const desiredArb = fc.uniqueArray(
    fc.record({ scope: fc.constantFrom(...scopes), role: fc.constantFrom(...roles), principal: fc.constantFrom(...principals), binding: fc.constantFrom(...bindingIds), type: fc.constantFrom('User', 'Group', 'ServicePrincipal') }),
    { selector: (d) => `${d.scope}|${d.role}|${d.principal}`, maxLength: 12 },
  ).map((ds) =>
    ds.map((d): DesiredAssignment => ({ scope: d.scope, roleGuid: d.role, roleName: d.role, principalId: d.principal, principalType: d.type, bindingId: d.binding })),
  );
  const actualArb = fc
    .uniqueArray(
      fc.record({
        scope: fc.constantFrom(...scopes, ...parents),
        role: fc.constantFrom(...roles),
        principal: fc.constantFrom(...principals),
        description: fc.constantFrom(undefined, 'warden:b1', 'warden:b2', 'warden:gone', 'manual', 'warden:'),
        type: fc.constantFrom('User', 'Group', undefined),
      }),
      { selector: (a) => `${a.scope}|${a.role}|${a.principal}`, maxLength: 15 },
    )
    .map((as) => as.map((a) => ra(a.scope, a.role, a.principal, { description: a.description, principalType: a.type })));
  const policyArb = fc.record({
    prune: fc.constantFrom<'managed' | 'none'>('managed', 'none'),
    forbidden: fc.subarray([ownerRule('alert', ['User']), ownerRule('remove', ['Group']), { role: 'Reader', roleGuids: new Set([READER]), principalTypes: undefined, action: 'remove' as const }]),
    exempt: fc.subarray([WS2.toLowerCase()]).map((x) => new Set(x)),
  });

  /** What ARM holds after the plan is applied. */
  const applyPlan = (actual: RoleAssignment[], p: ReturnType<typeof plan>): RoleAssignment[] => {
    const gone = new Set(p.deletes.map((d) => d.assignment.id));
    const after = actual.filter((a) => !gone.has(a.id));
    for (const c of p.creates) {
      after.push(ra(c.spec.scope, roleGuidOf(c.spec.roleDefinitionId), c.spec.principalId, { name: c.spec.name, description: c.spec.description, principalType: c.spec.principalType }));
    }
    return after;
  };

  it('applying a plan and planning again gives no creates and no deletes', () => {
    fc.assert(
      fc.property(desiredArb, actualArb, policyArb, (desired, actual, pol) => {
        const first = plan(desired, { resources: scopes, assignments: actual }, pol);
        const second = plan(desired, { resources: scopes, assignments: applyPlan(actual, first) }, pol);
        expect(second.creates).toEqual([]);
        expect(second.deletes).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('never deletes an unmarked or inherited assignment, except one a forbidden rule says to remove', () => {
    fc.assert(
      fc.property(desiredArb, actualArb, policyArb, (desired, actual, pol) => {
        const p = plan(desired, { resources: scopes, assignments: actual }, pol);
        for (const d of p.deletes) {
          expect(scopes.map((s) => s.toLowerCase())).toContain(d.assignment.scope.toLowerCase());
          expect(pol.exempt.has(d.assignment.scope.toLowerCase())).toBe(false);
          if (markOf(d.assignment.description) === undefined) {
            const rule = forbiddenRuleFor({ roleGuid: roleGuidOf(d.assignment.roleDefinitionId), principalType: d.assignment.principalType }, pol.forbidden);
            expect(rule?.action).toBe('remove');
          }
        }
        const forbiddenFree = plan(desired, { resources: scopes, assignments: actual }, { ...pol, forbidden: [] });
        for (const d of forbiddenFree.deletes) expect(markOf(d.assignment.description)).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });

  it('creates only what is wanted and missing, never twice, and only at covered scopes', () => {
    fc.assert(
      fc.property(desiredArb, actualArb, policyArb, (desired, actual, pol) => {
        const p = plan(desired, { resources: scopes, assignments: actual }, pol);
        const names = p.creates.map((c) => c.spec.name);
        expect(new Set(names).size).toBe(names.length);
        for (const c of p.creates) {
          expect(c.spec.description).toMatch(/^warden:b[123]$/);
          expect(c.spec.principalType).toBeDefined();
          expect(scopes).toContain(c.spec.scope);
        }
      }),
      { numRuns: 200 },
    );
  });
});
