/**
 * Who may plan, remediate and read the audit trail, on the host runner with the real functions:
 * - where the host enforces keys (`WARDEN_HOST_FUNCTION_KEY`, as Azure does for `authLevel:
 *   function`), a caller without the key, or with a wrong one, is refused before Warden runs;
 * - with `WARDEN_REMEDIATION_ROLE`, the caller's App Service Authentication principal must hold that
 *   app role; the `x-ms-client-principal` header is trusted only when App Service Authentication is on
 *   (`WEBSITE_AUTH_ENABLED`, where the platform strips copies sent by clients), so without it a forged
 *   header gets nowhere and the role check refuses everyone.
 * A refused request writes nothing.
 */
import { startAzurite, type Azurite } from '../helpers/azurite';
import { auditTrail, azureWrites, launchApp, workspaceId, type ResilienceApp } from './helpers';

const KEY = 'authz-function-key-7f3a9c';
const MASTER = 'authz-master-key-1d2e3f';
const ROLE = 'Warden.Remediate';

let azurite: Azurite;
let app: ResilienceApp | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);

afterEach(async () => {
  await app?.stop();
  app = undefined;
});

afterAll(async () => {
  await azurite?.stop();
});

/** An App Service Authentication principal header (base64 JSON), as Easy Auth injects it. */
function principal(name: string, roles: string[]): string {
  const claims = [
    { typ: 'preferred_username', val: name },
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: '5a5a5a5a-0000-4000-8000-000000000001' },
    ...roles.map((r) => ({ typ: 'roles', val: r })),
  ];
  return Buffer.from(JSON.stringify({ auth_typ: 'aad', name_typ: 'preferred_username', role_typ: 'roles', claims }), 'utf8').toString('base64');
}

const remediateBody = JSON.stringify({ capability: 'rbac', target: workspaceId() });

async function call(a: ResilienceApp, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; code?: string }> {
  const res = await fetch(`${a.url}${path}`, { method, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body ? { body } : {}) });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, ...(code ? { code } : {}) };
}

