/**
 * Contract tests of the MlResources adapter (`shared/ports/azure/ml.ts`): the real
 * `@azure/arm-machinelearning` client, built by `createAzureClients` from emulator settings, against
 * the emulated ARM. Asserts the world's end state on the emulator, and the requests made.
 */
import { createAzureClients } from '../../shared/azure/clients';
import { createLimiter } from '../../shared/concurrency';
import type { AzureClients } from '../../shared/azure/clients';
import { TerminalError, TransientError } from '../../shared/errors';
import { createMlResources, DEFAULT_SNAPSHOT_TTL_MS } from '../../shared/ports/azure/ml';
import { OwnWriteLog, type MlResources } from '../../shared/ports/ml';
import { loadSettings } from '../../shared/settings';
import { startArm, type ArmHarness } from '../helpers/emulator';

const SUB = '5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-vision`;
const WS = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws-vision`;
const WS_EMPTY = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws-empty`;
const ACR = `${RG}/providers/Microsoft.ContainerRegistry/registries/crvision`;
const UAI = `/subscriptions/${SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-compute`;
const USER = 'c3c3c3c3-0000-4000-8000-000000000001';
const SUBNET = `/subscriptions/${SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/ml`;

/** A cluster with every setting a person may have chosen, to prove the identity PUT keeps them. */
const richCluster = (name: string) => ({
  name,
  computeType: 'AmlCompute',
  vmSize: 'STANDARD_NC6',
  description: 'GPU training',
  tags: { team: 'vision', cost: 'gpu' },
  disableLocalAuth: true,
  scaleSettings: { maxNodeCount: 3, minNodeCount: 1, nodeIdleTimeBeforeScaleDown: 'PT300S' },
  remoteLoginPortPublicAccess: 'Disabled' as const,
  properties: {
    vmPriority: 'LowPriority',
    osType: 'Linux',
    subnet: { id: SUBNET },
    enableNodePublicIp: false,
    isolatedNetwork: false,
    propertyBag: { owner: 'vision-platform', retries: 2 },
    virtualMachineImage: { id: `/subscriptions/${SUB}/resourceGroups/rg-img/providers/Microsoft.Compute/images/cuda` },
  },
});

const section = {
  subscriptions: [
    {
      id: SUB,
      resourceGroups: [
        {
          name: 'rg-vision',
          location: 'westeurope',
          registries: [{ name: 'crvision', adminUserEnabled: true }, { name: 'crclean', adminUserEnabled: false }],
          workspaces: [
            {
              name: 'ws-vision',
              tags: { team: 'vision' },
              containerRegistry: 'crvision',
              datastores: [
                { name: 'workspaceblobstore', credentialsType: 'AccountKey' as const, isDefault: true },
                { name: 'sas_store', credentialsType: 'Sas' as const },
                { name: 'sp_store', datastoreType: 'AzureDataLakeGen2' as const, credentialsType: 'ServicePrincipal' as const },
                { name: 'identity_store', credentialsType: 'None' as const },
              ],
              computes: [
                richCluster('cluster-rich'),
                richCluster('cluster-uai'),
                { name: 'cluster-scale', computeType: 'AmlCompute', scaleSettings: { maxNodeCount: 5, minNodeCount: 2, nodeIdleTimeBeforeScaleDown: 'PT600S' } },
                { name: 'cluster-sys', computeType: 'AmlCompute', identity: { type: 'SystemAssigned' as const } },
                { name: 'cluster-del', computeType: 'AmlCompute' },
                {
                  name: 'cluster-extra',
                  computeType: 'AmlCompute',
                  // Settings the SDK's 2022-10-01 model does not know (a newer service, a preview feature).
                  properties: { futureSetting: { mode: 'strict', level: 3 }, userAccountCredentials: { adminUserName: 'azureuser', adminUserSshPublicKey: 'ssh-rsa AAAAB3Nza' } },
                },
                { name: 'ci-user', computeType: 'ComputeInstance', assignedUser: USER, sshPublicAccess: 'Enabled' as const, disableLocalAuth: false },
              ],
            },
            { name: 'ws-empty', tags: {} },
          ],
        },
        { name: 'rg-nlp', location: 'northeurope', workspaces: [{ name: 'ws-nlp' }, { name: 'ws-nlp-2' }, { name: 'ws-nlp-3' }] },
      ],
    },
  ],
};

