/**
 * Key Vault system-topic events: published on every set and by the expiry scan, in both payload
 * casings seen in the wild, and delivered through an EventBus subscription to a local HTTP endpoint
 * shaped like Core Tools' Event Grid webhook.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventGridDeserializer } from '@azure/eventgrid';
import { SecretClient } from '@azure/keyvault-secrets';
import { EmuClock } from '../../emulator/core/clock';
import { EventBus } from '../../emulator/core/eventbus';
import { FaultInjector } from '../../emulator/core/faults';
import { Pusher } from '../../emulator/core/push';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type RunningService } from '../../emulator/core/server';
import { createKeyVaultService, vaultTopic, type KeyVaultControl } from '../../emulator/keyvault';

const TENANT = '11111111-2222-3333-4444-555555555555';
const SUBSCRIPTION = '00000000-0000-0000-0000-00000000aaaa';
const VAULT = 'kv-events';
const DAY_MS = 86400_000;

interface Posted {
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

let ctx: EmuContext;
let clock: EmuClock;
let pusher: Pusher;
let bus: EventBus;
let control: KeyVaultControl;
let kvService: RunningService;
let functionsHost: Server;
let functionsUrl: string;
const posted: Posted[] = [];

/** What Core Tools does for `/runtime/webhooks/eventgrid`: require `aeg-event-type`, answer 202. */
function startFunctionsHost(): Promise<void> {
  functionsHost = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!req.url?.startsWith('/runtime/webhooks/eventgrid?functionName=') || req.headers['aeg-event-type'] !== 'Notification') {
        res.writeHead(400).end();
        return;
      }
      posted.push({ url: req.url, headers: req.headers, body: JSON.parse(text) });
      res.writeHead(202).end();
    });
  });
  return new Promise((resolve) => {
    functionsHost.listen(0, '127.0.0.1', () => {
      functionsUrl = `http://127.0.0.1:${(functionsHost.address() as AddressInfo).port}`;
      resolve();
    });
  });
}

function eventsOf(type: string): Array<Record<string, unknown>> {
  return posted.flatMap((p) => (Array.isArray(p.body) ? (p.body as Array<Record<string, unknown>>) : [])).filter((e) => e.eventType === type);
}

beforeAll(async () => {
  clock = new EmuClock();
  ctx = { clock, record: new RequestRecord(), faults: new FaultInjector() };
  pusher = new Pusher(clock);
  pusher.retryDelayMs = 5;
  bus = new EventBus(pusher, clock);
  const kv = createKeyVaultService({ ctx, events: bus, tenantId: TENANT, subscriptionId: SUBSCRIPTION }, [{ name: VAULT }]);
  control = kv.control;
  const cert = process.env.WARDEN_EMULATOR_TLS_CERT;
  const key = process.env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key || !kv.vaults[0]) throw new Error('Run through `npm test`.');
  kvService = await createService({
    service: 'keyvault',
    router: kv.vaults[0].router,
    ctx,
    tls: { cert: readFileSync(cert), key: readFileSync(key) },
  });
  control.setVaultUrl(VAULT, kvService.url);
  await startFunctionsHost();
  bus.subscribe({
    name: 'kv-secrets',
    topic: vaultTopic(SUBSCRIPTION, VAULT),
    endpoint: `${functionsUrl}/runtime/webhooks/eventgrid?functionName=onKeyVaultSecret`,
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.KeyVault.SecretNewVersionCreated', 'Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
  });
});

afterAll(async () => {
  await pusher.drain();
  await kvService.close();
  await new Promise<void>((r) => functionsHost.close(() => r()));
});

beforeEach(() => {
  posted.length = 0;
  control.setEventCasing('pascal');
});

it('publishes SecretNewVersionCreated for every set through the SDK and delivers it Core Tools style', async () => {
  const c = new SecretClient(kvService.url, { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) }, {
    disableChallengeResourceVerification: true,
  });
  const first = await c.setSecret('app-secret', 'one');
  const second = await c.setSecret('app-secret', 'two');
  await pusher.drain();

  const created = eventsOf('Microsoft.KeyVault.SecretNewVersionCreated');
  expect(created).toHaveLength(2);
  expect(posted[0]?.headers['aeg-event-type']).toBe('Notification');
  expect(posted[0]?.url).toBe('/runtime/webhooks/eventgrid?functionName=onKeyVaultSecret');
  const [ev] = await new EventGridDeserializer().deserializeEventGridEvents(JSON.stringify([created[1]]));
  expect(ev?.topic).toBe(`/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-warden/providers/Microsoft.KeyVault/vaults/${VAULT}`);
  expect(ev?.subject).toBe('app-secret');
  expect(ev?.data).toEqual({
    Id: second.properties.id,
    VaultName: VAULT,
    ObjectType: 'Secret',
    ObjectName: 'app-secret',
    Version: second.properties.version,
    NBF: null,
    EXP: null,
  });
  expect((created[0]?.data as Record<string, unknown>).Version).toBe(first.properties.version);
  expect(JSON.stringify(posted)).not.toContain('"two"');
});

