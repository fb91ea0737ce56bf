import fc from 'fast-check';
import type { Capability, CapabilityName } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import type { FollowUps } from '../../shared/compute/followup';
import { MemoryMlResources } from '../../shared/compute/memoryMl';
import { InputError } from '../../shared/errors';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import type { Datastore, Workspace } from '../../shared/ports/ml';
import { reconcile } from '../../shared/reconcile';
import { createWorkspacesCapability } from '../../shared/workspaces/capability';
import { FINDING_CREDENTIAL_DATASTORE, FINDING_REGISTRY_ADMIN_USER, planWorkspacePosture } from '../../shared/workspaces/plan';

const SUB = '00000000-0000-0000-0000-000000000001';
const WS = `/subscriptions/${SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const ACR = `/subscriptions/${SUB}/resourceGroups/rg-ml/providers/Microsoft.ContainerRegistry/registries/acrvision`;
const OUT_WS = `/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/other`;

const workspace = (over: Partial<Workspace> = {}): Workspace => ({
  id: WS,
  name: 'ws1',
  subscriptionId: SUB,
  resourceGroup: 'rg-ml',
  location: 'westeurope',
  tags: { team: 'vision' },
  containerRegistry: ACR,
  provisioningState: 'Succeeded',
  ...over,
});

const ds = (name: string, credentialsType: string, datastoreType = 'AzureBlob'): Datastore => ({
  id: `${WS}/datastores/${name}`,
  name,
  datastoreType,
  credentialsType,
});

const flags = { flagRegistryAdminUser: true, flagCredentialDatastores: true };

describe('planWorkspacePosture', () => {
  it('reports nothing for a workspace with identity-based datastores and no registry admin user', () => {
    const r = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: false, datastores: [ds('workspaceblobstore', 'None')], policy: flags });
    expect(r.plan).toEqual({ capability: 'workspaces', target: WS, changes: [], findings: [], skipped: [] });
  });

  it('reports the registry admin user once, on the registry', () => {
    const r = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: true, datastores: [], policy: flags });
    expect(r.plan.findings).toHaveLength(1);
    expect(r.plan.findings[0]).toMatchObject({
      type: FINDING_REGISTRY_ADMIN_USER,
      subject: ACR,
      severity: 'warning',
      details: { registryId: ACR, registry: 'acrvision', adminUserEnabled: true },
    });
    expect(r.plan.findings[0]?.actions[0]).toContain('az acr update --name acrvision --admin-enabled false');
  });

  it('produces the identical registry finding from every workspace that shares the registry (so it is alerted once)', () => {
    const other = { ...workspace(), id: WS.replace(/ws1$/, 'ws2'), name: 'ws2' };
    const a = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: true, datastores: [], policy: flags });
    const b = planWorkspacePosture({ target: other.id, workspace: other, registryAdminUserEnabled: true, datastores: [], policy: flags });
    expect(b.plan.findings[0]).toEqual(a.plan.findings[0]);
  });

  it.each([
    ['AccountKey', 'a storage account key'],
    ['Sas', 'a SAS token'],
    ['ServicePrincipal', "a service principal's client secret"],
    ['Certificate', "a service principal's certificate"],
  ])('reports a datastore holding %s', (type, words) => {
    const r = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: false, datastores: [ds('d1', type)], policy: flags });
    expect(r.plan.findings).toHaveLength(1);
    expect(r.plan.findings[0]).toMatchObject({ type: FINDING_CREDENTIAL_DATASTORE, subject: `${WS}/datastores/d1`, details: { credentialsType: type } });
    expect(r.plan.findings[0]?.summary).toContain(words);
  });

  it('leaves identity-based datastores alone and orders findings stably', () => {
    const stores = [ds('zeta', 'Sas'), ds('alpha', 'AccountKey'), ds('mid', 'None')];
    const a = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: false, datastores: stores, policy: flags });
    const b = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: false, datastores: [...stores].reverse(), policy: flags });
    expect(a.plan.findings.map((f) => f.subject)).toEqual([`${WS}/datastores/alpha`, `${WS}/datastores/zeta`]);
    expect(a).toEqual(b);
  });

  it('honours the policy flags', () => {
    const r = planWorkspacePosture({
      target: WS,
      workspace: workspace(),
      registryAdminUserEnabled: true,
      datastores: [ds('d1', 'AccountKey')],
      policy: { flagRegistryAdminUser: false, flagCredentialDatastores: false },
    });
    expect(r.plan.findings).toEqual([]);
  });

  it.each(['Creating', 'Updating'])('re-checks a workspace that is still %s', (state) => {
    const r = planWorkspacePosture({ target: WS, workspace: workspace({ provisioningState: state }), registryAdminUserEnabled: undefined, datastores: undefined, policy: flags });
    expect(r.plan.findings).toEqual([]);
    expect(r.recheck).toEqual({ why: `still ${state.toLowerCase()}` });
  });

  it('skips a workspace that does not exist', () => {
    const r = planWorkspacePosture({ target: WS, workspace: undefined, registryAdminUserEnabled: undefined, datastores: undefined, policy: flags });
    expect(r.plan.skipped[0]?.reason).toContain('does not exist');
  });

  it('never plans a change, and its findings carry no times (property)', () => {
    const storeArb = fc.array(
      fc.record({ name: fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/), type: fc.constantFrom('AccountKey', 'Sas', 'ServicePrincipal', 'Certificate', 'None') }),
      { maxLength: 6 },
    );
    fc.assert(
      fc.property(storeArb, fc.option(fc.boolean(), { nil: undefined }), (stores, admin) => {
        const list = stores.map((s) => ds(s.name, s.type));
        const r = planWorkspacePosture({ target: WS, workspace: workspace(), registryAdminUserEnabled: admin, datastores: list, policy: flags });
        expect(r.plan.changes).toEqual([]);
        expect(r.plan.findings.filter((f) => f.type === FINDING_CREDENTIAL_DATASTORE)).toHaveLength(list.filter((d) => d.credentialsType !== 'None').length);
        expect(r.plan.findings.filter((f) => f.type === FINDING_REGISTRY_ADMIN_USER)).toHaveLength(admin === true ? 1 : 0);
        expect(JSON.stringify(r.plan.findings)).not.toMatch(/\d{4}-\d{2}-\d{2}T/);
      }),
    );
  });
});

function setup(policyInput: Partial<PolicyInput> = {}) {
  const policy = parsePolicy({ mode: 'enforce', scopes: [`/subscriptions/${SUB}`], ...policyInput }).policy;
  const ml = new MemoryMlResources();
  const rechecks: string[] = [];
  const followUps: FollowUps = {
    schedule: async (_c, target) => {
      rechecks.push(target);
      return { scheduled: true, attempt: 1, delayMs: 1 };
    },
  };
  const logger = createLogger(memorySink());
  const cap = createWorkspacesCapability({ policy, ml, followUps, logger });
  const alerter = new MemoryAlerter();
  const run = (target: string) =>
    reconcile(
      { capability: 'workspaces', target, trigger: { kind: 'schedule', id: 'sweep' } },
      {
        capabilities: { workspaces: cap } as unknown as Record<CapabilityName, Capability>,
        audit: new MemoryAuditLog(),
        alerter,
        mode: policy.mode,
        logger,
        clock: new ManualClock(),
      },
    );
  return { ml, cap, rechecks, alerter, run };
}

describe('workspaces capability', () => {
  it('reads the workspace, its registry and datastores, and alerts each problem once per run', async () => {
    const { ml, run, alerter } = setup();
    ml.addWorkspace(workspace()).setRegistry(ACR, true).setDatastores(WS, [ds('keyed', 'AccountKey'), ds('ok', 'None')]);
    const r = await run(WS);
    expect(r.plan.changes).toEqual([]);
    expect(alerter.sent.map((f) => [f.type, f.subject])).toEqual([
      [FINDING_REGISTRY_ADMIN_USER, ACR],
      [FINDING_CREDENTIAL_DATASTORE, `${WS}/datastores/keyed`],
    ]);
    expect(ml.writes()).toEqual([]);
    // A second run finds the same findings, identical, so the alerter's repeat window suppresses them.
    await run(WS);
    expect(alerter.sent.slice(2)).toEqual(alerter.sent.slice(0, 2));
  });

  it('does not read the registry and datastores of a workspace still being created, and re-checks it', async () => {
    const { ml, run, rechecks } = setup();
    ml.addWorkspace(workspace({ provisioningState: 'Creating' }));
    await run(WS);
    expect(ml.calls).toEqual([`getWorkspace ${WS}`]);
    expect(rechecks).toEqual([WS]);
  });

  it('skips reading what the policy does not flag', async () => {
    const { ml, run } = setup({ workspaces: { flagRegistryAdminUser: false, flagCredentialDatastores: false } });
    ml.addWorkspace(workspace());
    await run(WS);
    expect(ml.calls).toEqual([`getWorkspace ${WS}`]);
  });

  it('never reads a workspace outside the scopes', async () => {
    const { ml, run } = setup();
    ml.addWorkspace(workspace({ id: OUT_WS }));
    const r = await run(OUT_WS);
    expect(r.inScope).toBe(false);
    expect(ml.calls).toEqual([]);
  });

  it('lists each in-scope workspace once, even with overlapping scopes', async () => {
    const { ml, cap } = setup({ scopes: [`/subscriptions/${SUB}`, `/subscriptions/${SUB}/resourceGroups/rg-ml`] });
    ml.addWorkspace(workspace()).addWorkspace(workspace({ id: OUT_WS, name: 'other' }));
    expect(await cap.listTargets()).toEqual([WS]);
  });

  it('accepts workspace ids only', () => {
    const { cap } = setup();
    expect(cap.parseTarget(WS.replace('resourceGroups', 'resourcegroups'))).toBe(WS);
    expect(() => cap.parseTarget(`${WS}/computes/cc1`)).toThrow(InputError);
    expect(() => cap.parseTarget('/subscriptions/x')).toThrow(InputError);
  });
});