let arm: ArmHarness;
let clients: AzureClients;
let ml: MlResources;
/** The same adapter without snapshots: every identity PUT reads the compute first. */
let rereading: MlResources;

beforeAll(async () => {
  arm = await startArm({ section });
  const settings = loadSettings({
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: arm.url,
    WARDEN_GRAPH_ENDPOINT: arm.url,
    WARDEN_POLICY: JSON.stringify({ scopes: [`/subscriptions/${SUB}`] }),
  });
  clients = createAzureClients(settings, { retry: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 }, lroPollMs: 10 });
  ml = createMlResources(clients, { limiter: createLimiter(4) });
  rereading = createMlResources(clients, { limiter: createLimiter(4), snapshotTtlMs: 0 });
});
afterAll(async () => {
  await arm.close();
});
beforeEach(() => {
  arm.control.pageSize = 2;
  arm.control.lroPolls = 1;
  arm.ctx.faults.clear();
});

const cid = (name: string): string => `${WS}/computes/${name}`;

/** The stored compute without what an update legitimately changes (identity, modifiedOn, provisioning). */
function settingsOf(name: string): unknown {
  const c = arm.control.getCompute(cid(name));
  if (!c) throw new Error(`no compute ${name}`);
  const { identity: _identity, properties, ...rest } = c;
  const { modifiedOn: _m, provisioningState: _p, ...props } = properties;
  return { ...rest, properties: props };
}

describe('workspaces', () => {
  it('lists every workspace of a subscription across pages, and of a resource group', async () => {
    const all = await ml.listWorkspaces(`/subscriptions/${SUB}`);
    expect(all.map((w) => w.name).sort()).toEqual(['ws-empty', 'ws-nlp', 'ws-nlp-2', 'ws-nlp-3', 'ws-vision']);
    const rg = await ml.listWorkspaces(RG);
    expect(rg.map((w) => w.name).sort()).toEqual(['ws-empty', 'ws-vision']);
    expect(await ml.listWorkspaces(`/subscriptions/${SUB}/resourceGroups/rg-gone`)).toEqual([]);
  });

  it('reads one workspace in domain terms, and undefined for a missing one', async () => {
    const ws = await ml.getWorkspace(WS);
    expect(ws).toEqual({
      id: WS,
      name: 'ws-vision',
      subscriptionId: SUB,
      resourceGroup: 'rg-vision',
      location: 'westeurope',
      tags: { team: 'vision' },
      containerRegistry: ACR,
      provisioningState: 'Succeeded',
    });
    expect(await ml.getWorkspace(`${RG}/providers/Microsoft.MachineLearningServices/workspaces/nope`)).toBeUndefined();
  });

  it('lists datastores with their credential types', async () => {
    const ds = await ml.listDatastores(WS);
    expect(ds.map((d) => [d.name, d.datastoreType, d.credentialsType]).sort()).toEqual([
      ['identity_store', 'AzureBlob', 'None'],
      ['sas_store', 'AzureBlob', 'Sas'],
      ['sp_store', 'AzureDataLakeGen2', 'ServicePrincipal'],
      ['workspaceblobstore', 'AzureBlob', 'AccountKey'],
    ]);
    expect(ds.every((d) => d.id.startsWith(`${WS}/datastores/`))).toBe(true);
  });

  it('reads a registry’s admin user flag, undefined when the registry is gone', async () => {
    expect(await ml.getRegistryAdminUserEnabled(ACR)).toBe(true);
    expect(await ml.getRegistryAdminUserEnabled(`${RG}/providers/Microsoft.ContainerRegistry/registries/crclean`)).toBe(false);
    expect(await ml.getRegistryAdminUserEnabled(`${RG}/providers/Microsoft.ContainerRegistry/registries/gone`)).toBeUndefined();
  });
});

