/**
 * The managed-identity endpoint against the real `ManagedIdentityCredential` and
 * `DefaultAzureCredential` (App Service flavour: IDENTITY_ENDPOINT + IDENTITY_HEADER).
 * MSAL keeps one token cache per process, so every test asks for a resource no other test uses.
 */
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { EmuClock } from '../../emulator/core/clock';
import { FaultInjector } from '../../emulator/core/faults';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type RunningService } from '../../emulator/core/server';
import { createMsiService, type MsiService } from '../../emulator/eventgrid';

const TENANT = '11111111-2222-3333-4444-555555555555';
const ENV_KEYS = ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER'] as const;

let ctx: EmuContext;
let msi: MsiService;
let running: RunningService;
let savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string>>;

function claims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function useEndpoint(header = msi.identityHeader): void {
  process.env.IDENTITY_ENDPOINT = `${running.url}/msi/token`;
  process.env.IDENTITY_HEADER = header;
}

beforeAll(async () => {
  ctx = { clock: new EmuClock(), record: new RequestRecord(), faults: new FaultInjector() };
  msi = createMsiService({ ctx, tenantId: TENANT });
  running = await createService({ service: 'msi', router: msi.router, ctx });
});

afterAll(async () => {
  await running.close();
});

beforeEach(() => {
  savedEnv = {};
  for (const k of ENV_KEYS) if (process.env[k] !== undefined) savedEnv[k] = process.env[k];
});

afterEach(() => {
  for (const k of ENV_KEYS) {
    const v = savedEnv[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

it('gives ManagedIdentityCredential a token for the system-assigned identity over plain http', async () => {
  expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  useEndpoint();
  const mark = ctx.record.mark();
  const token = await new ManagedIdentityCredential().getToken('https://management.azure.com/.default');

  expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3600_000);
  expect(claims(token.token)).toMatchObject({
    aud: 'https://management.azure.com',
    oid: msi.systemAssigned.objectId,
    appid: msi.systemAssigned.clientId,
    tid: TENANT,
  });
  const calls = ctx.record.since(mark, { operation: 'msi.token' });
  expect(calls.map((c) => c.status)).toEqual([200]);
  const q = new URLSearchParams(calls[0]?.query);
  expect(q.get('api-version')).toBe('2019-08-01');
  expect(q.get('resource')).toBe('https://management.azure.com');
  expect(q.get('client_id')).toBeNull();
});

it('serves a user-assigned identity chosen by client id', async () => {
  useEndpoint();
  const clientId = '99999999-8888-7777-6666-555555555555';
  const mark = ctx.record.mark();
  const token = await new ManagedIdentityCredential({ clientId }).getToken('https://vault.azure.net/.default');
  expect(claims(token.token)).toMatchObject({ aud: 'https://vault.azure.net', appid: clientId });
  expect(claims(token.token).oid).not.toBe(msi.systemAssigned.objectId);
  expect(new URLSearchParams(ctx.record.since(mark, { operation: 'msi.token' })[0]?.query).get('client_id')).toBe(clientId);
});

it('is picked up by DefaultAzureCredential', async () => {
  useEndpoint();
  const mark = ctx.record.mark();
  const token = await new DefaultAzureCredential().getToken('https://graph.microsoft.com/.default');
  expect(claims(token.token)).toMatchObject({ aud: 'https://graph.microsoft.com', oid: msi.systemAssigned.objectId });
  expect(ctx.record.since(mark, { operation: 'msi.token' }).map((c) => c.status)).toEqual([200]);
});

/**
 * MSAL fixes the managed-identity endpoint and header for the whole process on first use (a static
 * source in ManagedIdentityClient), so a credential with another header needs a fresh module copy.
 */
async function freshIdentity(): Promise<typeof import('@azure/identity')> {
  let mod: typeof import('@azure/identity') | undefined;
  await jest.isolateModulesAsync(async () => {
    mod = await import('@azure/identity');
  });
  if (!mod) throw new Error('@azure/identity did not load');
  return mod;
}

it('refuses a wrong identity header with 401, and the credential fails', async () => {
  useEndpoint('not-the-header');
  const { ManagedIdentityCredential: FreshCredential } = await freshIdentity();
  const mark = ctx.record.mark();
  await expect(new FreshCredential().getToken('https://eventgrid.azure.net/.default')).rejects.toThrow();
  const statuses = ctx.record.since(mark, { operation: 'msi.token' }).map((c) => c.status);
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.every((s) => s === 401)).toBe(true);
});

it('answers 400 without the header, the resource or the api-version it serves', async () => {
  const base = `${running.url}/msi/token`;
  const headers = { 'X-IDENTITY-HEADER': msi.identityHeader };
  expect((await fetch(`${base}?api-version=2019-08-01&resource=https://x`)).status).toBe(400);
  expect((await fetch(`${base}?api-version=2019-08-01`, { headers })).status).toBe(400);
  expect((await fetch(`${base}?api-version=2017-09-01&resource=https://x`, { headers })).status).toBe(400);
  const ok = await fetch(`${base}?api-version=2019-08-01&resource=https://x`, { headers });
  expect(ok.status).toBe(200);
  const body = (await ok.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ resource: 'https://x', token_type: 'Bearer', client_id: msi.systemAssigned.clientId });
  expect(body.expires_on).toMatch(/^\d+$/);
});
