/**
 * Contract tests: the real `@azure/arm-authorization` client against the emulated ARM — role
 * definitions, role assignments (paging, filters, 409, PrincipalNotFound, principal types), 429 retry.
 */
import type { AuthorizationManagementClient, RoleAssignment } from '@azure/arm-authorization';
import { authorizationClient, mapDirectory, startArm, staticCredential, type ArmHarness } from '../helpers/emulator';

const SUB = '1d6a3c5e-2b4f-4a6c-8e0d-9f1a2b3c4d5e';
const TENANT = 'c7cb8e56-3c8d-431c-a94c-866e27a25b45';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-ml`;
const WS = `${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const DATA_SCIENTIST = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/f6c7c914-8db3-469d-8ca1-694a8f32e121`;
const READER = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
const USER = 'a1a1a1a1-0000-4000-8000-000000000001';
const GROUP = 'a1a1a1a1-0000-4000-8000-000000000002';
const SP = 'a1a1a1a1-0000-4000-8000-000000000003';

const section = {
  subscriptions: [
    {
      id: SUB,
      resourceGroups: [{ name: 'rg-ml', location: 'westeurope', workspaces: [{ name: 'ws1' }, { name: 'ws2' }] }],
    },
  ],
  roleAssignments: [{ scope: `/subscriptions/${SUB}`, roleName: 'Reader', principalId: GROUP, principalType: 'Group' as const }],
};

let arm: ArmHarness;
let client: AuthorizationManagementClient;
const directory = mapDirectory({ [USER]: 'User', [GROUP]: 'Group', [SP]: 'ServicePrincipal' });

beforeAll(async () => {
  arm = await startArm({ section, principals: directory, tenantId: TENANT });
  client = authorizationClient(arm.url, SUB);
});
afterAll(async () => {
  await arm.close();
});
beforeEach(() => {
  arm.ctx.faults.clear();
  arm.control.pageSize = 100;
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function uuid(n: number): string {
  return `b2b2b2b2-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

describe('role definitions', () => {
  it('lists by roleName filter and gets by GUID, with the subscription-scoped id', async () => {
    const defs = await collect(client.roleDefinitions.list(`/subscriptions/${SUB}`, { filter: "roleName eq 'AzureML Data Scientist'" }));
    expect(defs).toHaveLength(1);
    expect(defs[0]?.name).toBe('f6c7c914-8db3-469d-8ca1-694a8f32e121');
    expect(defs[0]?.id).toBe(DATA_SCIENTIST);
    expect(defs[0]?.roleType).toBe('BuiltInRole');
    const uaa = await client.roleDefinitions.get(WS, '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9');
    expect(uaa.roleName).toBe('User Access Administrator');
    const rbacAdmin = await client.roleDefinitions.getById('/providers/Microsoft.Authorization/roleDefinitions/F58310D9-A9F6-439A-9E8D-F62E7B41A168');
    expect(rbacAdmin.roleName).toBe('Role Based Access Control Administrator');
    const all = await collect(client.roleDefinitions.list(`/subscriptions/${SUB}`));
    expect(all.map((d) => d.roleName)).toEqual(expect.arrayContaining(['Owner', 'Contributor', 'Reader', 'AzureML Compute Operator']));
  });

  it('answers 404 RoleDefinitionDoesNotExist for an unknown GUID', async () => {
    await expect(client.roleDefinitions.get(`/subscriptions/${SUB}`, uuid(999))).rejects.toMatchObject({ statusCode: 404, code: 'RoleDefinitionDoesNotExist' });
  });
});

describe('role assignments', () => {
  it('creates (201, facts §2.2 body), gets, lists and deletes through the double-slash scope path', async () => {
    const name = uuid(1);
    const created = await client.roleAssignments.create(WS, name, { roleDefinitionId: DATA_SCIENTIST, principalId: USER, principalType: 'User', description: 'warden:test' });
    expect(created).toMatchObject({ name, scope: WS, principalId: USER, principalType: 'User', roleDefinitionId: DATA_SCIENTIST, description: 'warden:test' });
    expect(created.id).toBe(`${WS}/providers/Microsoft.Authorization/roleAssignments/${name}`);
    expect(created.createdOn).toBeInstanceOf(Date);
    expect(arm.ctx.record.find({ operation: 'arm.roleAssignments.create' }).at(-1)).toMatchObject({ status: 201, method: 'PUT' });

    const got = await client.roleAssignments.getById(created.id ?? '');
    expect(got.principalId).toBe(USER);

    const atWs = await collect(client.roleAssignments.listForScope(WS, { filter: 'atScope()' }));
    // at or above: the workspace assignment and the inherited subscription-level Reader
    expect(atWs.map((r) => r.name).sort()).toEqual([name, arm.control.roleAssignments({ principalId: GROUP })[0]?.name].sort());

    const deleted = await client.roleAssignments.delete(WS, name);
    expect(deleted.name).toBe(name);
    await expect(client.roleAssignments.get(WS, name)).rejects.toMatchObject({ statusCode: 404, code: 'RoleAssignmentNotFound' });
    // deleting what is not there is 204, which the SDK resolves to an empty result
    const again = await client.roleAssignments.delete(WS, name);
    expect(again.name).toBeUndefined();
    expect(arm.ctx.record.find({ operation: 'arm.roleAssignments.delete' }).at(-1)?.status).toBe(204);
  });

  it('pages listForScope past the first page with absolute nextLinks', async () => {
    arm.control.pageSize = 3;
    const principals = Array.from({ length: 8 }, (_, i) => uuid(100 + i));
    for (const p of principals) directory.set(p, 'User');
    for (const [i, p] of principals.entries()) {
      await client.roleAssignments.create(`${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws2`, uuid(200 + i), {
        roleDefinitionId: READER,
        principalId: p,
        principalType: 'User',
      });
    }
    const mark = arm.ctx.record.mark();
    const listed = await collect(client.roleAssignments.listForScope(`${RG}/providers/Microsoft.MachineLearningServices/workspaces/ws2`, { filter: 'atScope()' }));
    // 8 at the workspace + 1 inherited from the subscription = 9 → 3 pages of 3
    expect(listed).toHaveLength(9);
    expect(new Set(listed.map((r) => r.name)).size).toBe(9);
    const pages = arm.ctx.record.since(mark, { operation: 'arm.roleAssignments.list' });
    expect(pages).toHaveLength(3);
    expect(pages[1]?.query).toContain('$skipToken=3');
    expect(pages[1]?.query).toContain('$filter=atScope()');
  });

  it('filters by principalId at, above and below the scope', async () => {
    const name = uuid(300);
    await client.roleAssignments.create(WS, name, { roleDefinitionId: READER, principalId: SP, principalType: 'ServicePrincipal' });
    // from the resource group: the workspace-level assignment is below, still listed for the principal
    const forSp = await collect(client.roleAssignments.listForScope(RG, { filter: `principalId eq '${SP}'` }));
    expect(forSp.map((r) => r.name)).toEqual([name]);
    // atScope() from the resource group does not see below
    const atRg = await collect(client.roleAssignments.listForScope(RG, { filter: 'atScope()' }));
    expect(atRg.map((r) => r.name)).not.toContain(name);
    // no filter: at, above and below
    const all = await collect(client.roleAssignments.listForScope(RG));
    expect(all.map((r) => r.name)).toContain(name);
    const forSub = await collect(client.roleAssignments.listForSubscription({ filter: `principalId eq '${SP}'` }));
    expect(forSub.map((r) => r.name)).toEqual([name]);
    // scope ids compare case-insensitively
    const lower = await collect(client.roleAssignments.listForScope(WS.replace('resourceGroups', 'resourcegroups'), { filter: 'atScope()' }));
    expect(lower.map((r) => r.name)).toContain(name);
    expect(lower.find((r) => r.name === name)?.scope).toBe(WS);
  });

  it('answers 409 RoleAssignmentExists for the same scope/role/principal under another name; identical re-PUT is idempotent', async () => {
    const first = uuid(400);
    await client.roleAssignments.create(WS, first, { roleDefinitionId: DATA_SCIENTIST, principalId: GROUP, principalType: 'Group' });
    const again = await client.roleAssignments.create(WS, first, { roleDefinitionId: DATA_SCIENTIST.toUpperCase(), principalId: GROUP, principalType: 'Group' });
    expect(again.name).toBe(first);
    await expect(
      client.roleAssignments.create(WS, uuid(401), { roleDefinitionId: '/providers/Microsoft.Authorization/roleDefinitions/f6c7c914-8db3-469d-8ca1-694a8f32e121', principalId: GROUP }),
    ).rejects.toMatchObject({ statusCode: 409, code: 'RoleAssignmentExists', message: 'The role assignment already exists.' });
    await expect(client.roleAssignments.create(WS, first, { roleDefinitionId: READER, principalId: GROUP, principalType: 'Group' })).rejects.toMatchObject({
      statusCode: 400,
      code: 'RoleAssignmentUpdateNotPermitted',
    });
  });

  it('answers PrincipalNotFound while a principal propagates, then succeeds', async () => {
    const fresh = uuid(500);
    await expect(client.roleAssignments.create(WS, uuid(501), { roleDefinitionId: READER, principalId: fresh, principalType: 'User' })).rejects.toMatchObject({
      statusCode: 400,
      code: 'PrincipalNotFound',
    });
    directory.set(fresh, 'User');
    arm.control.propagate(fresh, { failures: 2 });
    const errors: unknown[] = [];
    let created: RoleAssignment | undefined;
    for (let attempt = 0; attempt < 5 && !created; attempt++) {
      try {
        created = await client.roleAssignments.create(WS, uuid(501), { roleDefinitionId: READER, principalId: fresh, principalType: 'User' });
      } catch (err) {
        errors.push(err);
      }
    }
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({ code: 'PrincipalNotFound' });
    expect((errors[0] as Error).message).toContain(`Principal ${fresh.replace(/-/g, '')} does not exist in the directory ${TENANT}`);
    expect(created?.principalId).toBe(fresh);
  });

  it('propagates for a time window on the emulator clock', async () => {
    const p = uuid(550);
    directory.set(p, 'ServicePrincipal');
    arm.control.propagate(p, { forMs: 60_000 });
    await expect(client.roleAssignments.create(WS, uuid(551), { roleDefinitionId: READER, principalId: p, principalType: 'ServicePrincipal' })).rejects.toMatchObject({
      code: 'PrincipalNotFound',
    });
    arm.ctx.clock.advance(61_000);
    await expect(client.roleAssignments.create(WS, uuid(551), { roleDefinitionId: READER, principalId: p, principalType: 'ServicePrincipal' })).resolves.toMatchObject({
      principalType: 'ServicePrincipal',
    });
  });

  it('refuses a wrong principalType and fills a missing one from the directory', async () => {
    await expect(client.roleAssignments.create(WS, uuid(600), { roleDefinitionId: READER, principalId: SP, principalType: 'User' })).rejects.toMatchObject({
      statusCode: 400,
      code: 'UnmatchedPrincipalType',
    });
    const ra = await client.roleAssignments.create(WS, uuid(601), { roleDefinitionId: DATA_SCIENTIST, principalId: SP });
    expect(ra.principalType).toBe('ServicePrincipal');
  });

  it('refuses a non-GUID name and an unknown role definition', async () => {
    await expect(client.roleAssignments.create(WS, 'not-a-guid', { roleDefinitionId: READER, principalId: USER })).rejects.toMatchObject({
      statusCode: 400,
      code: 'InvalidRoleAssignmentId',
    });
    await expect(
      client.roleAssignments.create(WS, uuid(700), { roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${uuid(701)}`, principalId: USER }),
    ).rejects.toMatchObject({ statusCode: 400, code: 'RoleDefinitionDoesNotExist' });
  });

  it('honours 429 Retry-After through the SDK retry policy (attempts counted on the record)', async () => {
    arm.ctx.faults.add({ operation: 'arm.roleAssignments.create', status: 429, retryAfterSeconds: 0, times: 2 });
    const mark = arm.ctx.record.mark();
    const ra = await client.roleAssignments.create(WS, uuid(800), { roleDefinitionId: READER, principalId: USER, principalType: 'User' });
    expect(ra.name).toBe(uuid(800));
    const attempts = arm.ctx.record.since(mark, { operation: 'arm.roleAssignments.create', includeInjected: true });
    expect(attempts.map((a) => [a.status, a.injected])).toEqual([
      [429, true],
      [429, true],
      [201, false],
    ]);
  });

  it('does not retry a 429 without Retry-After', async () => {
    arm.ctx.faults.add({ operation: 'arm.roleAssignments.list', status: 429, times: 1 });
    const mark = arm.ctx.record.mark();
    await expect(collect(client.roleAssignments.listForScope(WS))).rejects.toMatchObject({ statusCode: 429, code: 'TooManyRequests' });
    expect(arm.ctx.record.since(mark, { operation: 'arm.roleAssignments.list', includeInjected: true })).toHaveLength(1);
  });

  it('refuses calls without a bearer token', async () => {
    const res = await fetch(`${arm.url}/subscriptions/${SUB}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`);
    expect(res.status).toBe(401);
    const cred = staticCredential('tok');
    await collect(authorizationClient(arm.url, SUB, cred).roleAssignments.listForSubscription());
    expect(cred.scopes).toContain(`${arm.url}/.default`);
  });
});
