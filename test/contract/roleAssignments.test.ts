/**
 * The RBAC adapters (`ports/azure/roleAssignments.ts`) with the real `@azure/arm-authorization` and ML
 * clients built by `createAzureClients`, against the emulator over HTTPS.
 */
import type { Emulator, TenantFile } from '../../emulator';
import type { AzureClients } from '../../shared/azure/clients';
import { classifyError, codeOf } from '../../shared/errors';
import { createMlResources } from '../../shared/ports/azure/ml';
import { createResourceCatalog, createRoleAssignmentsAdapter } from '../../shared/ports/azure/roleAssignments';
import { roleDefinitionIdFor, type RoleAssignments } from '../../shared/ports/rbac';
import { assignmentName } from '../../shared/rbac/plan';
import { wardenClients, withEmulator } from '../helpers/emulator';

const TENANT = 'c0c0c0c0-0000-4000-8000-000000000001';
const SUB = 'c1c1c1c1-0000-4000-8000-000000000001';
const USER = 'c2c2c2c2-0000-4000-8000-000000000001';
const USER2 = 'c2c2c2c2-0000-4000-8000-000000000002';
const GROUP = 'c3c3c3c3-0000-4000-8000-000000000001';
const DS = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-ml`;
const WS = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws-a`;

const tenant: TenantFile = {
  tenantId: TENANT,
  subscriptionId: SUB,
  directory: {
    users: [
      { id: USER, displayName: 'Ada', userPrincipalName: 'ada@contoso.example' },
      { id: USER2, displayName: 'Grace', userPrincipalName: 'grace@contoso.example' },
    ],
    groups: [{ id: GROUP, displayName: 'Vision', members: [USER] }],
  },
  resources: {
    subscriptions: [
      {
        id: SUB,
        resourceGroups: [
          {
            name: 'rg-ml',
            location: 'westeurope',
            workspaces: [
              { name: 'ws-a', tags: { team: 'vision' } },
              { name: 'ws-b', tags: { team: 'nlp' } },
            ],
            registries: [{ name: 'acrvision', tags: { team: 'vision' } }],
          },
        ],
      },
    ],
    roleAssignments: [
      { scope: RG, roleName: 'Reader', principalId: GROUP, principalType: 'Group', description: 'inherited from the group' },
      { scope: WS, roleName: 'Reader', principalId: USER2, principalType: 'User' },
    ],
  },
};

let emu: Emulator;
let clients: AzureClients;
let ra: RoleAssignments;

beforeAll(async () => {
  emu = await withEmulator({ tenant, pageSize: 2 });
  ({ clients } = wardenClients(emu));
  ra = createRoleAssignmentsAdapter(clients);
});

afterAll(async () => {
  await emu.stop();
});

beforeEach(() => emu.faults.clear());

const spec = (principalId: string, guid = DS, name = assignmentName(WS, guid, principalId)) => ({
  scope: WS,
  name,
  roleDefinitionId: roleDefinitionIdFor(SUB, guid),
  principalId,
  principalType: 'User' as const,
  description: 'warden:contract',
});

