/**
 * Contract tests of the Applications adapter (`shared/ports/azure/applications.ts`): the real
 * `@microsoft/microsoft-graph-client`, built by `createAzureClients` (through `wardenClients`) from emulator settings, against
 * the emulated Graph. Asserts what the adapter returns, the emulator's end state and the requests made.
 */
import type { Emulator } from '../../emulator';
import { createLimiter } from '../../shared/concurrency';
import { createGraphApplications } from '../../shared/ports/azure/applications';
import { DeltaExpiredError, type Applications } from '../../shared/ports/applications';
import { redact } from '../../shared/redact';
import { wardenClients, withEmulator } from '../helpers/emulator';

const TENANT = 'c7cb8e56-3c8d-431c-a94c-866e27a25b45';
const OWNER = 'd1d1d1d1-0000-4000-8000-000000000001';
const GUEST = 'd1d1d1d1-0000-4000-8000-000000000002';
const NO_MAIL = 'd1d1d1d1-0000-4000-8000-000000000003';
const SP = 'd1d1d1d1-0000-4000-8000-000000000004';
const APP_OBJECT = 'a0a0a0a0-0000-4000-8000-000000000001';
const APP_ID = 'b0b0b0b0-0000-4000-8000-000000000001';
const KEY = 'c0c0c0c0-0000-4000-8000-000000000001';
const CERT = 'c0c0c0c0-0000-4000-8000-000000000002';
const FILLER = 240;

const filler = Array.from({ length: FILLER }, (_, i) => ({
  id: `a1a1a1a1-0000-4000-8000-${i.toString().padStart(12, '0')}`,
  appId: `b1b1b1b1-0000-4000-8000-${i.toString().padStart(12, '0')}`,
  displayName: `Filler ${i}`,
}));

const tenant = {
  tenantId: TENANT,
  directory: {
    users: [
      { id: OWNER, displayName: 'Owner', userPrincipalName: 'owner@contoso.example', mail: 'Owner@Contoso.example' },
      { id: GUEST, displayName: 'Guest', userPrincipalName: 'guest_fabrikam.example#EXT#@contoso.example' },
      { id: NO_MAIL, displayName: 'No mail', userPrincipalName: 'nomail@contoso.example' },
    ],
    servicePrincipals: [{ id: SP, appId: 'e1e1e1e1-0000-4000-8000-000000000001', displayName: 'warden' }],
    applications: [
      {
        id: APP_OBJECT,
        appId: APP_ID,
        displayName: 'Vision API',
        owners: [OWNER, GUEST, NO_MAIL, SP],
        passwordCredentials: [{ keyId: KEY.toUpperCase(), displayName: 'original', startDateTime: 'now-300d', endDateTime: 'now+10d', secretText: 'seeded-secret-value-1234' }],
        keyCredentials: [{ keyId: CERT, displayName: 'CN=vision', startDateTime: 'now-300d', endDateTime: 'now+20d', type: 'AsymmetricX509Cert', usage: 'Verify' }],
      },
      ...filler,
    ],
  },
};

let emu: Emulator;
let apps: Applications;

beforeAll(async () => {
  emu = await withEmulator({ tenant });
  const { clients } = wardenClients(emu);
  apps = createGraphApplications(clients, createLimiter(4), { pageSize: 100 });
});

afterAll(async () => {
  await emu.stop();
});

const deltaCalls = (mark: number): number => emu.record.since(mark, { service: 'graph', operation: 'graph.applications.delta' }).length;

