/**
 * Graph application registrations through the real Graph client: list paging, delta (a quiet tenant
 * costs one request), addPassword/removePassword by object id and by appId, owners.
 */
import { Client, PageIterator, type PageCollection } from '@microsoft/microsoft-graph-client';
import { startStandaloneGraph, type StandaloneGraph } from '../../emulator/graph/standalone';
import { graphError, tls } from './graph-helpers';

const OWNER = '1a1a1a1a-0000-4000-8000-000000000001';
const OWNER_SP = '1b1b1b1b-0000-4000-8000-000000000001';
const APP = { id: '1c1c1c1c-0000-4000-8000-000000000001', appId: '1d1d1d1d-0000-4000-8000-000000000001' };
const SEEDED_KEY = '1e1e1e1e-0000-4000-8000-000000000001';

function appSeed(i: number): { id: string; appId: string; displayName: string } {
  const n = i.toString(16).padStart(12, '0');
  return { id: `2c2c2c2c-0000-4000-8000-${n}`, appId: `2d2d2d2d-0000-4000-8000-${n}`, displayName: `app-${i}` };
}

const section = {
  users: [{ id: OWNER, displayName: 'Owner', userPrincipalName: 'owner@contoso.example' }],
  servicePrincipals: [{ id: OWNER_SP, appId: '1f1f1f1f-0000-4000-8000-000000000001', displayName: 'deployer' }],
  applications: [
    {
      ...APP,
      displayName: 'warden-managed',
      owners: [OWNER, OWNER_SP],
      passwordCredentials: [
        {
          keyId: SEEDED_KEY,
          displayName: 'seeded',
          startDateTime: '2025-01-01T00:00:00Z',
          endDateTime: '2027-01-01T00:00:00Z',
          secretText: 'seeded-secret-value-never-returned-0000',
        },
      ],
      keyCredentials: [
        { keyId: '1e1e1e1e-0000-4000-8000-000000000002', startDateTime: '2025-01-01T00:00:00Z', endDateTime: '2026-01-01T00:00:00Z' },
      ],
    },
    ...Array.from({ length: 7 }, (_, i) => appSeed(i)),
  ],
};

let g: StandaloneGraph;
let client: Client;

async function allPages(first: PageCollection): Promise<{ items: Array<Record<string, unknown>>; deltaLink: string | undefined }> {
  const items: Array<Record<string, unknown>> = [];
  const it = new PageIterator(client, first, (item: Record<string, unknown>) => {
    items.push(item);
    return true;
  });
  await it.iterate();
  return { items, deltaLink: it.getDeltaLink() };
}

beforeAll(async () => {
  g = await startStandaloneGraph({ tls: tls(), section });
  client = Client.initWithMiddleware({ authProvider: { getAccessToken: async () => 'token' }, baseUrl: g.url, customHosts: new Set(['127.0.0.1']) });
});

afterAll(async () => {
  await g.close();
});

it('lists applications in pages with $select, and never returns secret values', async () => {
  const mark = g.ctx.record.mark();
  const first = await client.api('/applications').select('id,appId,displayName,passwordCredentials').top(3).get();
  const { items } = await allPages(first);
  expect(items).toHaveLength(8);
  expect(g.ctx.record.since(mark, { operation: 'graph.applications.list' })).toHaveLength(3);
  const managed = items.find((a) => a.id === APP.id);
  expect(Object.keys(managed ?? {}).sort()).toEqual(['appId', 'displayName', 'id', 'passwordCredentials']);
  expect(managed?.passwordCredentials).toEqual([
    {
      customKeyIdentifier: null,
      displayName: 'seeded',
      endDateTime: '2027-01-01T00:00:00Z',
      hint: 'see',
      keyId: SEEDED_KEY,
      secretText: null,
      startDateTime: '2025-01-01T00:00:00Z',
    },
  ]);
  expect(JSON.stringify(items)).not.toContain('seeded-secret-value');
});

it('filters applications by appId and reads one by object id and by appId', async () => {
  const filtered = await client.api('/applications').filter(`appId eq '${APP.appId}'`).select('id').get();
  expect(filtered.value).toEqual([{ id: APP.id }]);
  expect((await client.api(`/applications/${APP.id}`).get()).appId).toBe(APP.appId);
  const byAppId = await client.api(`/applications(appId='${APP.appId}')`).select('id,keyCredentials').get();
  expect(byAppId.id).toBe(APP.id);
  expect(byAppId.keyCredentials[0]).toMatchObject({ type: 'AsymmetricX509Cert', usage: 'Verify', key: null });
  const missing = await graphError(client.api("/applications(appId='00000000-0000-0000-0000-000000000000')").get());
  expect(missing.statusCode).toBe(404);
});