describe('computes: reads', () => {
  it('lists computes across pages and maps clusters and instances', async () => {
    const list = await ml.listComputes(WS);
    expect(list.map((c) => c.name).sort()).toEqual(['ci-user', 'cluster-del', 'cluster-extra', 'cluster-rich', 'cluster-scale', 'cluster-sys', 'cluster-uai']);
    const rich = list.find((c) => c.name === 'cluster-rich');
    expect(rich).toEqual({
      id: cid('cluster-rich'),
      name: 'cluster-rich',
      workspaceId: WS,
      computeType: 'AmlCompute',
      location: 'westeurope',
      tags: { team: 'vision', cost: 'gpu' },
      provisioningState: 'Succeeded',
      identity: { type: 'None', userAssignedIdentities: [] },
      disableLocalAuth: true,
      remoteLoginPortPublicAccess: 'Disabled',
      scaleSettings: { minNodeCount: 1, maxNodeCount: 3, nodeIdleTimeBeforeScaleDown: 'PT300S' },
    });
    const ci = list.find((c) => c.name === 'ci-user');
    expect(ci).toMatchObject({ computeType: 'ComputeInstance', state: 'Running', sshPublicAccess: 'Enabled', assignedUserObjectId: USER, disableLocalAuth: false });
    expect(list.find((c) => c.name === 'cluster-sys')?.identity).toEqual({ type: 'SystemAssigned', userAssignedIdentities: [] });
    expect(await ml.listComputes(WS_EMPTY)).toEqual([]);
  });

  it('reads one compute, undefined when missing', async () => {
    expect((await ml.getCompute(cid('cluster-sys')))?.identity.type).toBe('SystemAssigned');
    expect(await ml.getCompute(cid('nope'))).toBeUndefined();
  });

  it('rides out throttling (429 with Retry-After)', async () => {
    arm.ctx.faults.add({ service: 'arm', operation: 'arm.computes.get', status: 429, retryAfterSeconds: 0, times: 2 });
    expect((await ml.getCompute(cid('cluster-sys')))?.name).toBe('cluster-sys');
  });
});

