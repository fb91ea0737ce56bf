/**
 * The emulated Key Vault against the real `SecretClient` over HTTPS: challenge auth, versions,
 * paging, updates, deletion polling, error codes, and retries of injected faults.
 */
import { readFileSync } from 'node:fs';
import type { GetTokenOptions, TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { EmuClock } from '../../emulator/core/clock';
import { EventBus } from '../../emulator/core/eventbus';
import { FaultInjector } from '../../emulator/core/faults';
import { Pusher } from '../../emulator/core/push';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type RunningService } from '../../emulator/core/server';
import { createKeyVaultService, type KeyVaultControl } from '../../emulator/keyvault';

const TENANT = '11111111-2222-3333-4444-555555555555';
const SUBSCRIPTION = '00000000-0000-0000-0000-00000000aaaa';
const VAULT = 'kv-warden';
const FAST_RETRY = { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 };

function tls(): { cert: Buffer; key: Buffer } {
  const cert = process.env.WARDEN_EMULATOR_TLS_CERT;
  const key = process.env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key) throw new Error('Run through `npm test`: WARDEN_EMULATOR_TLS_CERT/KEY are not set.');
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/** A credential that records what the challenge asked for. */
function recordingCredential(): TokenCredential & { calls: Array<{ scopes: string[]; tenantId: string | undefined }> } {
  const calls: Array<{ scopes: string[]; tenantId: string | undefined }> = [];
  return {
    calls,
    async getToken(scopes: string | string[], options?: GetTokenOptions) {
      calls.push({ scopes: Array.isArray(scopes) ? scopes : [scopes], tenantId: options?.tenantId });
      return { token: 'kv-test-token', expiresOnTimestamp: Date.now() + 3600_000 };
    },
  };
}

let ctx: EmuContext;
let control: KeyVaultControl;
let running: RunningService;

function client(credential: TokenCredential = recordingCredential()): SecretClient {
  return new SecretClient(running.url, credential, { disableChallengeResourceVerification: true, retryOptions: FAST_RETRY });
}

beforeAll(async () => {
  const clock = new EmuClock();
  ctx = { clock, record: new RequestRecord(), faults: new FaultInjector() };
  const kv = createKeyVaultService(
    { ctx, events: new EventBus(new Pusher(clock), clock), tenantId: TENANT, subscriptionId: SUBSCRIPTION },
    [{ name: VAULT, secrets: [{ name: 'seeded', value: 'seed-value', expiresOn: '2030-01-01T00:00:00Z', tags: { owner: 'warden' } }] }],
  );
  control = kv.control;
  const vault = kv.vaults[0];
  if (!vault) throw new Error('vault missing');
  running = await createService({ service: 'keyvault', router: vault.router, ctx, tls: tls() });
  control.setVaultUrl(VAULT, running.url);
});

afterAll(async () => {
  await running.close();
});

afterEach(() => {
  ctx.faults.clear();
});