it('runs an application delta: full first, then only changes; a quiet tenant costs one request', async () => {
  const first = await client.api('/applications/delta').select('id,appId,passwordCredentials').header('Prefer', 'odata.maxpagesize=3').get();
  const full = await allPages(first);
  expect(full.items).toHaveLength(8);
  expect(full.deltaLink).toBeDefined();

  let mark = g.ctx.record.mark();
  const quiet = await client.api(full.deltaLink as string).get();
  expect(quiet.value).toEqual([]);
  expect(quiet['@odata.nextLink']).toBeUndefined();
  expect(g.ctx.record.since(mark, { operation: 'graph.applications.delta' })).toHaveLength(1);

  const added = await client.api(`/applications/${appSeed(4).id}/addPassword`).post({ passwordCredential: { displayName: 'rotation' } });
  mark = g.ctx.record.mark();
  const changed = await client.api(quiet['@odata.deltaLink']).get();
  expect(g.ctx.record.since(mark, { operation: 'graph.applications.delta' })).toHaveLength(1);
  expect(changed.value).toHaveLength(1);
  expect(changed.value[0].id).toBe(appSeed(4).id);
  expect(changed.value[0].passwordCredentials.map((p: { keyId: string }) => p.keyId)).toEqual([added.keyId]);
});

it('adds and removes a password by object id and by appId', async () => {
  const before = Date.now();
  const created = await client.api(`/applications(appId='${APP.appId}')/addPassword`).post({ passwordCredential: { displayName: 'warden-rotated' } });
  expect(created.secretText).toHaveLength(40);
  expect(created.hint).toBe(created.secretText.slice(0, 3));
  expect(created.displayName).toBe('warden-rotated');
  const end = Date.parse(created.endDateTime) - Date.parse(created.startDateTime);
  expect(end).toBeGreaterThan(729 * 24 * 3600 * 1000);
  expect(Date.parse(created.startDateTime)).toBeGreaterThanOrEqual(before - 1000);
  expect(g.control.secretText(APP.appId, created.keyId)).toBe(created.secretText);

  const read = await client.api(`/applications/${APP.id}`).select('passwordCredentials').get();
  const stored = read.passwordCredentials.find((p: { keyId: string }) => p.keyId === created.keyId);
  expect(stored).toMatchObject({ hint: created.hint, secretText: null, displayName: 'warden-rotated' });
  expect(JSON.stringify(read)).not.toContain(created.secretText);

  const withEnd = await client
    .api(`/applications/${APP.id}/addPassword`)
    .post({ passwordCredential: { displayName: 'short', endDateTime: '2030-01-01T00:00:00Z' } });
  expect(withEnd.endDateTime).toBe('2030-01-01T00:00:00.000Z');

  const removed: unknown = await client.api(`/applications/${APP.id}/removePassword`).post({ keyId: created.keyId });
  expect(removed).toBeUndefined();
  await client.api(`/applications(appId='${APP.appId}')/removePassword`).post({ keyId: withEnd.keyId });
  const after = g.control.getApplication(APP.id);
  expect(after?.passwordCredentials.map((p) => p.keyId)).toEqual([SEEDED_KEY]);

  const again = await graphError(client.api(`/applications/${APP.id}/removePassword`).post({ keyId: created.keyId }));
  expect(again.statusCode).toBe(400);
  const noBody = await graphError(client.api(`/applications/${APP.id}/removePassword`).post({}));
  expect(noBody.statusCode).toBe(400);
});

it('moves a credential end through the control (expirePasswordSoon)', async () => {
  const soon = new Date(Date.now() + 3 * 24 * 3600 * 1000);
  g.control.expirePasswordSoon(APP.appId, SEEDED_KEY, soon);
  const read = await client.api(`/applications/${APP.id}`).select('passwordCredentials').get();
  expect(read.passwordCredentials[0].endDateTime).toBe(soon.toISOString());
});

it('lists owners by object id and by appId with @odata.type', async () => {
  const owners = await client.api(`/applications/${APP.id}/owners`).select('id,displayName').get();
  expect(owners.value).toEqual([
    { '@odata.type': '#microsoft.graph.user', id: OWNER, displayName: 'Owner' },
    { '@odata.type': '#microsoft.graph.servicePrincipal', id: OWNER_SP, displayName: 'deployer' },
  ]);
  const byAppId = await client.api(`/applications(appId='${APP.appId}')/owners`).get();
  expect(byAppId.value.map((o: { id: string }) => o.id)).toEqual([OWNER, OWNER_SP]);
});