describe('Applications adapter against the emulated Graph', () => {
  let link = '';

  it('scans every application with a paged delta round: one request per page, credentials as metadata', async () => {
    const mark = emu.record.mark();
    const round = await apps.delta(undefined);
    expect(round.changes).toHaveLength(FILLER + 1);
    expect(round.pages).toBe(3);
    expect(deltaCalls(mark)).toBe(3);
    const vision = round.changes.find((c) => c.id === APP_OBJECT);
    expect(vision).toMatchObject({
      removed: false,
      appId: APP_ID,
      displayName: 'Vision API',
      passwords: [{ kind: 'password', keyId: KEY, displayName: 'original' }],
      certificates: [{ kind: 'certificate', keyId: CERT, type: 'AsymmetricX509Cert' }],
    });
    expect(JSON.stringify(round)).not.toContain('seeded-secret-value');
    link = round.deltaLink;
  });

  it('answers a quiet tenant with one request and no changes', async () => {
    const mark = emu.record.mark();
    const round = await apps.delta(link);
    expect(round).toMatchObject({ changes: [], pages: 1 });
    expect(deltaCalls(mark)).toBe(1);
    link = round.deltaLink;
  });

  it('reports changed, added and deleted applications in the next round', async () => {
    const soon = new Date(emu.clock.now() + 3 * 86400_000);
    emu.graph.expirePasswordSoon(APP_ID, KEY, soon);
    emu.graph.addApplication({ id: 'a2a2a2a2-0000-4000-8000-000000000001', appId: 'b2b2b2b2-0000-4000-8000-000000000001', displayName: 'New' });
    emu.graph.deleteApplication(filler[0]?.appId ?? '');
    const round = await apps.delta(link);
    const byId = new Map(round.changes.map((c) => [c.id, c]));
    expect(byId.get(APP_OBJECT)?.passwords?.[0]?.endDateTime).toBe(soon.toISOString());
    expect(byId.get('a2a2a2a2-0000-4000-8000-000000000001')).toMatchObject({ removed: false, appId: 'b2b2b2b2-0000-4000-8000-000000000001' });
    expect(byId.get(filler[0]?.id ?? '')).toEqual({ id: filler[0]?.id, removed: true });
    link = round.deltaLink;
  });

  it('throws DeltaExpiredError when Graph refuses the link (410), so the caller rescans', async () => {
    emu.graph.resetDeltaTokens();
    await expect(apps.delta(link)).rejects.toBeInstanceOf(DeltaExpiredError);
  });

  it('reads one application by app id or object id, and answers undefined for none', async () => {
    const byAppId = await apps.getByAppId(APP_ID.toUpperCase());
    expect(byAppId).toMatchObject({ id: APP_OBJECT, appId: APP_ID, passwords: [{ keyId: KEY }], certificates: [{ keyId: CERT }] });
    expect(await apps.getByObjectId(APP_OBJECT)).toEqual(byAppId);
    expect(await apps.getByAppId('ffffffff-0000-4000-8000-000000000000')).toBeUndefined();
    expect(await apps.getByObjectId('ffffffff-0000-4000-8000-000000000000')).toBeUndefined();
    await expect(apps.getByAppId("x') or true")).rejects.toThrow(/GUID/);
  });

  it("lists owners' mail addresses: users' mail, else a member UPN; never guests' #EXT# UPNs or service principals", async () => {
    expect(await apps.ownerMails(APP_OBJECT)).toEqual(['nomail@contoso.example', 'owner@contoso.example']);
  });

  it('adds a password whose secret text is registered for redaction at once, and removes it again', async () => {
    const end = new Date(emu.clock.now() + 90 * 86400_000);
    const mark = emu.record.mark();
    const created = await apps.addPassword(APP_OBJECT, { displayName: 'warden:kv1/app-secret', endDateTime: end });
    expect(emu.record.since(mark, { service: 'graph', operation: 'graph.applications.addPassword' })).toHaveLength(1);
    expect(created.secretText).toBe(emu.graph.secretText(APP_ID, created.keyId));
    expect(redact(`value=${created.secretText}`)).not.toContain(created.secretText);
    expect(created.keyId).toBe(created.keyId.toLowerCase());
    expect(created.displayName).toBe('warden:kv1/app-secret');
    expect(Date.parse(created.endDateTime)).toBe(end.getTime());
    expect(emu.graph.getApplication(APP_ID)?.passwordCredentials.map((p) => p.keyId.toLowerCase())).toContain(created.keyId);

    expect(await apps.removePassword(APP_OBJECT, created.keyId)).toBe('removed');
    expect(emu.graph.getApplication(APP_ID)?.passwordCredentials.map((p) => p.keyId.toLowerCase())).not.toContain(created.keyId);
    expect(await apps.removePassword(APP_OBJECT, created.keyId)).toBe('absent');
  });

  it('surfaces a refused write with its status (the capability maps 403 to "make Warden an owner")', async () => {
    emu.faults.add({ service: 'graph', operation: 'graph.applications.addPassword', status: 403, code: 'Authorization_RequestDenied', times: 1 });
    await expect(apps.addPassword(APP_OBJECT, { displayName: 'warden:x/y', endDateTime: new Date(emu.clock.now() + 86400_000) })).rejects.toMatchObject({ statusCode: 403 });
    expect(emu.graph.getApplication(APP_ID)?.passwordCredentials).toHaveLength(1);
  });
});
