/**
 * Contract tests of the Graph client's retries (`graph()` in `shared/azure/clients.ts`): the real
 * `@microsoft/microsoft-graph-client`, built by `createAzureClients` from emulator settings, against the
 * emulated Graph with injected faults. The SDK itself retries only 429/503/504; Warden's chain also
 * retries a 500, a 502 or a dropped connection, but only for requests that are safe to repeat.
 */
import type { Emulator } from '../../emulator';
import { isIdempotentGraphRequest, type AzureClients } from '../../shared/azure/clients';
import { createLimiter } from '../../shared/concurrency';
import { statusOf } from '../../shared/errors';
import { createGraphApplications } from '../../shared/ports/azure/applications';
import type { Applications } from '../../shared/ports/applications';
import { wardenClients, withEmulator } from '../helpers/emulator';

const TENANT = '9a7e1c3d-0000-4000-8000-0000000000aa';
const OWNER = '9a7e1c3d-0000-4000-8000-000000000001';
const APP_OBJECT = '9a7e1c3d-0000-4000-8000-000000000101';
const APP_ID = '9a7e1c3d-0000-4000-8000-000000000201';
const SUBSCRIPTION = '9a7e1c3d-0000-4000-8000-000000000301';

const tenant = {
  tenantId: TENANT,
  directory: {
    users: [{ id: OWNER, displayName: 'Owner', userPrincipalName: 'owner@contoso.example', mail: 'owner@contoso.example' }],
    applications: [{ id: APP_OBJECT, appId: APP_ID, displayName: 'Retry API', owners: [OWNER], passwordCredentials: [] }],
  },
};

let emu: Emulator;
let clients: AzureClients;
let apps: Applications;

beforeAll(async () => {
  emu = await withEmulator({ tenant });
  ({ clients } = wardenClients(emu));
  apps = createGraphApplications(clients, createLimiter(4));
});

afterAll(async () => {
  await emu.stop();
});

/** Every request of one operation since `mark`, injected answers included: `[status, injected]`. */
const calls = (mark: number, operation: string): Array<[number, boolean]> =>
  emu.record.since(mark, { operation, includeInjected: true }).map((r) => [r.status, r.injected]);