describe('computes: writes', () => {
  it('assigns the system-assigned identity with one GET and one PUT, keeping every other setting', async () => {
    const before = settingsOf('cluster-rich');
    const mark = arm.ctx.record.mark();
    await ml.setComputeIdentity(cid('cluster-rich'), { type: 'SystemAssigned' });
    const after = arm.control.getCompute(cid('cluster-rich'));
    expect(after?.identity?.type).toBe('SystemAssigned');
    expect(after?.identity?.principalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(after?.properties.provisioningState).toBe('Succeeded');
    expect(settingsOf('cluster-rich')).toEqual(before);
    const ops = arm.ctx.record.since(mark, { service: 'arm' }).map((r) => r.operation);
    expect(ops.filter((o) => o === 'arm.computes.put')).toHaveLength(1);
    expect(ops.filter((o) => o === 'arm.computes.get')).toHaveLength(2); // the read before, the LRO's final GET
    expect(ops.filter((o) => o === 'arm.computes.patch')).toHaveLength(0);
  });

  it('assigns a user-assigned identity the same way', async () => {
    const before = settingsOf('cluster-uai');
    await ml.setComputeIdentity(cid('cluster-uai'), { type: 'UserAssigned', id: UAI });
    const after = arm.control.getCompute(cid('cluster-uai'));
    expect(after?.identity?.type).toBe('UserAssigned');
    expect(Object.keys(after?.identity?.userAssignedIdentities ?? {})).toEqual([UAI]);
    expect(settingsOf('cluster-uai')).toEqual(before);
  });

  it('keeps settings the SDK’s model does not know (its serializer would drop them)', async () => {
    const before = settingsOf('cluster-extra');
    await ml.setComputeIdentity(cid('cluster-extra'), { type: 'SystemAssigned' });
    expect(arm.control.getCompute(cid('cluster-extra'))?.identity?.type).toBe('SystemAssigned');
    expect(settingsOf('cluster-extra')).toEqual(before);
    expect((settingsOf('cluster-extra') as { properties: { properties: Record<string, unknown> } }).properties.properties.futureSetting).toEqual({ mode: 'strict', level: 3 });
  });

  it('does not PUT when the compute already has the identity', async () => {
    const mark = arm.ctx.record.mark();
    await rereading.setComputeIdentity(cid('cluster-sys'), { type: 'SystemAssigned' });
    expect(arm.ctx.record.since(mark, { service: 'arm' }).map((r) => r.operation)).toEqual(['arm.computes.get']);
  });

  it('refuses to change an instance’s identity without sending anything', async () => {
    const mark = arm.ctx.record.mark();
    await expect(ml.setComputeIdentity(cid('ci-user'), { type: 'SystemAssigned' })).rejects.toBeInstanceOf(TerminalError);
    expect(arm.ctx.record.writes().filter((w) => w.seq > mark)).toEqual([]);
  });

  it('scales a cluster to zero, keeping its idle time and other settings', async () => {
    const before = settingsOf('cluster-scale') as { properties: { properties: Record<string, unknown> } };
    await ml.scaleToZero(cid('cluster-scale'));
    const after = settingsOf('cluster-scale') as { properties: { properties: Record<string, unknown> } };
    expect(after.properties.properties.scaleSettings).toEqual({ maxNodeCount: 0, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT600S' });
    expect({ ...after.properties.properties, scaleSettings: null }).toEqual({ ...before.properties.properties, scaleSettings: null });
    expect((await ml.getCompute(cid('cluster-scale')))?.scaleSettings).toMatchObject({ minNodeCount: 0, maxNodeCount: 0 });
  });

  it('stops an instance and waits for the operation to finish', async () => {
    await ml.stopCompute(cid('ci-user'));
    expect(arm.control.getCompute(cid('ci-user'))?.properties.properties.state).toBe('Stopped');
  });

  it('deletes a compute; deleting it again is harmless', async () => {
    await ml.deleteCompute(cid('cluster-del'));
    expect(arm.control.getCompute(cid('cluster-del'))).toBeUndefined();
    await expect(ml.deleteCompute(cid('cluster-del'))).resolves.toBeUndefined();
  });

  it('surfaces a failed operation as an error', async () => {
    arm.control.createCompute(WS, { name: 'cluster-fail', computeType: 'AmlCompute' });
    arm.control.failNextOperation({});
    await expect(ml.setComputeIdentity(cid('cluster-fail'), { type: 'SystemAssigned' })).rejects.toThrow(/failed/i);
  });

  it('answers 409 while another operation runs on the compute', async () => {
    arm.control.createCompute(WS, { name: 'cluster-busy', computeType: 'AmlCompute', provisioningState: 'Updating' });
    await expect(ml.setComputeIdentity(cid('cluster-busy'), { type: 'SystemAssigned' })).rejects.toMatchObject({ statusCode: 409 });
  });
});

/** Calls per operation made while `fn` ran (polls of the operation included). */
async function callsDuring(fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = arm.ctx.record.countByOperation({ service: 'arm' });
  await fn();
  const after = arm.ctx.record.countByOperation({ service: 'arm' });
  return Object.fromEntries(Object.entries(after).flatMap(([op, n]) => (n - (before[op] ?? 0) > 0 ? [[op, n - (before[op] ?? 0)]] : [])));
}
const POLLS = new Set(['arm.operations.get', 'arm.operations.result']);
const withoutPolls = (calls: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(calls).filter(([op]) => !POLLS.has(op)));

/** A cluster with settings the SDK's model knows and some it does not, created "in the portal". */
function createRichCluster(name: string, extra: { provisioningState?: 'Updating' } = {}): string {
  arm.control.createCompute(WS, {
    ...richCluster(name),
    properties: { ...richCluster(name).properties, futureSetting: { mode: 'strict', level: 3 } },
    ...extra,
  });
  return cid(name);
}

describe('computes: the identity PUT after the plan’s read', () => {
  it('fixes a cluster with its plan’s GET, one PUT and the operation’s final GET, keeping every setting, unknown ones included', async () => {
    const id = createRichCluster('cluster-plan');
    const before = settingsOf('cluster-plan');
    const calls = await callsDuring(async () => {
      const planned = await ml.getCompute(id);
      expect(planned?.identity.type).toBe('None');
      await ml.setComputeIdentity(id, { type: 'SystemAssigned' });
    });
    expect(withoutPolls(calls)).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    expect(calls['arm.operations.get']).toBeGreaterThan(0);
    expect(arm.control.getCompute(id)?.identity?.type).toBe('SystemAssigned');
    expect(settingsOf('cluster-plan')).toEqual(before);
    expect((settingsOf('cluster-plan') as { properties: { properties: Record<string, unknown> } }).properties.properties.futureSetting).toEqual({ mode: 'strict', level: 3 });
  });

  it('sends nothing at all when the plan’s read already shows the identity, and reads again the next time', async () => {
    const id = cid('cluster-sys');
    await ml.getCompute(id);
    expect(await callsDuring(() => ml.setComputeIdentity(id, { type: 'SystemAssigned' }))).toEqual({});
    // A snapshot serves one write.
    expect(await callsDuring(() => ml.setComputeIdentity(id, { type: 'SystemAssigned' }))).toEqual({ 'arm.computes.get': 1 });
  });

  it('reads again when the plan’s read is older than the window, so a change made since is kept', async () => {
    let t = 1_000_000;
    const timed = createMlResources(clients, { now: () => t });
    const id = createRichCluster('cluster-late');
    await timed.getCompute(id);
    // Someone changes the cluster after the plan read it.
    arm.control.updateCompute(id, { tags: { team: 'vision', changed: 'later' }, scaleSettings: { maxNodeCount: 9, minNodeCount: 0 } });
    const changed = settingsOf('cluster-late');
    t += DEFAULT_SNAPSHOT_TTL_MS + 1;
    const calls = await callsDuring(() => timed.setComputeIdentity(id, { type: 'SystemAssigned' }));
    expect(withoutPolls(calls)).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    expect(settingsOf('cluster-late')).toEqual(changed);
    expect(arm.control.getCompute(id)?.tags).toEqual({ team: 'vision', changed: 'later' });
  });

  it('uses the plan’s read within the window (the clock says so, not luck)', async () => {
    let t = 1_000_000;
    const timed = createMlResources(clients, { now: () => t });
    const id = createRichCluster('cluster-window');
    await timed.getCompute(id);
    t += DEFAULT_SNAPSHOT_TTL_MS - 1;
    expect(withoutPolls(await callsDuring(() => timed.setComputeIdentity(id, { type: 'SystemAssigned' })))).toEqual({ 'arm.computes.get': 1, 'arm.computes.put': 1 });
  });

  it('reads again when the compute was not settled when the plan read it', async () => {
    const id = createRichCluster('cluster-unsettled', { provisioningState: 'Updating' });
    await ml.getCompute(id);
    // The running operation ends and changed something.
    arm.control.setComputeState(id, { provisioningState: 'Succeeded' });
    arm.control.updateCompute(id, { tags: { team: 'vision', after: 'update' } });
    const calls = await callsDuring(() => ml.setComputeIdentity(id, { type: 'SystemAssigned' }));
    expect(withoutPolls(calls)).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    expect(arm.control.getCompute(id)?.tags).toEqual({ team: 'vision', after: 'update' });
  });

  it('reads again after its own write of the compute: the PUT keeps what that write changed', async () => {
    const id = createRichCluster('cluster-scaled');
    await ml.getCompute(id);
    await ml.scaleToZero(id);
    const calls = await callsDuring(() => ml.setComputeIdentity(id, { type: 'SystemAssigned' }));
    expect(withoutPolls(calls)).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    // The plan's read still showed 1–3 nodes: a PUT of it would have undone the scale-down.
    expect((settingsOf('cluster-scaled') as { properties: { properties: Record<string, unknown> } }).properties.properties.scaleSettings).toEqual({
      maxNodeCount: 0,
      minNodeCount: 0,
      nodeIdleTimeBeforeScaleDown: 'PT300S',
    });
  });

  it('does not use a read that was sent before its own write of the compute ended', async () => {
    const id = createRichCluster('cluster-overlap');
    // The plan's GET is slow; the adapter scales the cluster down meanwhile.
    const slow = arm.ctx.faults.add({ service: 'arm', operation: 'arm.computes.get', delayMs: 200, times: 1 });
    const planned = ml.getCompute(id);
    const deadline = Date.now() + 5000;
    while (arm.ctx.faults.fired(slow) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await ml.scaleToZero(id);
    await planned;
    const calls = await callsDuring(() => ml.setComputeIdentity(id, { type: 'SystemAssigned' }));
    expect(withoutPolls(calls)).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
    expect((settingsOf('cluster-overlap') as { properties: { properties: { scaleSettings: unknown } } }).properties.properties.scaleSettings).toMatchObject({ maxNodeCount: 0 });
  });

  it('with no window, always reads first', async () => {
    const id = createRichCluster('cluster-nowindow');
    await rereading.getCompute(id);
    expect(withoutPolls(await callsDuring(() => rereading.setComputeIdentity(id, { type: 'SystemAssigned' })))).toEqual({ 'arm.computes.get': 2, 'arm.computes.put': 1 });
  });

  it('fails (to be retried) when the operation’s final GET does not show the identity', async () => {
    const id = createRichCluster('cluster-reverted');
    await ml.getCompute(id);
    // The final GET waits; meanwhile someone takes the identity away again.
    const slow = arm.ctx.faults.add({ service: 'arm', operation: 'arm.computes.get', delayMs: 300, times: 1 });
    const pending = ml.setComputeIdentity(id, { type: 'SystemAssigned' });
    const outcome = pending.then(
      () => undefined,
      (err: unknown) => err,
    );
    const deadline = Date.now() + 5000;
    while (arm.ctx.faults.fired(slow) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    arm.control.updateCompute(id, { identity: null });
    const err = await outcome;
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'IdentityNotApplied' });
  });

  it('notes its identity PUT as its own write, under the client request id ARM echoes in the write’s event', async () => {
    const own = new OwnWriteLog();
    const noting = createMlResources(clients, { ownWrites: own });
    const id = createRichCluster('cluster-own');
    const requestIdsOf = (): Array<string | undefined> =>
      arm.events.published
        .filter((e) => e.subject === id && e.eventType === 'Microsoft.Resources.ResourceWriteSuccess')
        .map((e) => (e.data as { httpRequest?: { clientRequestId?: string } }).httpRequest?.clientRequestId);
    const seen = requestIdsOf().length;
    await noting.setComputeIdentity(id, { type: 'SystemAssigned' });
    const [mine] = requestIdsOf().slice(seen);
    expect(mine).toMatch(/^[0-9a-f-]{36}$/);
    expect(own.isOwn(mine, id)).toBe(true);
    expect(own.isOwn(mine, id.toUpperCase().replace('/COMPUTES/', '/computes/'))).toBe(true);
    expect(own.isOwn(mine, cid('cluster-rich'))).toBe(false);
    // Anyone else's update of the same compute carries another id.
    arm.control.emitWriteEvent(id, { httpMethod: 'PUT' });
    const [theirs] = requestIdsOf().slice(seen + 1);
    expect(theirs).toMatch(/^[0-9a-f-]{36}$/);
    expect(own.isOwn(theirs, id)).toBe(false);
  });
});
