import fc from 'fast-check';
import type { Plan } from '../../shared/capability';
import {
  FINDING_IDENTITY_MISSING,
  FINDING_LOCAL_AUTH_ENABLED,
  isExempt,
  judgeIdentity,
  planCompute,
} from '../../shared/compute/plan';
import { parsePolicy, type ComputePolicy, type Mode, type PolicyInput } from '../../shared/policy';
import type { Compute, ComputeIdentity } from '../../shared/ports/ml';

const SUB = '00000000-0000-0000-0000-000000000001';
const WS = `/subscriptions/${SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const UAI = `/subscriptions/${SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/warden-compute`;
const OTHER_UAI = `/subscriptions/${SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/someone-else`;

function computePolicy(c: NonNullable<PolicyInput['compute']> = {}): ComputePolicy {
  return parsePolicy({ scopes: [`/subscriptions/${SUB}`], compute: c }).policy.compute;
}

function cluster(over: Partial<Compute> = {}): Compute {
  return {
    id: `${WS}/computes/cc1`,
    name: 'cc1',
    workspaceId: WS,
    computeType: 'AmlCompute',
    location: 'westeurope',
    tags: {},
    provisioningState: 'Succeeded',
    identity: { type: 'None', userAssignedIdentities: [] },
    disableLocalAuth: true,
    remoteLoginPortPublicAccess: 'Disabled',
    scaleSettings: { minNodeCount: 0, maxNodeCount: 4, nodeIdleTimeBeforeScaleDown: 'PT120S' },
    ...over,
  };
}

function instance(over: Partial<Compute> = {}): Compute {
  return {
    id: `${WS}/computes/ci1`,
    name: 'ci1',
    workspaceId: WS,
    computeType: 'ComputeInstance',
    location: 'westeurope',
    tags: {},
    provisioningState: 'Succeeded',
    identity: { type: 'None', userAssignedIdentities: [] },
    disableLocalAuth: true,
    sshPublicAccess: 'Disabled',
    state: 'Running',
    ...over,
  };
}

function plan(compute: Compute | undefined, policy: ComputePolicy = computePolicy(), mode: Mode = 'enforce') {
  return planCompute({ target: compute?.id ?? `${WS}/computes/gone`, compute, policy, mode });
}

describe('judgeIdentity', () => {
  it.each([
    ['None', [], { type: 'SystemAssigned' }, false],
    ['SystemAssigned', [], { type: 'SystemAssigned' }, true],
    ['SystemAssigned', [], { type: 'UserAssigned', id: UAI }, true],
    ['SystemAssigned,UserAssigned', [OTHER_UAI], { type: 'SystemAssigned' }, true],
    ['UserAssigned', [UAI.toUpperCase()], { type: 'UserAssigned', id: UAI }, true],
    ['UserAssigned', [OTHER_UAI], { type: 'UserAssigned', id: UAI }, false],
    ['UserAssigned', [UAI], { type: 'SystemAssigned' }, false],
  ] as const)('%s %j against %j → ok=%s', (type, uais, desired, ok) => {
    expect(judgeIdentity({ identity: { type, userAssignedIdentities: [...uais] } }, desired).ok).toBe(ok);
  });
});

describe('isExempt', () => {
  it.each([
    [{ 'warden-exempt': 'true' }, true],
    [{ 'Warden-Exempt': '' }, true],
    [{ 'warden-exempt': 'FALSE' }, false],
    [{ other: 'x' }, false],
    [{}, false],
  ])('%j → %s', (tags, want) => {
    expect(isExempt(tags, 'warden-exempt')).toBe(want);
  });
});

describe('planCompute: clusters', () => {
  it('plans nothing for a cluster that already runs under the system-assigned identity', () => {
    const r = plan(cluster({ identity: { type: 'SystemAssigned', userAssignedIdentities: [] } }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings).toEqual([]);
    expect(r.recheck).toBeUndefined();
  });

  it('assigns the configured identity to a cluster without one, and reports it', () => {
    const r = plan(cluster());
    expect(r.plan.changes).toHaveLength(1);
    const [c] = r.plan.changes;
    expect(c).toMatchObject({ action: 'assignIdentity', resource: `${WS}/computes/cc1`, destructive: false, data: { identity: { type: 'SystemAssigned' } } });
    expect(c?.description).toContain("compute cluster 'cc1' in workspace 'ws1'");
    expect(r.plan.findings).toHaveLength(1);
    expect(r.plan.findings[0]).toMatchObject({ type: FINDING_IDENTITY_MISSING, subject: `${WS}/computes/cc1`, severity: 'warning' });
    expect(r.plan.findings[0]?.summary).toContain('runs without a managed identity');
    expect(r.plan.findings[0]?.actions.join(' ')).toContain('az ml compute update --name cc1');
  });

  it('assigns the policy’s user-assigned identity when the policy names one', () => {
    const r = plan(cluster(), computePolicy({ identity: { type: 'UserAssigned', id: UAI } }));
    expect(r.plan.changes[0]?.data).toEqual({ identity: { type: 'UserAssigned', id: UAI } });
  });

  it('treats another user-assigned identity as a violation, and replacing it as destructive', () => {
    const r = plan(cluster({ identity: { type: 'UserAssigned', userAssignedIdentities: [OTHER_UAI] } }), computePolicy({ identity: { type: 'UserAssigned', id: UAI } }));
    expect(r.plan.changes[0]).toMatchObject({ action: 'assignIdentity', destructive: true });
    expect(r.plan.findings[0]?.details).toMatchObject({ reason: 'unapprovedUserAssigned', userAssignedIdentities: [OTHER_UAI] });
  });

  it('scales a violating cluster to zero when the policy says so, once', () => {
    const p = computePolicy({ onViolation: { cluster: 'scale-to-zero' } });
    expect(plan(cluster(), p).plan.changes.map((c) => c.action)).toEqual(['scaleToZero']);
    const done = plan(cluster({ scaleSettings: { minNodeCount: 0, maxNodeCount: 0 } }), p);
    expect(done.plan.changes).toEqual([]);
    expect(done.plan.findings.map((f) => f.type)).toEqual([FINDING_IDENTITY_MISSING]);
  });

  it('deletes a violating cluster when the policy says so', () => {
    const r = plan(cluster(), computePolicy({ onViolation: { cluster: 'delete' } }));
    expect(r.plan.changes).toMatchObject([{ action: 'deleteCompute', destructive: true }]);
  });

  it('only alerts when the policy says alert', () => {
    const r = plan(cluster(), computePolicy({ onViolation: { cluster: 'alert' } }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings[0]?.actions[0]).toContain('Alert only');
  });

  it('reports local auth and public SSH when required off; assign-identity cannot fix them', () => {
    const p = computePolicy({ requireLocalAuthDisabled: true });
    const r = plan(cluster({ identity: { type: 'SystemAssigned', userAssignedIdentities: [] }, disableLocalAuth: false, remoteLoginPortPublicAccess: 'Enabled' }), p);
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings).toHaveLength(1);
    expect(r.plan.findings[0]).toMatchObject({ type: FINDING_LOCAL_AUTH_ENABLED, details: { disableLocalAuth: false, sshPublicAccess: 'Enabled' } });
    expect(r.plan.findings[0]?.summary).toContain('local authentication (keys) and public SSH access');
    expect(r.plan.findings[0]?.actions[0]).toContain('cannot be changed on an existing cluster');
  });

  it('quarantines a cluster with local auth when the remedy is scale-to-zero', () => {
    const p = computePolicy({ requireLocalAuthDisabled: true, onViolation: { cluster: 'scale-to-zero' } });
    const r = plan(cluster({ identity: { type: 'SystemAssigned', userAssignedIdentities: [] }, disableLocalAuth: false }), p);
    expect(r.plan.changes.map((c) => c.action)).toEqual(['scaleToZero']);
  });

  it('ignores local auth unless the policy requires it off', () => {
    const r = plan(cluster({ identity: { type: 'SystemAssigned', userAssignedIdentities: [] }, disableLocalAuth: false }));
    expect(r.plan.findings).toEqual([]);
  });

  it('ignores identity when the policy does not require it', () => {
    expect(plan(cluster(), computePolicy({ requireManagedIdentity: false })).plan).toMatchObject({ changes: [], findings: [] });
  });
});

describe('planCompute: instances', () => {
  it('stops a running instance without identity (its identity cannot be changed)', () => {
    const r = plan(instance(), computePolicy({ onViolation: { instance: 'stop' } }));
    expect(r.plan.changes).toMatchObject([{ action: 'stopCompute', destructive: true, data: { previousState: 'Running' } }]);
    expect(r.plan.findings[0]?.actions.join(' ')).toContain('recreate it');
  });

  it.each(['Stopped', 'Stopping'])('does not stop an instance that is %s, but still reports it', (state) => {
    const r = plan(instance({ state }), computePolicy({ onViolation: { instance: 'stop' } }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings).toHaveLength(1);
  });

  it.each(['Starting', 'Creating', 'SettingUp'])('re-checks an instance that is %s instead of judging it', (state) => {
    const r = plan(instance({ state }), computePolicy({ onViolation: { instance: 'stop' } }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings).toEqual([]);
    expect(r.recheck?.why).toContain(state.toLowerCase());
  });

  it('deletes a violating instance when the policy says so', () => {
    expect(plan(instance(), computePolicy({ onViolation: { instance: 'delete' } })).plan.changes.map((c) => c.action)).toEqual(['deleteCompute']);
  });

  it('never plans assign-identity for an instance', () => {
    const r = plan(instance(), computePolicy({ onViolation: { cluster: 'assign-identity', instance: 'alert' } }));
    expect(r.plan.changes).toEqual([]);
  });

  it('reports public SSH on an instance', () => {
    const r = plan(instance({ identity: { type: 'SystemAssigned', userAssignedIdentities: [] }, sshPublicAccess: 'Enabled' }), computePolicy({ requireLocalAuthDisabled: true, onViolation: { instance: 'stop' } }));
    expect(r.plan.findings.map((f) => f.type)).toEqual([FINDING_LOCAL_AUTH_ENABLED]);
    expect(r.plan.changes.map((c) => c.action)).toEqual(['stopCompute']);
  });
});

describe('planCompute: states and exemptions', () => {
  it.each(['Creating', 'Updating'])('plans nothing for a compute still %s and asks for a re-check', (prov) => {
    const r = plan(cluster({ provisioningState: prov }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings).toEqual([]);
    expect(r.plan.skipped[0]?.reason).toContain(prov.toLowerCase());
    expect(r.recheck).toEqual({ why: `still ${prov.toLowerCase()}` });
  });

  it.each(['Deleting', 'Failed', 'Canceled'])('leaves a %s compute alone without a re-check', (prov) => {
    const r = plan(cluster({ provisioningState: prov }));
    expect(r.plan.changes).toEqual([]);
    expect(r.recheck).toBeUndefined();
    expect(r.plan.skipped).toHaveLength(1);
  });

  it('plans nothing for a compute that does not exist', () => {
    const r = plan(undefined);
    expect(r.plan).toMatchObject({ changes: [], findings: [] });
    expect(r.plan.skipped[0]?.reason).toContain('does not exist');
  });

  it('leaves attached compute types alone', () => {
    const r = plan(cluster({ computeType: 'AKS' }));
    expect(r.plan).toMatchObject({ changes: [], findings: [] });
    expect(r.plan.skipped[0]?.reason).toContain('AKS');
  });

  it('reports an exempt compute but changes nothing', () => {
    const r = plan(cluster({ tags: { 'Warden-Exempt': 'yes' } }), computePolicy({ requireLocalAuthDisabled: true }));
    expect(r.plan.changes).toEqual([]);
    expect(r.plan.findings[0]).toMatchObject({ type: FINDING_IDENTITY_MISSING, severity: 'info', details: { exempt: true } });
    expect(r.plan.findings[0]?.actions[0]).toContain("Exempt (tag 'warden-exempt')");
    expect(r.plan.skipped[0]?.reason).toContain('warden-exempt');
  });

  it('still plans the change in report mode (reconcile applies nothing) and says so', () => {
    const r = plan(cluster(), computePolicy(), 'report');
    expect(r.plan.changes).toHaveLength(1);
    expect(r.plan.findings[0]?.actions[0]).toContain('Report mode: Warden would');
  });
});

// ------------------------------------------------------------ properties

const IDENTITIES: ComputeIdentity[] = [
  { type: 'None', userAssignedIdentities: [] },
  { type: 'SystemAssigned', userAssignedIdentities: [] },
  { type: 'UserAssigned', userAssignedIdentities: [UAI] },
  { type: 'UserAssigned', userAssignedIdentities: [OTHER_UAI] },
  { type: 'SystemAssigned,UserAssigned', userAssignedIdentities: [OTHER_UAI] },
];
const identityArb = fc.constantFrom(...IDENTITIES).map((i) => structuredClone(i));

const computeArb: fc.Arbitrary<Compute> = fc
  .record({
    kind: fc.constantFrom('AmlCompute', 'ComputeInstance', 'Kubernetes'),
    identity: identityArb,
    disableLocalAuth: fc.boolean(),
    ssh: fc.constantFrom('Enabled', 'Disabled', undefined),
    state: fc.constantFrom('Running', 'JobRunning', 'Stopped', 'Stopping', 'Unknown'),
    tags: fc.constantFrom({}, { 'warden-exempt': 'true' }, { 'warden-exempt': 'false' }, { team: 'vision' }),
    min: fc.integer({ min: 0, max: 2 }),
    max: fc.integer({ min: 0, max: 4 }),
  })
  .map(({ kind, identity, disableLocalAuth, ssh, state, tags, min, max }) =>
    kind === 'ComputeInstance'
      ? instance({ identity, disableLocalAuth, state, tags, ...(ssh ? { sshPublicAccess: ssh } : {}) })
      : cluster({ computeType: kind, identity, disableLocalAuth, tags, scaleSettings: { minNodeCount: Math.min(min, max), maxNodeCount: max }, ...(ssh ? { remoteLoginPortPublicAccess: ssh } : {}) }),
  );

const policyArb: fc.Arbitrary<ComputePolicy> = fc
  .record({
    requireManagedIdentity: fc.boolean(),
    identity: fc.constantFrom({ type: 'SystemAssigned' as const }, { type: 'UserAssigned' as const, id: UAI }),
    requireLocalAuthDisabled: fc.boolean(),
    cluster: fc.constantFrom('assign-identity' as const, 'scale-to-zero' as const, 'delete' as const, 'alert' as const),
    instance: fc.constantFrom('stop' as const, 'delete' as const, 'alert' as const),
  })
  .map(({ cluster: c, instance: i, ...rest }) => computePolicy({ ...rest, onViolation: { cluster: c, instance: i } }));

/** What each change does to the world, as the adapter does it. */
function applyModel(c: Compute, p: Plan): Compute | undefined {
  let out: Compute | undefined = structuredClone(c);
  for (const ch of p.changes) {
    if (!out) break;
    if (ch.action === 'assignIdentity') {
      const id = ch.data.identity as { type: string; id?: string };
      out.identity = id.type === 'SystemAssigned' ? { type: 'SystemAssigned', userAssignedIdentities: [] } : { type: 'UserAssigned', userAssignedIdentities: [id.id ?? ''] };
    } else if (ch.action === 'scaleToZero') out.scaleSettings = { minNodeCount: 0, maxNodeCount: 0 };
    else if (ch.action === 'stopCompute') out.state = 'Stopped';
    else if (ch.action === 'deleteCompute') out = undefined;
  }
  return out;
}

describe('planCompute properties', () => {
  it('is idempotent: after applying its plan, the next plan changes nothing', () => {
    fc.assert(
      fc.property(computeArb, policyArb, (c, p) => {
        const first = plan(c, p);
        const after = applyModel(c, first.plan);
        const second = planCompute({ target: c.id, compute: after, policy: p, mode: 'enforce' });
        expect(second.plan.changes).toEqual([]);
      }),
    );
  });

  it('is deterministic: the same input gives the same plan, with no times in findings', () => {
    fc.assert(
      fc.property(computeArb, policyArb, (c, p) => {
        const a = plan(c, p);
        const b = plan(structuredClone(c), p);
        expect(a).toEqual(b);
        expect(JSON.stringify(a.plan.findings)).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:/);
      }),
    );
  });

  it('never changes an exempt compute, and never writes while the identity and auth comply', () => {
    fc.assert(
      fc.property(computeArb, policyArb, (c, p) => {
        const r = plan(c, p);
        if (isExempt(c.tags, p.exemptTag)) expect(r.plan.changes).toEqual([]);
        if (r.plan.findings.length === 0) expect(r.plan.changes).toEqual([]);
        for (const ch of r.plan.changes) expect(ch.resource).toBe(c.id);
      }),
    );
  });

  it('has a finding for every change, and one finding per type at most', () => {
    fc.assert(
      fc.property(computeArb, policyArb, (c, p) => {
        const r = plan(c, p);
        if (r.plan.changes.length > 0) expect(r.plan.findings.length).toBeGreaterThan(0);
        const types = r.plan.findings.map((f) => f.type);
        expect(new Set(types).size).toBe(types.length);
      }),
    );
  });
});
