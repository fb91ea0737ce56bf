import type { Capability, CapabilityName } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createComputeCapability } from '../../shared/compute/capability';
import type { FollowUps } from '../../shared/compute/followup';
import { MemoryMlResources } from '../../shared/compute/memoryMl';
import { InputError } from '../../shared/errors';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import type { Compute } from '../../shared/ports/ml';
import { reconcile } from '../../shared/reconcile';

const SUB = '00000000-0000-0000-0000-000000000001';
const OUT_SUB = '00000000-0000-0000-0000-000000000009';
const WS = `/subscriptions/${SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const OUT_WS = `/subscriptions/${OUT_SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/other`;

function compute(name: string, over: Partial<Compute> = {}, ws = WS): Compute {
  return {
    id: `${ws}/computes/${name}`,
    name,
    workspaceId: ws,
    computeType: 'AmlCompute',
    tags: {},
    provisioningState: 'Succeeded',
    identity: { type: 'None', userAssignedIdentities: [] },
    disableLocalAuth: true,
    scaleSettings: { minNodeCount: 0, maxNodeCount: 2 },
    ...over,
  };
}

function setup(policyInput: Partial<PolicyInput> = {}) {
  const policy = parsePolicy({ mode: 'enforce', scopes: [`/subscriptions/${SUB}`], ...policyInput }).policy;
  const ml = new MemoryMlResources();
  ml.addWorkspace({ id: WS, name: 'ws1', subscriptionId: SUB, resourceGroup: 'rg-ml', location: 'westeurope', tags: {} });
  ml.addWorkspace({ id: OUT_WS, name: 'other', subscriptionId: OUT_SUB, resourceGroup: 'rg', location: 'westeurope', tags: {} });
  const rechecks: Array<{ target: string; why: string }> = [];
  const followUps: FollowUps = {
    schedule: async (_cap, target, why) => {
      rechecks.push({ target, why });
      return { scheduled: true, attempt: 1, delayMs: 30_000 };
    },
  };
  const sink = memorySink();
  const logger = createLogger(sink);
  const cap = createComputeCapability({ policy, ml, followUps, logger, concurrency: 4 });
  const audit = new MemoryAuditLog();
  const alerter = new MemoryAlerter();
  const run = (target: string, dryRun = false) =>
    reconcile(
      { capability: 'compute', target, trigger: { kind: 'event', id: 'evt-1' }, dryRun },
      {
        capabilities: { compute: cap } as unknown as Record<CapabilityName, Capability>,
        audit,
        alerter,
        mode: policy.mode,
        logger,
        clock: new ManualClock(),
      },
    );
  return { policy, ml, cap, rechecks, audit, alerter, run, sink };
}

describe('compute capability', () => {
  it('fixes a cluster without identity, then plans nothing on the second run', async () => {
    const { ml, run, alerter, audit } = setup();
    ml.addCompute(compute('cc1'));
    const first = await run(`${WS}/computes/cc1`);
    expect(first.outcomes.map((o) => [o.change.action, o.outcome])).toEqual([['assignIdentity', 'applied']]);
    expect(ml.computes.get(`${WS}/computes/cc1`.toLowerCase())?.identity.type).toBe('SystemAssigned');
    expect(alerter.sent.map((f) => f.type)).toEqual(['Warden.Compute.IdentityMissing']);
    expect(audit.records.map((r) => r.action)).toEqual(['assignIdentity', 'finding']);

    const second = await run(`${WS}/computes/cc1`);
    expect(second.plan.changes).toEqual([]);
    expect(second.plan.findings).toEqual([]);
    expect(ml.writes()).toHaveLength(1);
  });

  it('writes nothing in report mode, but audits and alerts', async () => {
    const { ml, run, alerter, audit } = setup({ mode: 'report' });
    ml.addCompute(compute('cc1'));
    const r = await run(`${WS}/computes/cc1`);
    expect(r.outcomes.map((o) => o.outcome)).toEqual(['planned']);
    expect(ml.writes()).toEqual([]);
    expect(alerter.sent).toHaveLength(1);
    expect(audit.records.find((a) => a.action === 'assignIdentity')?.outcome).toBe('planned');
  });

  it('writes nothing for an exempt compute, and alerts it', async () => {
    const { ml, run, alerter } = setup();
    ml.addCompute(compute('cc1', { tags: { 'warden-exempt': 'true' } }));
    const r = await run(`${WS}/computes/cc1`);
    expect(r.plan.changes).toEqual([]);
    expect(ml.writes()).toEqual([]);
    expect(alerter.sent[0]?.details).toMatchObject({ exempt: true });
  });

  it('stops an instance and scales/deletes clusters as configured', async () => {
    const { ml, run } = setup({ compute: { onViolation: { cluster: 'scale-to-zero', instance: 'stop' } } });
    ml.addCompute(compute('ci1', { computeType: 'ComputeInstance', state: 'Running' }));
    ml.addCompute(compute('cc1'));
    await run(`${WS}/computes/ci1`);
    await run(`${WS}/computes/cc1`);
    expect(ml.writes()).toEqual([`stopCompute ${WS}/computes/ci1`, `scaleToZero ${WS}/computes/cc1`]);
    expect(ml.computes.get(`${WS}/computes/ci1`.toLowerCase())?.state).toBe('Stopped');
  });

  it('asks for a re-check of a compute that is still being created, and judges nothing', async () => {
    const { ml, run, rechecks, alerter } = setup();
    ml.addCompute(compute('cc1', { provisioningState: 'Creating' }));
    const r = await run(`${WS}/computes/cc1`);
    expect(r.plan.changes).toEqual([]);
    expect(alerter.sent).toEqual([]);
    expect(rechecks).toEqual([{ target: `${WS}/computes/cc1`, why: 'still creating' }]);
    expect(ml.writes()).toEqual([]);
  });

  it('never reads a compute outside the scopes', async () => {
    const { ml, run } = setup();
    ml.addCompute(compute('cc9', {}, OUT_WS));
    const r = await run(`${OUT_WS}/computes/cc9`);
    expect(r.inScope).toBe(false);
    expect(ml.calls).toEqual([]);
  });

  it('normalises the target and refuses ids that are not computes', () => {
    const { cap } = setup();
    expect(cap.parseTarget(`${WS.replace('resourceGroups', 'resourcegroups')}/computes/cc1`)).toBe(`${WS}/computes/cc1`);
    expect(() => cap.parseTarget(WS)).toThrow(InputError);
    expect(() => cap.parseTarget('cc1')).toThrow(InputError);
  });

  it('lists governed computes of in-scope workspaces only', async () => {
    const { ml, cap } = setup();
    ml.addCompute(compute('cc1'));
    ml.addCompute(compute('ci1', { computeType: 'ComputeInstance' }));
    ml.addCompute(compute('aks', { computeType: 'AKS' }));
    ml.addCompute(compute('cc9', {}, OUT_WS));
    expect((await cap.listTargets()).sort()).toEqual([`${WS}/computes/cc1`, `${WS}/computes/ci1`]);
  });

  it('reports a busy compute (409) as a retryable failure and a vanished one (404) as unchanged', async () => {
    const { ml, cap } = setup();
    ml.addCompute(compute('cc1'));
    const plan = await cap.plan(`${WS}/computes/cc1`);
    jest.spyOn(ml, 'setComputeIdentity').mockRejectedValueOnce(Object.assign(new Error('Conflict'), { statusCode: 409, code: 'Conflict' }));
    const [busy] = await cap.apply(plan);
    expect(busy).toMatchObject({ outcome: 'failed', error: { code: 'ComputeBusy', retryable: true } });

    jest.spyOn(ml, 'setComputeIdentity').mockRejectedValueOnce(Object.assign(new Error('gone'), { statusCode: 404 }));
    const [gone] = await cap.apply(plan);
    expect(gone).toMatchObject({ outcome: 'unchanged', result: 'absent' });

    jest.spyOn(ml, 'setComputeIdentity').mockRejectedValueOnce(Object.assign(new Error('forbidden'), { statusCode: 403, code: 'AuthorizationFailed' }));
    const [denied] = await cap.apply(plan);
    expect(denied).toMatchObject({ outcome: 'failed', error: { code: 'AuthorizationFailed', retryable: false } });
  });

  it('keeps listing other workspaces when one cannot be read', async () => {
    const ws2 = WS.replace('ws1', 'ws2');
    const { ml, cap, sink } = setup();
    ml.addWorkspace({ id: ws2, name: 'ws2', subscriptionId: SUB, resourceGroup: 'rg-ml', location: 'westeurope', tags: {} });
    ml.addCompute(compute('cc1'));
    ml.addCompute(compute('cc2', {}, ws2));
    const real = ml.listComputes.bind(ml);
    jest.spyOn(ml, 'listComputes').mockImplementation(async (id) => {
      if (id === WS) throw Object.assign(new Error('boom'), { statusCode: 500 });
      return real(id);
    });
    expect(await cap.listTargets()).toEqual([`${ws2}/computes/cc2`]);
    expect(sink.text()).toContain('Could not list the computes of a workspace');
  });
});
