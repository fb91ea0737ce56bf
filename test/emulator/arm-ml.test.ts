/**
 * Contract tests: the real `@azure/arm-machinelearning` client against the emulated ARM — workspaces,
 * computes (paging, LRO create/update with polling and the final GET, PATCH scale, stop/start,
 * delete, the compute-instance identity rule, failed operations), datastores; plus container
 * registries, subscriptions and the generic resource list over plain HTTPS.
 */
import type { AzureMachineLearningWorkspaces, ComputeResource } from '@azure/arm-machinelearning';
import { FAST_LRO, machineLearningClient, startArm, type ArmHarness } from '../helpers/emulator';

const SUB = '2e7b4d6f-3c5a-4b7d-9f1e-0a2b3c4d5e6f';
const UAI = `/subscriptions/${SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-compute`;
const USER = 'c3c3c3c3-0000-4000-8000-000000000001';

const section = {
  subscriptions: [
    {
      id: SUB,
      displayName: 'ML test subscription',
      resourceGroups: [
        {
          name: 'rg-vision',
          location: 'westeurope',
          tags: { team: 'vision' },
          registries: [{ name: 'crvision', adminUserEnabled: true }],
          workspaces: [
            {
              name: 'ws-vision',
              tags: { team: 'vision' },
              friendlyName: 'Vision',
              containerRegistry: 'crvision',
              datastores: [
                { name: 'workspaceblobstore', credentialsType: 'AccountKey' as const, isDefault: true },
                { name: 'sas_store', credentialsType: 'Sas' as const },
                { name: 'sp_store', datastoreType: 'AzureDataLakeGen2' as const, credentialsType: 'ServicePrincipal' as const },
                { name: 'cert_store', credentialsType: 'Certificate' as const },
                { name: 'identity_store', credentialsType: 'None' as const },
              ],
              computes: [
                { name: 'cluster-a', computeType: 'AmlCompute' },
                { name: 'cluster-b', computeType: 'AmlCompute', identity: { type: 'SystemAssigned' as const } },
                { name: 'cluster-c', computeType: 'AmlCompute' },
                { name: 'ci-user', computeType: 'ComputeInstance', assignedUser: USER, sshPublicAccess: 'Enabled' as const },
                { name: 'ci-managed', computeType: 'ComputeInstance', assignedUser: USER, identity: { type: 'SystemAssigned' as const } },
              ],
            },
            { name: 'ws-vision-dev', tags: { team: 'vision', env: 'dev' } },
          ],
        },
        {
          name: 'rg-nlp',
          location: 'northeurope',
          registries: [{ name: 'crnlp', adminUserEnabled: false }],
          workspaces: [{ name: 'ws-nlp', tags: { team: 'nlp' } }, { name: 'ws-nlp-2', tags: { team: 'nlp' } }, { name: 'ws-nlp-3' }],
        },
      ],
    },
  ],
};

let arm: ArmHarness;
let ml: AzureMachineLearningWorkspaces;