describe('challenge-based auth', () => {
  it('answers the first, token-less request with the 401 challenge and then serves the authorised retry', async () => {
    const credential = recordingCredential();
    const c = client(credential);
    const mark = ctx.record.mark();

    await c.setSecret('challenge-1', 'v1');
    await c.getSecret('challenge-1');

    const calls = ctx.record.since(mark, { service: 'keyvault' }).map((r) => `${r.method} ${r.status}`);
    expect(calls).toEqual(['PUT 401', 'PUT 200', 'GET 200']);
    expect(credential.calls[0]).toEqual({ scopes: ['https://vault.azure.net/.default'], tenantId: TENANT });
  });

  it('sends the challenge header exactly and refuses a request without a bearer token', async () => {
    const res = await fetch(`${running.url}/secrets/seeded/?api-version=2025-07-01`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="https://vault.azure.net"`,
    );
    const authorised = await fetch(`${running.url}/secrets/seeded/?api%2Dversion=2025-07-01`, {
      headers: { Authorization: 'Bearer anything' },
    });
    expect(authorised.status).toBe(200);
  });
});

describe('secrets', () => {
  it('sets versions and reads the latest and a specific version', async () => {
    const c = client();
    const expiresOn = new Date(Date.now() + 90 * 86400_000);
    const first = await c.setSecret('app-secret', 'first-value', { contentType: 'text/plain', tags: { app: 'a1' } });
    const second = await c.setSecret('app-secret', 'second-value', { expiresOn, tags: { app: 'a1', rotation: '2' } });

    expect(first.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(second.properties.version).not.toBe(first.properties.version);
    expect(second.properties.id).toBe(`${running.url}/secrets/app-secret/${second.properties.version}`);
    expect(second.properties.vaultUrl).toBe(running.url);

    const latest = await c.getSecret('app-secret');
    expect(latest.value).toBe('second-value');
    expect(latest.properties.version).toBe(second.properties.version);
    expect(latest.properties.expiresOn?.getTime()).toBe(Math.floor(expiresOn.getTime() / 1000) * 1000);
    expect(latest.properties.tags).toEqual({ app: 'a1', rotation: '2' });

    const old = await c.getSecret('app-secret', { version: first.properties.version ?? '' });
    expect(old.value).toBe('first-value');
    expect(old.properties.contentType).toBe('text/plain');

    expect(control.versions(VAULT, 'app-secret').map((v) => v.value)).toEqual(['first-value', 'second-value']);
    expect(control.getSecret(VAULT, 'APP-SECRET')?.value).toBe('second-value');
  });

  it('serves seeded secrets from the tenant file', async () => {
    const s = await client().getSecret('seeded');
    expect(s.value).toBe('seed-value');
    expect(s.properties.expiresOn?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(s.properties.tags).toEqual({ owner: 'warden' });
  });

  it('lists secrets page by page with absolute nextLinks, without values or versions in ids', async () => {
    for (let i = 0; i < 30; i++) control.setSecret(VAULT, `paged-${String(i).padStart(2, '0')}`, `value-${i}`);
    const c = client();
    const mark = ctx.record.mark();
    const pages: string[][] = [];
    for await (const page of c.listPropertiesOfSecrets().byPage({ maxPageSize: 10 })) {
      pages.push(page.map((p) => p.name));
      for (const p of page) {
        expect(p.id).toBe(`${running.url}/secrets/${p.name}`);
        expect(p.version).toBeUndefined();
      }
    }
    const names = pages.flat();
    expect(pages.length).toBeGreaterThan(3);
    expect(pages.slice(0, -1).every((p) => p.length === 10)).toBe(true);
    expect(names.filter((n) => n.startsWith('paged-'))).toHaveLength(30);
    expect(new Set(names).size).toBe(names.length);
    expect(ctx.record.since(mark, { operation: 'keyvault.secrets.list', status: (s) => s === 200 })).toHaveLength(pages.length);

    let all = 0;
    for await (const _ of c.listPropertiesOfSecrets()) all++;
    expect(all).toBe(names.length);
  });

  it('lists the versions of a secret with versioned ids', async () => {
    const c = client();
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await c.setSecret('versioned', `v${i}`)).properties.version);
    const seen = [];
    for await (const p of c.listPropertiesOfSecretVersions('versioned')) {
      expect(p.id).toBe(`${running.url}/secrets/versioned/${p.version}`);
      seen.push(p.version);
    }
    expect(seen.sort()).toEqual([...made].sort());
  });

  it('updates tags and enabled; a disabled version answers 403 SecretDisabled', async () => {
    const c = client();
    const s = await c.setSecret('to-update', 'value');
    const version = s.properties.version ?? '';
    const updated = await c.updateSecretProperties('to-update', version, { tags: { state: 'rotated' }, contentType: 'application/json' });
    expect(updated.tags).toEqual({ state: 'rotated' });
    expect(updated.contentType).toBe('application/json');

    await c.updateSecretProperties('to-update', version, { enabled: false });
    await expect(c.getSecret('to-update')).rejects.toMatchObject({ statusCode: 403, code: 'Forbidden' });
    await expect(c.getSecret('to-update', { version })).rejects.toMatchObject({ statusCode: 403 });
    // The SDK's RestError drops the inner error, so read the body itself.
    const raw = await fetch(`${running.url}/secrets/to-update/${version}?api-version=7.5`, { headers: { Authorization: 'Bearer t' } });
    expect(await raw.json()).toEqual({
      error: { code: 'Forbidden', message: expect.any(String), innererror: { code: 'SecretDisabled' } },
    });
    expect(control.getSecret(VAULT, 'to-update')?.enabled).toBe(false);

    await c.updateSecretProperties('to-update', version, { enabled: true });
    expect((await c.getSecret('to-update')).properties.tags).toEqual({ state: 'rotated' });
  });

  it('deletes through the poller, which polls /deletedsecrets until the deletion completes', async () => {
    const c = client();
    await c.setSecret('to-delete', 'bye');
    const mark = ctx.record.mark();
    const poller = await c.beginDeleteSecret('to-delete', { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();

    expect(deleted.name).toBe('to-delete');
    expect(deleted.recoveryId).toBe(`${running.url}/deletedsecrets/to-delete`);
    expect(deleted.deletedOn).toBeInstanceOf(Date);
    const polls = ctx.record.since(mark, { operation: 'keyvault.secrets.getDeleted' }).map((r) => r.status);
    expect(polls).toEqual([404, 200]);
    expect(control.isDeleted(VAULT, 'to-delete')).toBe(true);

    await expect(c.getSecret('to-delete')).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
    await expect(c.setSecret('to-delete', 'again')).rejects.toMatchObject({ statusCode: 409 });
    await c.purgeDeletedSecret('to-delete');
    expect((await c.setSecret('to-delete', 'again')).value).toBe('again');
  });

  it('answers 404 SecretNotFound for a missing secret or version and 400 BadParameter for a bad name', async () => {
    const c = client();
    await expect(c.getSecret('does-not-exist')).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
    await expect(c.getSecret('seeded', { version: '0123456789abcdef0123456789abcdef' })).rejects.toMatchObject({
      statusCode: 404,
      code: 'SecretNotFound',
    });
    await expect(c.setSecret('bad_name', 'x')).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
  });
});

describe('faults', () => {
  it('lets the SDK retry injected 5xx answers until the write succeeds', async () => {
    const c = client();
    await c.getSecret('seeded');
    const rule = ctx.faults.add({ service: 'keyvault', operation: 'keyvault.secrets.set', status: 503, times: 2 });
    const mark = ctx.record.mark();

    const s = await c.setSecret('after-faults', 'ok');

    expect(s.value).toBe('ok');
    expect(ctx.faults.fired(rule)).toBe(2);
    const statuses = ctx.record.since(mark, { operation: 'keyvault.secrets.set', includeInjected: true }).map((r) => [r.status, r.injected]);
    expect(statuses).toEqual([
      [503, true],
      [503, true],
      [200, false],
    ]);
  });

  it('fails the next writes of one vault on request and the SDK retries through them', async () => {
    const c = client();
    await c.getSecret('seeded');
    control.failNextWrites(VAULT, 1, 500);
    const mark = ctx.record.mark();
    await c.setSecret('after-write-failure', 'ok');
    expect(ctx.record.since(mark, { operation: 'keyvault.secrets.set' }).map((r) => r.status)).toEqual([500, 200]);
    expect(control.getSecret(VAULT, 'after-write-failure')?.value).toBe('ok');
  });

  it('retries a 429 that carries Retry-After and gives up on one without it', async () => {
    const c = client();
    await c.getSecret('seeded');
    ctx.faults.add({ service: 'keyvault', operation: 'keyvault.secrets.get', status: 429, retryAfterSeconds: 0, times: 1 });
    const mark = ctx.record.mark();
    expect((await c.getSecret('seeded')).value).toBe('seed-value');
    expect(ctx.record.since(mark, { operation: 'keyvault.secrets.get', includeInjected: true }).map((r) => r.status)).toEqual([429, 200]);

    ctx.faults.add({ service: 'keyvault', operation: 'keyvault.secrets.get', status: 429, times: 1 });
    await expect(c.getSecret('seeded')).rejects.toMatchObject({ statusCode: 429 });
  });
});

describe('tenant file validation', () => {
  it('rejects a bad section with a message naming the problem', () => {
    const clock = new EmuClock();
    const deps = { ctx, events: new EventBus(new Pusher(clock), clock), tenantId: TENANT, subscriptionId: SUBSCRIPTION };
    expect(() => createKeyVaultService(deps, [{ name: 'kv', secrets: [{ name: 'bad_name', value: 'x' }] }])).toThrow(/Secret names/);
    expect(() => createKeyVaultService(deps, [{ name: 'kv-a' }, { name: 'KV-A' }])).toThrow(/unique/);
    expect(createKeyVaultService(deps, { vaults: [{ name: 'kv-b' }] }).vaults.map((v) => v.name)).toEqual(['kv-b']);
    expect(createKeyVaultService(deps, undefined).vaults).toEqual([]);
  });
});
