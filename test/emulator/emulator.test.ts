/**
 * `startEmulator()` composes every service from the demo tenant: ARM (checking principals against
 * the Graph directory), Graph, Key Vault, the Event Grid topic, chat webhooks, the managed-identity
 * endpoint, and the HTTP control API that drives them from another process.
 */
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import type { AzureMachineLearningWorkspaces } from '@azure/arm-machinelearning';
import { AzureKeyCredential, EventGridPublisherClient } from '@azure/eventgrid';
import { SecretClient } from '@azure/keyvault-secrets';
import type { Emulator } from '../../emulator';
import {
  authorizationClient,
  FAST_LRO,
  FAST_RETRY,
  machineLearningClient,
  startEventReceiver,
  staticCredential,
  withEmulator,
  type EventReceiver,
} from '../helpers/emulator';

const SUB = '8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f';
const ADA = '11111111-1111-4111-8111-000000000001';
const KAREN = '11111111-1111-4111-8111-000000000004';
const VISION_GROUP = '44444444-4444-4444-8444-000000000001';
const NLP_GROUP = '44444444-4444-4444-8444-000000000002';
const WARDEN_SP = 'd18f1616-0d7e-4aed-a555-72dc802e5e93';
const READER = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
const WS_VISION = `/subscriptions/${SUB}/resourceGroups/rg-ml-vision/providers/Microsoft.MachineLearningServices/workspaces/mlw-vision`;

let emu: Emulator;
let auth: AuthorizationManagementClient;
let ml: AzureMachineLearningWorkspaces;
let receiver: EventReceiver;