beforeAll(async () => {
  arm = await startArm({ section });
  ml = machineLearningClient(arm.url, SUB);
});
afterAll(async () => {
  await arm.close();
});
beforeEach(() => {
  arm.control.pageSize = 2;
  arm.control.lroPolls = 1;
  arm.ctx.faults.clear();
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Type-specific settings (`properties.properties`) of any compute type. */
const inner = (c: ComputeResource): unknown => (c.properties as { properties?: unknown } | undefined)?.properties;

const amlBody = (identity?: ComputeResource['identity']): ComputeResource => ({
  location: 'westeurope',
  ...(identity ? { identity } : {}),
  properties: {
    computeType: 'AmlCompute',
    disableLocalAuth: true,
    properties: { vmSize: 'STANDARD_DS3_V2', scaleSettings: { maxNodeCount: 2, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT120S' }, remoteLoginPortPublicAccess: 'Disabled' },
  },
});

describe('workspaces', () => {
  it('lists by subscription past the first page and by resource group', async () => {
    const mark = arm.ctx.record.mark();
    const all = await collect(ml.workspaces.listBySubscription());
    expect(all.map((w) => w.name).sort()).toEqual(['ws-nlp', 'ws-nlp-2', 'ws-nlp-3', 'ws-vision', 'ws-vision-dev']);
    expect(arm.ctx.record.since(mark, { operation: 'arm.workspaces.list' })).toHaveLength(3);
    const nlp = await collect(ml.workspaces.listByResourceGroup('rg-nlp'));
    expect(nlp.map((w) => w.name)).toEqual(['ws-nlp', 'ws-nlp-2', 'ws-nlp-3']);
  });

  it('gets a workspace with tags, location, identity and its container registry', async () => {
    const ws = await ml.workspaces.get('rg-vision', 'ws-vision');
    expect(ws).toMatchObject({
      name: 'ws-vision',
      location: 'westeurope',
      tags: { team: 'vision' },
      friendlyName: 'Vision',
      containerRegistry: `/subscriptions/${SUB}/resourceGroups/rg-vision/providers/Microsoft.ContainerRegistry/registries/crvision`,
      provisioningState: 'Succeeded',
    });
    expect(ws.identity?.type).toBe('SystemAssigned');
    expect(ws.identity?.principalId).toMatch(/^[0-9a-f-]{36}$/);
    // resource group names compare case-insensitively; ids echo as stored
    const again = await ml.workspaces.get('RG-VISION', 'WS-VISION');
    expect(again.id).toBe(ws.id);
    await expect(ml.workspaces.get('rg-vision', 'missing')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
    await expect(ml.workspaces.get('rg-missing', 'ws')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceGroupNotFound' });
  });
});

describe('datastores', () => {
  it('lists credential types without secrets, past the first page', async () => {
    const ds = await collect(ml.datastores.list('rg-vision', 'ws-vision'));
    const byName = Object.fromEntries(ds.map((d) => [d.name, d.properties.credentials]));
    expect(byName).toMatchObject({
      workspaceblobstore: { credentialsType: 'AccountKey' },
      sas_store: { credentialsType: 'Sas' },
      sp_store: { credentialsType: 'ServicePrincipal' },
      cert_store: { credentialsType: 'Certificate' },
      identity_store: { credentialsType: 'None' },
    });
    for (const d of ds) expect(JSON.stringify(d.properties.credentials)).not.toMatch(/secrets/i);
    expect(ds.find((d) => d.name === 'workspaceblobstore')?.properties.isDefault).toBe(true);
  });
});

describe('computes', () => {
  it('lists computes past the first page', async () => {
    const mark = arm.ctx.record.mark();
    const computes = await collect(ml.computeOperations.list('rg-vision', 'ws-vision'));
    expect(computes.map((c) => c.name)).toEqual(['cluster-a', 'cluster-b', 'cluster-c', 'ci-user', 'ci-managed']);
    expect(arm.ctx.record.since(mark, { operation: 'arm.computes.list' })).toHaveLength(3);
    const ci = computes.find((c) => c.name === 'ci-user');
    expect(ci?.properties).toMatchObject({
      computeType: 'ComputeInstance',
      properties: { sshSettings: { sshPublicAccess: 'Enabled' }, personalComputeInstanceSettings: { assignedUser: { objectId: USER } }, state: 'Running' },
    });
    expect(computes.find((c) => c.name === 'cluster-a')?.identity).toBeUndefined();
  });

  it('creates a cluster as an LRO: 201 + Azure-AsyncOperation, InProgress polls, then the final GET', async () => {
    arm.control.lroPolls = 2;
    const mark = arm.ctx.record.mark();
    const c = await ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'new-cluster', amlBody({ type: 'SystemAssigned' }), FAST_LRO);
    expect(c.properties?.provisioningState).toBe('Succeeded');
    expect(c.identity?.type).toBe('SystemAssigned');
    expect(c.identity?.principalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(c.properties).toMatchObject({ disableLocalAuth: true, properties: { remoteLoginPortPublicAccess: 'Disabled', scaleSettings: { maxNodeCount: 2 } } });
    const calls = arm.ctx.record.since(mark).map((r) => `${r.operation}:${r.status}`);
    expect(calls).toEqual(['arm.computes.put:201', 'arm.operations.get:200', 'arm.operations.get:200', 'arm.operations.get:200', 'arm.computes.get:200']);
    const ops = arm.control.snapshot().operations.filter((o) => o.resourceId.endsWith('/new-cluster'));
    expect(ops.map((o) => o.status)).toEqual(['Succeeded']);
  });

  it('serves the compute in Creating before the operation completes', async () => {
    arm.control.lroPolls = 5;
    const poller = await ml.computeOperations.beginCreateOrUpdate('rg-vision', 'ws-vision', 'slow-cluster', amlBody(), FAST_LRO);
    const during = await ml.computeOperations.get('rg-vision', 'ws-vision', 'slow-cluster');
    expect(during.properties?.provisioningState).toBe('Creating');
    const done = await poller.pollUntilDone();
    expect(done.properties?.provisioningState).toBe('Succeeded');
  });

  it('changes a cluster identity with a full PUT (new principal for SystemAssigned, exactly what the body says)', async () => {
    const before = await ml.computeOperations.get('rg-vision', 'ws-vision', 'cluster-b');
    const oldPrincipal = before.identity?.principalId;
    const toUai = await ml.computeOperations.beginCreateOrUpdateAndWait(
      'rg-vision',
      'ws-vision',
      'cluster-b',
      amlBody({ type: 'UserAssigned', userAssignedIdentities: { [UAI]: {} } }),
      FAST_LRO,
    );
    expect(toUai.identity?.type).toBe('UserAssigned');
    expect(toUai.identity?.principalId).toBeUndefined();
    expect(Object.keys(toUai.identity?.userAssignedIdentities ?? {})).toEqual([UAI]);
    expect(toUai.identity?.userAssignedIdentities?.[UAI]?.clientId).toMatch(/^[0-9a-f-]{36}$/);
    const back = await ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'cluster-b', amlBody({ type: 'SystemAssigned' }), FAST_LRO);
    expect(back.identity?.type).toBe('SystemAssigned');
    expect(back.identity?.principalId).not.toBe(oldPrincipal);
    expect(arm.ctx.record.find({ operation: 'arm.computes.put' }).at(-1)?.status).toBe(200);
    // a PUT without identity removes it
    const none = await ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'cluster-c', amlBody(), FAST_LRO);
    expect(none.identity).toBeUndefined();
  });

  it('refuses a PUT that changes a compute instance identity (400 BadRequest), accepts one that keeps it', async () => {
    const ci = await ml.computeOperations.get('rg-vision', 'ws-vision', 'ci-user');
    await expect(
      ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'ci-user', { ...ci, identity: { type: 'SystemAssigned' } }, FAST_LRO),
    ).rejects.toMatchObject({ statusCode: 400, code: 'BadRequest' });
    const managed = await ml.computeOperations.get('rg-vision', 'ws-vision', 'ci-managed');
    const same = await ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'ci-managed', managed, FAST_LRO);
    expect(same.identity?.principalId).toBe(managed.identity?.principalId);
    expect(inner(same)).toMatchObject({ state: 'Running' });
  });

  it('PATCHes only the scale settings of a cluster, as an LRO', async () => {
    const mark = arm.ctx.record.mark();
    const updated = await ml.computeOperations.beginUpdateAndWait(
      'rg-vision',
      'ws-vision',
      'cluster-a',
      { properties: { scaleSettings: { maxNodeCount: 7, minNodeCount: 1 } } },
      FAST_LRO,
    );
    expect(updated.properties).toMatchObject({ provisioningState: 'Succeeded', properties: { scaleSettings: { maxNodeCount: 7, minNodeCount: 1, nodeIdleTimeBeforeScaleDown: 'PT120S' } } });
    expect(arm.ctx.record.since(mark).map((r) => r.operation)).toEqual(['arm.computes.patch', 'arm.operations.get', 'arm.operations.get', 'arm.computes.get']);
    await expect(
      ml.computeOperations.beginUpdateAndWait('rg-vision', 'ws-vision', 'ci-user', { properties: { scaleSettings: { maxNodeCount: 1 } } }, FAST_LRO),
    ).rejects.toMatchObject({ statusCode: 400 });
  });

  it('stops and starts a compute instance (202 + Azure-AsyncOperation + Location)', async () => {
    const mark = arm.ctx.record.mark();
    await ml.computeOperations.beginStopAndWait('rg-vision', 'ws-vision', 'ci-user', FAST_LRO);
    expect(inner(await ml.computeOperations.get('rg-vision', 'ws-vision', 'ci-user'))).toMatchObject({ state: 'Stopped' });
    expect(arm.ctx.record.since(mark).map((r) => `${r.operation}:${r.status}`)).toEqual([
      'arm.computes.stop:202',
      'arm.operations.get:200',
      'arm.operations.get:200',
      'arm.operations.result:200',
      'arm.computes.get:200',
    ]);
    await ml.computeOperations.beginStartAndWait('rg-vision', 'ws-vision', 'ci-user', FAST_LRO);
    expect(inner(await ml.computeOperations.get('rg-vision', 'ws-vision', 'ci-user'))).toMatchObject({ state: 'Running' });
    await expect(ml.computeOperations.beginStopAndWait('rg-vision', 'ws-vision', 'cluster-a', FAST_LRO)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('deletes with the required underlyingResourceAction; the compute is gone once the operation completes', async () => {
    await ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'doomed', amlBody(), FAST_LRO);
    const res = await fetch(`${arm.url}/subscriptions/${SUB}/resourceGroups/rg-vision/providers/Microsoft.MachineLearningServices/workspaces/ws-vision/computes/doomed?api-version=2022-10-01`, {
      method: 'DELETE',
      headers: { Authorization: 'Bearer t' },
    });
    expect(res.status).toBe(400);
    const mark = arm.ctx.record.mark();
    await ml.computeOperations.beginDeleteAndWait('rg-vision', 'ws-vision', 'doomed', 'Delete', FAST_LRO);
    const del = arm.ctx.record.since(mark, { operation: 'arm.computes.delete' });
    expect(del.map((r) => [r.status, r.query])).toEqual([[202, '?api-version=2022-10-01&underlyingResourceAction=Delete']]);
    await expect(ml.computeOperations.get('rg-vision', 'ws-vision', 'doomed')).rejects.toMatchObject({ statusCode: 404 });
    // deleting what is already gone is not an error
    await ml.computeOperations.beginDeleteAndWait('rg-vision', 'ws-vision', 'doomed', 'Delete', FAST_LRO);
    expect(arm.ctx.record.find({ operation: 'arm.computes.delete' }).at(-1)?.status).toBe(204);
  });

  it('reports a failed operation the way the SDK surfaces it', async () => {
    arm.control.failNextOperation({ kind: 'put', resourceName: 'broken', code: 'QuotaExceeded', message: 'Not enough cores.' });
    await expect(ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'broken', amlBody(), FAST_LRO)).rejects.toThrow(/QuotaExceeded/);
    const c = await ml.computeOperations.get('rg-vision', 'ws-vision', 'broken');
    expect(c.properties?.provisioningState).toBe('Failed');
    expect(c.properties?.provisioningErrors?.[0]?.error?.code).toBe('QuotaExceeded');
  });

  it('answers 409 while a compute is still provisioning, and a control-created compute becomes Succeeded later', async () => {
    const wsId = arm.control.workspaceId('rg-vision', 'ws-vision');
    arm.control.createCompute(wsId, { name: 'portal-made', computeType: 'AmlCompute', provisioningState: 'Creating' }, { succeedAfterMs: 50 });
    expect((await ml.computeOperations.get('rg-vision', 'ws-vision', 'portal-made')).properties?.provisioningState).toBe('Creating');
    await expect(ml.computeOperations.beginCreateOrUpdateAndWait('rg-vision', 'ws-vision', 'portal-made', amlBody(), FAST_LRO)).rejects.toMatchObject({ statusCode: 409 });
    const deadline = Date.now() + 3000;
    let state = '';
    while (Date.now() < deadline && state !== 'Succeeded') {
      state = (await ml.computeOperations.get('rg-vision', 'ws-vision', 'portal-made')).properties?.provisioningState ?? '';
      if (state !== 'Succeeded') await new Promise((r) => setTimeout(r, 10));
    }
    expect(state).toBe('Succeeded');
  });
});

describe('registries, subscriptions and generic resources', () => {
  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${arm.url}${path}`, { headers: { Authorization: 'Bearer t' } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('serves container registries with adminUserEnabled (any api-version)', async () => {
    const r = await get(`/subscriptions/${SUB}/resourceGroups/rg-vision/providers/Microsoft.ContainerRegistry/registries/crvision?api-version=2023-07-01`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'crvision', type: 'Microsoft.ContainerRegistry/registries', properties: { adminUserEnabled: true, loginServer: 'crvision.azurecr.io' } });
    const n = await get(`/subscriptions/${SUB}/resourcegroups/RG-NLP/providers/Microsoft.ContainerRegistry/registries/crnlp?api-version=2019-05-01`);
    expect(n.body).toMatchObject({ properties: { adminUserEnabled: false } });
    expect((await get(`/subscriptions/${SUB}/resourceGroups/rg-nlp/providers/Microsoft.ContainerRegistry/registries/nope?api-version=1`)).status).toBe(404);
  });

  it('serves the subscription and lists resources by type and by tag, paged', async () => {
    const s = await get(`/subscriptions/${SUB}?api-version=2022-12-01`);
    expect(s.body).toMatchObject({ subscriptionId: SUB, displayName: 'ML test subscription', state: 'Enabled' });
    const filter = encodeURIComponent("resourceType eq 'Microsoft.MachineLearningServices/workspaces'");
    const names: string[] = [];
    let next: string | undefined = `/subscriptions/${SUB}/resources?api-version=2021-04-01&$filter=${filter}`;
    let pages = 0;
    while (next) {
      const page = await get(next);
      pages++;
      names.push(...(page.body.value as Array<{ name: string }>).map((v) => v.name));
      const link = page.body.nextLink as string | undefined;
      next = link ? link.slice(arm.url.length) : undefined;
    }
    expect(pages).toBe(3);
    expect(names.sort()).toEqual(['ws-nlp', 'ws-nlp-2', 'ws-nlp-3', 'ws-vision', 'ws-vision-dev']);
    arm.control.pageSize = 100;
    const tagged = await get(`/subscriptions/${SUB}/resources?api-version=2021-04-01&$filter=${encodeURIComponent("tagName eq 'team' and tagValue eq 'nlp'")}`);
    expect((tagged.body.value as Array<{ name: string }>).map((v) => v.name)).toEqual(['ws-nlp', 'ws-nlp-2']);
    const registries = await get(`/subscriptions/${SUB}/resources?$filter=${encodeURIComponent("resourceType eq 'Microsoft.ContainerRegistry/registries'")}`);
    expect((registries.body.value as Array<{ name: string }>).map((v) => v.name)).toEqual(['crvision', 'crnlp']);
    expect((await get(`/subscriptions/${SUB}/resources?$filter=${encodeURIComponent('bogus')}`)).status).toBe(400);
  });

  it('answers 404 SubscriptionNotFound for an unknown subscription', async () => {
    const r = await get('/subscriptions/00000000-0000-0000-0000-000000000009/providers/Microsoft.MachineLearningServices/workspaces?api-version=2022-10-01');
    expect(r).toMatchObject({ status: 404, body: { error: { code: 'SubscriptionNotFound' } } });
  });
});