describe('Graph client retries against the emulator', () => {
  it.each([500, 502])('retries a one-off %i on a GET and returns the answer', async (status) => {
    const mark = emu.record.mark();
    const rule = emu.faults.add({ operation: 'graph.applications.get', status, times: 1 });
    const app = await apps.getByObjectId(APP_OBJECT);
    expect(app?.appId).toBe(APP_ID);
    expect(emu.faults.fired(rule)).toBe(1);
    expect(calls(mark, 'graph.applications.get')).toEqual([
      [status, true],
      [200, false],
    ]);
  });

  it('retries a GET whose connection closed without an answer', async () => {
    const mark = emu.record.mark();
    const rule = emu.faults.add({ operation: 'graph.applications.get', reset: true, times: 1 });
    const app = await apps.getByObjectId(APP_OBJECT);
    expect(app?.appId).toBe(APP_ID);
    expect(emu.faults.fired(rule)).toBe(1);
    expect(calls(mark, 'graph.applications.get').filter(([, injected]) => !injected)).toEqual([[200, false]]);
  });

  it('honours Retry-After on a 500', async () => {
    const mark = emu.record.mark();
    emu.faults.add({ operation: 'graph.applications.get', status: 500, retryAfterSeconds: 1, times: 1 });
    await apps.getByObjectId(APP_OBJECT);
    const [failed, ok] = emu.record.since(mark, { operation: 'graph.applications.get', includeInjected: true });
    expect(failed?.injected).toBe(true);
    expect((ok?.time ?? 0) - (failed?.time ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('gives up after the configured retries: a lasting 500 reaches the caller', async () => {
    const mark = emu.record.mark();
    const rule = emu.faults.add({ operation: 'graph.applications.get', status: 500 });
    try {
      await expect(apps.getByObjectId(APP_OBJECT)).rejects.toMatchObject({ statusCode: 500 });
      // The first try and three retries.
      expect(calls(mark, 'graph.applications.get')).toHaveLength(4);
    } finally {
      emu.faults.remove(rule);
    }
  });

  it('does not retry a 500 on addPassword: a second secret must never be minted', async () => {
    const mark = emu.record.mark();
    const rule = emu.faults.add({ operation: 'graph.applications.addPassword', status: 500, times: 1 });
    const err: unknown = await apps.addPassword(APP_OBJECT, { displayName: 'warden test', endDateTime: new Date(Date.now() + 86_400_000) }).catch((e: unknown) => e);
    expect(statusOf(err)).toBe(500);
    expect(emu.faults.fired(rule)).toBe(1);
    expect(calls(mark, 'graph.applications.addPassword')).toEqual([[500, true]]);
    expect(emu.graph.getApplication(APP_OBJECT)?.passwordCredentials).toEqual([]);
  });

  it('does not retry a 502 or a dropped connection on other POSTs (sendMail, $batch)', async () => {
    const graph = await clients.graph();
    const mark = emu.record.mark();
    emu.faults.add({ operation: 'graph.sendMail', status: 502, times: 1 });
    const mail = { message: { subject: 'x', body: { contentType: 'Text', content: 'x' }, toRecipients: [{ emailAddress: { address: 'ops@contoso.example' } }] } };
    const mailErr: unknown = await (graph.api(`/users/${OWNER}/sendMail`).post(mail) as Promise<unknown>).catch((e: unknown) => e);
    expect(statusOf(mailErr)).toBe(502);
    expect(calls(mark, 'graph.sendMail')).toEqual([[502, true]]);
    expect(emu.graph.outbox()).toEqual([]);

    emu.faults.add({ operation: 'graph.batch', reset: true, times: 1 });
    const batch = { requests: [{ id: '1', method: 'GET', url: `/applications/${APP_OBJECT}` }] };
    await expect(graph.api('/$batch').post(batch) as Promise<unknown>).rejects.toBeDefined();
    expect(emu.record.since(mark, { operation: 'graph.batch', includeInjected: true })).toHaveLength(1);
  });

  it('retries a 500 on the PATCH and DELETE of a subscription, not on its reauthorize POST', async () => {
    const graph = await clients.graph();
    const mark = emu.record.mark();
    emu.faults.add({ operation: 'graph.subscriptions.update', status: 500, times: 1 });
    emu.faults.add({ operation: 'graph.subscriptions.delete', status: 500, times: 1 });
    emu.faults.add({ operation: 'graph.subscriptions.reauthorize', status: 500, times: 1 });
    // The subscription does not exist: a retried request ends in the emulator's own 404.
    const patchErr: unknown = await (graph.api(`/subscriptions/${SUBSCRIPTION}`).patch({ expirationDateTime: new Date().toISOString() }) as Promise<unknown>).catch((e: unknown) => e);
    const deleteErr: unknown = await (graph.api(`/subscriptions/${SUBSCRIPTION}`).delete() as Promise<unknown>).catch((e: unknown) => e);
    const reauthErr: unknown = await (graph.api(`/subscriptions/${SUBSCRIPTION}/reauthorize`).post({}) as Promise<unknown>).catch((e: unknown) => e);
    expect([statusOf(patchErr), statusOf(deleteErr), statusOf(reauthErr)]).toEqual([404, 404, 500]);
    expect(calls(mark, 'graph.subscriptions.update')).toEqual([
      [500, true],
      [404, false],
    ]);
    expect(calls(mark, 'graph.subscriptions.delete')).toEqual([
      [500, true],
      [404, false],
    ]);
    expect(calls(mark, 'graph.subscriptions.reauthorize')).toEqual([[500, true]]);
  });

  it('keeps the SDK retrying 429 with Retry-After on a POST (Graph did not take it)', async () => {
    const mark = emu.record.mark();
    emu.faults.add({ operation: 'graph.applications.addPassword', status: 429, retryAfterSeconds: 1, times: 1 });
    const created = await apps.addPassword(APP_OBJECT, { displayName: 'warden test', endDateTime: new Date(Date.now() + 86_400_000) });
    expect(calls(mark, 'graph.applications.addPassword')).toEqual([
      [429, true],
      [200, false],
    ]);
    expect(emu.graph.getApplication(APP_OBJECT)?.passwordCredentials.map((p) => p.keyId.toLowerCase())).toEqual([created.keyId]);
  });
});

describe('isIdempotentGraphRequest', () => {
  const root = 'https://graph.microsoft.com/v1.0';
  it.each([
    ['GET', `${root}/applications/delta`, true],
    [undefined, `${root}/groups?$top=1`, true],
    ['PATCH', `${root}/subscriptions/${SUBSCRIPTION}`, true],
    ['DELETE', `${root}/subscriptions/${SUBSCRIPTION}`, true],
    ['POST', `${root}/subscriptions`, false],
    ['POST', `${root}/subscriptions/${SUBSCRIPTION}/reauthorize`, false],
    ['POST', `${root}/applications/${APP_OBJECT}/addPassword`, false],
    ['POST', `${root}/applications/${APP_OBJECT}/removePassword`, false],
    ['POST', `${root}/users/${OWNER}/sendMail`, false],
    ['POST', `${root}/$batch`, false],
    ['PATCH', `${root}/applications/${APP_OBJECT}`, false],
    ['DELETE', `${root}/groups/${OWNER}`, false],
  ])('%s %s → %s', (method, url, expected) => {
    expect(isIdempotentGraphRequest(method, url)).toBe(expected);
  });
});