beforeAll(async () => {
  emu = await withEmulator();
  auth = authorizationClient(emu, emu.subscriptionId);
  ml = machineLearningClient(emu, emu.subscriptionId);
  receiver = await startEventReceiver();
});
afterAll(async () => {
  await emu.stop();
  await receiver.close();
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${emu.urls.control}/_emulator${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function graphGet(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${emu.urls.graph}/v1.0${path}`, { headers: { Authorization: 'Bearer graph-token' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('startEmulator with the demo tenant', () => {
  it('serves the demo ARM resources to the real SDK clients', async () => {
    expect(emu.subscriptionId).toBe(SUB);
    const workspaces = await collect(ml.workspaces.listBySubscription());
    expect(workspaces.map((w) => `${w.name}:${w.tags?.team}`).sort()).toEqual(['mlw-nlp:nlp', 'mlw-vision-dev:vision', 'mlw-vision:vision']);
    const vision = await ml.workspaces.get('rg-ml-vision', 'mlw-vision');
    expect(vision.containerRegistry).toMatch(/registries\/crmlvision$/);
    const computes = await collect(ml.computeOperations.list('rg-ml-vision', 'mlw-vision'));
    expect(computes.map((c) => c.name)).toEqual(['cpu-cluster', 'gpu-cluster', 'ci-ada']);
    expect(computes.find((c) => c.name === 'cpu-cluster')?.identity).toBeUndefined();
    const datastores = await collect(ml.datastores.list('rg-ml-vision', 'mlw-vision'));
    expect(datastores.find((d) => d.name === 'workspaceblobstore')?.properties.credentials.credentialsType).toBe('AccountKey');
    const owners = await collect(auth.roleAssignments.listForScope(`/subscriptions/${SUB}/resourceGroups/rg-ml-nlp`, { filter: `principalId eq '${KAREN}'` }));
    expect(owners.map((r) => r.roleDefinitionId?.split('/').pop())).toEqual(['8e3af657-a8ff-443c-a75c-2fe8c4bcb635']);
  });

  it('checks role-assignment principals against the Graph directory', async () => {
    const created = await auth.roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000001', { roleDefinitionId: READER, principalId: NLP_GROUP });
    expect(created.principalType).toBe('Group');
    const newcomer = 'a0000000-0000-4000-8000-0000000000ff';
    await expect(auth.roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000002', { roleDefinitionId: READER, principalId: newcomer, principalType: 'User' })).rejects.toMatchObject({
      code: 'PrincipalNotFound',
    });
    emu.graph.addUser({ id: newcomer, displayName: 'New Hire', userPrincipalName: 'new@contoso.example' });
    await expect(auth.roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000002', { roleDefinitionId: READER, principalId: newcomer, principalType: 'User' })).resolves.toMatchObject({
      principalType: 'User',
    });
  });

  it('serves Graph, Key Vault, the Event Grid topic, webhooks and the managed-identity endpoint', async () => {
    const members = await graphGet(`/groups/${VISION_GROUP}/transitiveMembers?$select=id`);
    expect(members.status).toBe(200);
    expect((members.body.value as Array<{ id: string }>).map((m) => m.id)).toContain(ADA);
    expect((await fetch(`${emu.urls.graph}/v1.0/groups/${VISION_GROUP}`)).status).toBe(401);

    const secrets = new SecretClient(emu.vaultUrl('kv-warden'), staticCredential(), { disableChallengeResourceVerification: true, retryOptions: FAST_RETRY });
    const secret = await secrets.getSecret('nlp-inference-client-secret');
    const days = ((secret.properties.expiresOn?.getTime() ?? 0) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(24);
    expect(days).toBeLessThan(26);

    await new EventGridPublisherClient(emu.urls.eventGridTopic, 'CloudEvent', new AzureKeyCredential(emu.eventgrid.accessKey)).send([
      { type: 'Warden.Test.Composed', source: '/warden', data: { ok: true } },
    ]);
    expect(emu.eventgrid.received().map((r) => r.event.type)).toContain('Warden.Test.Composed');

    const hook = await fetch(`${emu.urls.webhook}/alerts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        type: 'message',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            content: { type: 'AdaptiveCard', version: '1.4', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', body: [{ type: 'TextBlock', text: 'hello' }] },
          },
        ],
      }),
    });
    expect(hook.status).toBe(202);
    expect(emu.webhook.received('alerts')).toHaveLength(1);

    const env = emu.wardenEnv();
    const tokenRes = await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${encodeURIComponent('https://management.azure.com')}`, {
      headers: { 'x-identity-header': env.IDENTITY_HEADER ?? '' },
    });
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;
    // a managed-identity token names Warden's own service principal; ARM attributes the write to it
    const ra = await authorizationClient(emu, SUB, staticCredential(token)).roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000003', {
      roleDefinitionId: READER,
      principalId: ADA,
      principalType: 'User',
    });
    expect(ra.createdBy).toBe(WARDEN_SP);
  });

  it('gives the env that points Warden at every endpoint', () => {
    const env = emu.wardenEnv();
    expect(env).toMatchObject({
      WARDEN_ARM_ENDPOINT: emu.urls.arm,
      WARDEN_GRAPH_ENDPOINT: emu.urls.graph,
      WARDEN_CREDENTIAL: 'emulator',
      IDENTITY_ENDPOINT: emu.urls.msi,
      IDENTITY_HEADER: emu.identityHeader,
      WARDEN_EMULATOR_VAULT_URL: emu.vaultUrl('kv-warden'),
      NODE_EXTRA_CA_CERTS: process.env.WARDEN_EMULATOR_TLS_CERT,
    });
    expect(env.WARDEN_ARM_ENDPOINT).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(env.IDENTITY_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
  });

  it('records requests per service and operation', async () => {
    const mark = emu.record.mark();
    await collect(ml.workspaces.listBySubscription());
    await graphGet(`/groups/${NLP_GROUP}`);
    expect(emu.record.since(mark, { service: 'arm' }).map((r) => r.operation)).toEqual(['arm.workspaces.list']);
    expect(emu.record.since(mark, { service: 'graph' })).toHaveLength(1);
  });
});

describe('the HTTP control API', () => {
  it('reports state and env', async () => {
    const state = await control('GET', '/state');
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({ tenantId: emu.tenantId, subscriptionId: SUB, urls: { arm: emu.urls.arm } });
    expect((state.body.arm as { workspaces: unknown[] }).workspaces).toHaveLength(3);
    expect((await control('GET', '/env')).body).toMatchObject({ WARDEN_ARM_ENDPOINT: emu.urls.arm });
  });

  it('creates a compute in Creating that becomes Succeeded, pushing events to a subscription added over HTTP', async () => {
    expect(
      (
        await control('POST', '/events/subscriptions', {
          name: 'resource-events',
          topic: `/subscriptions/${SUB}`,
          endpoint: receiver.url('resourceEvents'),
          includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
        })
      ).status,
    ).toBe(201);
    const before = receiver.received.length;
    const created = await control('POST', '/arm/resourceGroups/rg-ml-vision/workspaces/mlw-vision/computes', {
      name: 'portal-cluster',
      computeType: 'AmlCompute',
      provisioningState: 'Creating',
      succeedAfterMs: 30,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'portal-cluster', properties: { provisioningState: 'Creating' } });
    const deadline = Date.now() + 3000;
    while ((await ml.computeOperations.get('rg-ml-vision', 'mlw-vision', 'portal-cluster')).properties?.provisioningState !== 'Succeeded') {
      if (Date.now() > deadline) throw new Error('never succeeded');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await control('POST', '/idle')).status).toBe(200);
    await receiver.waitFor(before + 2);
    const subjects = receiver.received.slice(before).map((r) => (r.body as Array<{ subject: string }>)[0]?.subject);
    expect(subjects).toEqual([`${WS_VISION}/computes/portal-cluster`, `${WS_VISION}/computes/portal-cluster`]);

    expect((await control('PATCH', '/arm/resourceGroups/rg-ml-vision/workspaces/mlw-vision/computes/portal-cluster', { identity: { type: 'SystemAssigned' } })).status).toBe(200);
    expect((await ml.computeOperations.get('rg-ml-vision', 'mlw-vision', 'portal-cluster')).identity?.type).toBe('SystemAssigned');
    expect((await control('DELETE', '/arm/resourceGroups/rg-ml-vision/workspaces/mlw-vision/computes/portal-cluster')).body).toEqual({ deleted: true });
    await emu.idle();
    await receiver.waitFor(before + 4);
    expect((await control('DELETE', '/events/subscriptions/resource-events')).status).toBe(200);
  });

  it('creates, updates and deletes workspaces', async () => {
    const created = await control('POST', '/arm/resourceGroups/rg-ml-speech/workspaces', { name: 'mlw-speech', location: 'swedencentral', tags: { team: 'speech' } });
    expect(created.status).toBe(201);
    expect((await ml.workspaces.get('rg-ml-speech', 'mlw-speech')).location).toBe('swedencentral');
    await control('PATCH', '/arm/resourceGroups/rg-ml-speech/workspaces/mlw-speech', { tags: { team: 'nlp' } });
    expect((await ml.workspaces.get('rg-ml-speech', 'mlw-speech')).tags).toEqual({ team: 'nlp' });
    await control('DELETE', '/arm/resourceGroups/rg-ml-speech/workspaces/mlw-speech');
    await expect(ml.workspaces.get('rg-ml-speech', 'mlw-speech')).rejects.toMatchObject({ statusCode: 404 });
    expect((await control('POST', '/arm/resourceGroups/rg-ml-speech/workspaces', { name: 42 })).status).toBe(400);
  });

  it('adds and removes group members, near-expires a secret and advances the clock', async () => {
    const added = await control('POST', `/graph/groups/${NLP_GROUP}/members`, { memberId: ADA });
    expect(added.body).toEqual({ added: true });
    expect(emu.graph.transitiveMemberIds(NLP_GROUP)).toContain(ADA);
    await control('DELETE', `/graph/groups/${NLP_GROUP}/members/${ADA}`);
    expect(emu.graph.transitiveMemberIds(NLP_GROUP)).not.toContain(ADA);
    expect((await control('POST', '/graph/groups/00000000-0000-0000-0000-000000000000/members', { memberId: ADA })).status).toBeGreaterThanOrEqual(400);

    const expired = await control('POST', '/graph/applications/33333333-3333-4333-8333-000000000004/passwords/66666666-6666-4666-8666-000000000041/expire', { days: 3 });
    expect(expired.status).toBe(200);
    const app = emu.graph.getApplication('33333333-3333-4333-8333-000000000004');
    const end = new Date(app?.passwordCredentials[0]?.endDateTime ?? 0).getTime();
    expect(Math.round((end - emu.clock.now()) / 86_400_000)).toBe(3);

    const before = emu.clock.now();
    const advanced = await control('POST', '/clock/advance', { days: 1 });
    expect(new Date(advanced.body.now as string).getTime() - before).toBeGreaterThanOrEqual(86_400_000);
  });

  it('injects faults and latency, propagation delays, and counts requests', async () => {
    const fault = await control('POST', '/faults', { service: 'arm', operation: 'arm.workspaces.get', status: 503, retryAfterSeconds: 0, times: 1 });
    expect(fault.status).toBe(201);
    const mark = emu.record.mark();
    await ml.workspaces.get('rg-ml-nlp', 'mlw-nlp');
    const counted = await control('GET', `/requests?since=${mark}&service=arm`);
    expect(counted.body).toMatchObject({ count: 2, byOperation: { 'arm.workspaces.get': 2 } });
    await control('DELETE', '/faults');

    await control('POST', '/arm/propagate', { principalId: KAREN, failures: 1 });
    await expect(auth.roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000010', { roleDefinitionId: READER, principalId: KAREN, principalType: 'User' })).rejects.toMatchObject({
      code: 'PrincipalNotFound',
    });
    await expect(auth.roleAssignments.create(WS_VISION, 'a0000000-0000-4000-8000-000000000010', { roleDefinitionId: READER, principalId: KAREN, principalType: 'User' })).resolves.toBeDefined();

    await control('PUT', '/latency', { ms: 60 });
    const t0 = Date.now();
    await ml.workspaces.get('rg-ml-nlp', 'mlw-nlp');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    await control('PUT', '/latency', { ms: 0 });
    // control traffic is neither recorded nor delayed
    const m2 = emu.record.mark();
    await control('GET', '/state');
    expect(emu.record.since(m2, { includeInjected: true })).toHaveLength(0);
  });

  it('makes the next compute operation fail and pages with a smaller page size', async () => {
    await control('POST', '/arm/operations/fail', { kind: 'stop', code: 'ComputeBusy' });
    await expect(ml.computeOperations.beginStopAndWait('rg-ml-vision', 'mlw-vision', 'ci-ada', FAST_LRO)).rejects.toThrow(/ComputeBusy/);
    expect((await control('PUT', '/arm/settings', { pageSize: 1 })).body).toMatchObject({ pageSize: 1 });
    const mark = emu.record.mark();
    expect(await collect(ml.workspaces.listBySubscription())).toHaveLength(3);
    expect(emu.record.since(mark, { operation: 'arm.workspaces.list' })).toHaveLength(3);
    await control('PUT', '/arm/settings', { pageSize: 100 });
  });
});