describe('authorization of the protected routes', () => {
  it('where the host enforces keys: no key or a wrong key is refused on every protected route; anonymous routes stay open', async () => {
    app = await launchApp({ azurite, env: { WARDEN_HOST_FUNCTION_KEY: KEY, WARDEN_HOST_MASTER_KEY: MASTER } });
    const mark = app.emu.record.mark();
    const protectedRoutes: Array<[string, string, string | undefined]> = [
      ['/api/plan?capability=all', 'GET', undefined],
      ['/api/remediate', 'POST', remediateBody],
      ['/api/audit', 'GET', undefined],
      ['/api/health/deep', 'GET', undefined],
    ];
    for (const [path, method, body] of protectedRoutes) {
      expect({ path, ...(await call(app, path, {}, method, body)) }).toEqual({ path, status: 401 });
      expect({ path, ...(await call(app, path, { 'x-functions-key': 'not-the-key' }, method, body)) }).toEqual({ path, status: 401 });
      expect({ path, ...(await call(app, `${path}${path.includes('?') ? '&' : '?'}code=${KEY.slice(0, -1)}`, {}, method, body)) }).toEqual({ path, status: 401 });
    }
    // The admin surface (running a timer or queue function by hand) needs the master key.
    expect((await call(app, '/admin/functions/sweep', { 'x-functions-key': KEY }, 'POST', '{}')).status).toBe(401);
    expect(azureWrites(app.emu, mark)).toEqual([]);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });

    // With the key (header or ?code=), the same requests go through.
    expect((await call(app, '/api/plan?capability=rbac', { 'x-functions-key': KEY })).status).toBe(200);
    expect((await call(app, `/api/audit?code=${KEY}`)).status).toBe(200);
    expect((await call(app, '/api/health')).status).toBe(200);
    expect((await call(app, '/api/graph/notifications?validationToken=abc', {}, 'POST')).status).toBe(200);
    const done = await call(app, '/api/remediate', { 'x-functions-key': KEY }, 'POST', remediateBody);
    expect(done.status).toBe(200);
    expect(app.emu.record.count({ operation: 'arm.roleAssignments.create', status: (s) => s === 201 })).toBe(2);
  }, 60_000);

  it('with WARDEN_REMEDIATION_ROLE but without App Service Authentication: every caller is refused, forged principal or not', async () => {
    app = await launchApp({ azurite, env: { WARDEN_HOST_FUNCTION_KEY: KEY, WARDEN_REMEDIATION_ROLE: ROLE } });
    const mark = app.emu.record.mark();
    const forged = { 'x-functions-key': KEY, 'x-ms-client-principal': principal('mallory@contoso.example', [ROLE]), 'x-ms-client-principal-name': 'mallory@contoso.example' };
    for (const headers of [{ 'x-functions-key': KEY }, forged]) {
      expect(await call(app, '/api/remediate', headers, 'POST', remediateBody)).toEqual({ status: 401, code: 'PrincipalRequired' });
      expect(await call(app, '/api/plan?capability=all', headers)).toEqual({ status: 401, code: 'PrincipalRequired' });
      expect(await call(app, '/api/audit', headers)).toEqual({ status: 401, code: 'PrincipalRequired' });
    }
    expect(azureWrites(app.emu, mark)).toEqual([]);
    expect(await app.queueDepth()).toEqual({ work: 0, poison: 0 });
  }, 60_000);

  it('with WARDEN_REMEDIATION_ROLE and App Service Authentication: only principals holding the role get through, and the audit names them', async () => {
    app = await launchApp({ azurite, env: { WARDEN_HOST_FUNCTION_KEY: KEY, WARDEN_REMEDIATION_ROLE: ROLE, WEBSITE_AUTH_ENABLED: 'true' } });
    const mark = app.emu.record.mark();
    const as = (p: string | undefined): Record<string, string> => ({ 'x-functions-key': KEY, ...(p ? { 'x-ms-client-principal': p } : {}) });
    expect(await call(app, '/api/remediate', as(undefined), 'POST', remediateBody)).toEqual({ status: 401, code: 'PrincipalRequired' });
    expect(await call(app, '/api/remediate', as(principal('reader@contoso.example', ['Warden.Read'])), 'POST', remediateBody)).toEqual({ status: 403, code: 'RoleRequired' });
    expect(await call(app, '/api/remediate', as(principal('caseless@contoso.example', [ROLE.toLowerCase()])), 'POST', remediateBody)).toEqual({ status: 403, code: 'RoleRequired' });
    expect(await call(app, '/api/remediate', as('not base64 json'), 'POST', remediateBody)).toEqual({ status: 401, code: 'InvalidPrincipal' });
    expect(await call(app, '/api/remediate', as(Buffer.from('{"claims":"nope"}').toString('base64')), 'POST', remediateBody)).toEqual({ status: 401, code: 'InvalidPrincipal' });
    expect(await call(app, '/api/audit', as(principal('reader@contoso.example', ['Warden.Read'])))).toEqual({ status: 403, code: 'RoleRequired' });
    expect(azureWrites(app.emu, mark)).toEqual([]);

    expect((await call(app, '/api/plan?capability=rbac', as(principal('ops@contoso.example', [ROLE])))).status).toBe(200);
    expect((await call(app, '/api/remediate', as(principal('ops@contoso.example', ['Other', ROLE])), 'POST', remediateBody)).status).toBe(200);
    expect(app.emu.record.count({ operation: 'arm.roleAssignments.create', status: (s) => s === 201 })).toBe(2);
    const applied = (await auditTrail()).filter((r) => r.outcome === 'applied');
    expect(applied).toHaveLength(2);
    for (const r of applied) expect(r.trigger).toMatchObject({ kind: 'http', caller: 'ops@contoso.example' });
  }, 60_000);
});