describe('role assignments', () => {
  it('lists own and inherited assignments with one atScope() list (all pages), telling them apart by scope', async () => {
    const mark = emu.record.mark();
    const list = await ra.listForResource(WS);
    const scopes = list.map((a) => a.scope.toLowerCase()).sort();
    expect(scopes).toEqual([RG.toLowerCase(), WS.toLowerCase()].sort());
    const inherited = list.find((a) => a.scope.toLowerCase() === RG.toLowerCase());
    expect(inherited).toMatchObject({ principalId: GROUP, principalType: 'Group', description: 'inherited from the group' });
    const reqs = emu.record.since(mark, { service: 'arm' });
    expect(reqs.every((r) => r.operation === 'arm.roleAssignments.list')).toBe(true);
    expect(decodeURIComponent(reqs[0]?.query ?? '')).toContain('$filter=atScope()');
  });

  it('creates with principalType and the warden mark; the same triple under another name counts as present', async () => {
    expect(await ra.create(spec(USER))).toBe('created');
    const made = emu.arm.roleAssignments({ scope: WS, principalId: USER });
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ name: assignmentName(WS, DS, USER), principalType: 'User', description: 'warden:contract' });
    expect(await ra.create(spec(USER, DS, '0f0f0f0f-0000-4000-8000-000000000001'))).toBe('exists');
    expect(emu.arm.roleAssignments({ scope: WS, principalId: USER })).toHaveLength(1);
  });

  it('surfaces PrincipalNotFound as a transient error for the retry policy', async () => {
    emu.arm.propagate(USER2, { failures: 1 });
    const err: unknown = await ra.create(spec(USER2, DS)).catch((e: unknown) => e);
    expect(codeOf(err)).toBe('PrincipalNotFound');
    expect(classifyError(err)).toBe('transient');
    expect(await ra.create(spec(USER2, DS))).toBe('created');
  });

  it('deletes (deleted, then absent)', async () => {
    const s = spec(USER, READER);
    await ra.create(s);
    expect(await ra.delete(WS, s.name)).toBe('deleted');
    expect(await ra.delete(WS, s.name)).toBe('absent');
  });

  it('honours a 429 with Retry-After (the SDK retries it)', async () => {
    emu.faults.add({ service: 'arm', operation: 'arm.roleAssignments.list', status: 429, retryAfterSeconds: 0, times: 2 });
    await expect(ra.listForResource(WS)).resolves.toEqual(expect.arrayContaining([expect.objectContaining({ principalId: USER2 })]));
    expect(emu.record.count({ operation: 'arm.roleAssignments.list', includeInjected: true, status: (s) => s === 429 })).toBe(2);
  });

  it('resolves role definitions by name and by GUID', async () => {
    const byName = await ra.findRoleDefinitions(`/subscriptions/${SUB}`, 'AzureML Data Scientist');
    expect(byName.map((d) => d.guid)).toEqual([DS]);
    expect(await ra.findRoleDefinitions(`/subscriptions/${SUB}`, 'No Such Role')).toEqual([]);
    expect(await ra.getRoleDefinition(`/subscriptions/${SUB}`, READER)).toMatchObject({ guid: READER, roleName: 'Reader' });
    expect(await ra.getRoleDefinition(`/subscriptions/${SUB}`, '00000000-0000-4000-8000-00000000dead')).toBeUndefined();
  });
});

describe('resource catalog', () => {
  it('lists workspaces with tags through the ML port, one list per scope', async () => {
    const catalog = createResourceCatalog(clients, createMlResources(clients), emu.urls.arm);
    const mark = emu.record.mark();
    const list = await catalog.listResources(`/subscriptions/${SUB}`, 'Microsoft.MachineLearningServices/workspaces');
    expect(list.map((r) => [r.name, r.tags.team, r.resourceGroup]).sort()).toEqual([
      ['ws-a', 'vision', 'rg-ml'],
      ['ws-b', 'nlp', 'rg-ml'],
    ]);
    expect(emu.record.since(mark, { service: 'arm' }).every((r) => r.operation === 'arm.workspaces.list')).toBe(true);
    expect(await catalog.getResource(WS, 'Microsoft.MachineLearningServices/workspaces')).toMatchObject({ name: 'ws-a', tags: { team: 'vision' } });
    expect(await catalog.getResource(`${RG}/providers/Microsoft.MachineLearningServices/workspaces/nope`, 'Microsoft.MachineLearningServices/workspaces')).toBeUndefined();
  });

  it('lists other resource types through the generic resource list', async () => {
    const catalog = createResourceCatalog(clients, createMlResources(clients), emu.urls.arm);
    const type = 'Microsoft.ContainerRegistry/registries';
    const list = await catalog.listResources(`/subscriptions/${SUB}`, type);
    expect(list.map((r) => [r.name, r.type, r.tags.team])).toEqual([['acrvision', type, 'vision']]);
    const id = list[0]?.id ?? '';
    expect(await catalog.getResource(id, type)).toMatchObject({ name: 'acrvision' });
  });
});