it('emits SecretNearExpiry once per version inside 30 days, then SecretExpired once past exp', async () => {
  const exp = new Date(clock.now() + 10 * DAY_MS);
  const v = control.setSecret(VAULT, 'expiring', 'x', { expiresOn: exp });
  control.setSecret(VAULT, 'far-future', 'x', { expiresOn: new Date(clock.now() + 90 * DAY_MS) });
  control.setSecret(VAULT, 'disabled-expiring', 'x', { expiresOn: exp, enabled: false });
  control.setSecret(VAULT, 'no-expiry', 'x');

  const near = control.checkExpiry();
  expect(near.map((e) => [e.eventType, e.subject])).toEqual([['Microsoft.KeyVault.SecretNearExpiry', 'expiring']]);
  expect(near[0]?.data).toMatchObject({ Version: v.version, EXP: Math.floor(exp.getTime() / 1000) });
  expect(control.checkExpiry()).toEqual([]);

  clock.advance(11 * DAY_MS);
  const expired = control.checkExpiry();
  expect(expired.map((e) => [e.eventType, e.subject])).toEqual([['Microsoft.KeyVault.SecretExpired', 'expiring']]);
  // Event times follow the emulator clock, which is now past the expiry.
  expect(Date.parse(expired[0]?.eventTime ?? '')).toBeGreaterThan(exp.getTime());
  expect(control.checkExpiry()).toEqual([]);

  await pusher.drain();
  expect(eventsOf('Microsoft.KeyVault.SecretNearExpiry').map((e) => e.subject)).toEqual(['expiring']);
  expect(eventsOf('Microsoft.KeyVault.SecretExpired').map((e) => e.subject)).toEqual(['expiring']);
  clock.advance(-11 * DAY_MS);
});

it('produces both payload casings: PascalCase numbers and camelCase-with-Id strings', async () => {
  const exp = new Date(clock.now() + 5 * DAY_MS);
  const nbf = new Date(clock.now() - DAY_MS);
  const v = control.setSecret(VAULT, 'cased', 'x', { expiresOn: exp, notBefore: nbf });
  const expS = Math.floor(exp.getTime() / 1000);
  const nbfS = Math.floor(nbf.getTime() / 1000);

  control.emitSecretEvent(VAULT, 'cased', 'SecretNearExpiry', { casing: 'pascal' });
  control.emitSecretEvent(VAULT, 'cased', 'Microsoft.KeyVault.SecretNearExpiry', { casing: 'camel-string' });
  await pusher.drain();

  const delivered = eventsOf('Microsoft.KeyVault.SecretNearExpiry').filter((e) => e.subject === 'cased');
  expect(delivered.map((e) => e.data)).toEqual([
    { Id: v.id, VaultName: VAULT, ObjectType: 'Secret', ObjectName: 'cased', Version: v.version, NBF: nbfS, EXP: expS },
    { version: v.version, Id: v.id, exp: String(expS), vaultName: VAULT, objectType: 'Secret', nbf: String(nbfS), objectName: 'cased' },
  ]);
  expect(v.id).toBe(`${kvService.url}/secrets/cased/${v.version}`);

  const scanned = control.checkExpiry({ casing: 'camel-string' }).filter((e) => e.subject === 'cased');
  expect(scanned.map((e) => [e.eventType, e.data])).toEqual([
    [
      'Microsoft.KeyVault.SecretNearExpiry',
      { version: v.version, Id: v.id, exp: String(expS), vaultName: VAULT, objectType: 'Secret', nbf: String(nbfS), objectName: 'cased' },
    ],
  ]);

  control.setEventCasing('camel-string');
  control.setSecret(VAULT, 'cased', 'y', { emitEvent: true });
  await pusher.drain();
  const created = eventsOf('Microsoft.KeyVault.SecretNewVersionCreated').at(-1);
  expect(Object.keys(created?.data as object)).toEqual(['version', 'Id', 'exp', 'vaultName', 'objectType', 'nbf', 'objectName']);
});

it('delivers only the subscribed event types', async () => {
  bus.subscribe({
    name: 'near-only',
    topic: vaultTopic(SUBSCRIPTION, VAULT),
    endpoint: `${functionsUrl}/runtime/webhooks/eventgrid?functionName=nearOnly`,
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry'],
  });
  control.setSecret(VAULT, 'filtered', 'x', { emitEvent: true, expiresOn: new Date(clock.now() + DAY_MS) });
  control.checkExpiry();
  await pusher.drain();
  bus.unsubscribe('near-only');

  const toNearOnly = posted
    .filter((p) => p.url.endsWith('functionName=nearOnly'))
    .flatMap((p) => p.body as Array<{ eventType: string; subject: string }>);
  expect(toNearOnly.every((e) => e.eventType === 'Microsoft.KeyVault.SecretNearExpiry')).toBe(true);
  expect(toNearOnly.map((e) => e.subject)).toContain('filtered');
  expect(eventsOf('Microsoft.KeyVault.SecretNewVersionCreated').map((e) => e.subject)).toContain('filtered');
  expect(() => control.emitSecretEvent(VAULT, 'filtered', 'SecretRotated' as never)).toThrow(/Unknown Key Vault secret event type/);
});
