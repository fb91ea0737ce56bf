/**
 * Credentials end to end on the host runner: the emulated Key Vault publishes `SecretNearExpiry`
 * (camelCase payload with string times, as seen live) to the host's Event Grid endpoint
 * (`keyVaultEvents`), which queues work on `warden-work` (a private Azurite); the `work` function runs
 * the real runtime against the emulator and rotates. Duplicate deliveries change nothing more; the
 * `sweep` timer (invoked by hand, on the emulator's simulated clock) rotates a listed app that had no
 * event, and removes the old passwords once the overlap has passed. No secret reaches the logs.
 */
import { QueueClient } from '@azure/storage-queue';
import type { Emulator } from '../../emulator';
import { startHost, type Host } from '../../host/host';
import { DAY_MS } from '../../shared/clock';
import { WARDEN_MARK } from '../../shared/credentials/model';
import type { LogRecord } from '../../shared/logging';
import { resetRuntime, useRuntime } from '../../shared/runtime';
import { WORK_QUEUE } from '../../shared/work/item';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { withEmulator } from '../helpers/emulator';
import { APP_ROOT, captureLogs, waitFor } from '../host/helpers';

const OWNER = 'f0f0f0f0-0000-4000-8000-000000000002';
const EVENT_APP = { id: 'a0000000-0000-4000-8000-000000000002', appId: 'b0000000-0000-4000-8000-000000000002' };
const EVENT_KEY = 'c0000000-0000-4000-8000-000000000002';
const SWEPT_APP = { id: 'a0000000-0000-4000-8000-000000000003', appId: 'b0000000-0000-4000-8000-000000000003' };
const SWEPT_KEY = 'c0000000-0000-4000-8000-000000000003';
const VAULT = 'kv-warden';

let emu: Emulator;
let azurite: Azurite;
let host: Host;
let queue: QueueClient;
const runtimeLogs: LogRecord[] = [];
const hostLogs = captureLogs();

beforeAll(async () => {
  emu = await withEmulator({
    tenant: {
      tenantId: 'c7cb8e56-3c8d-431c-a94c-866e27a25b45',
      subscriptionId: '5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
      directory: {
        users: [{ id: OWNER, displayName: 'Owner', userPrincipalName: 'owner@contoso.example', mail: 'owner@contoso.example' }],
        applications: [
          {
            ...EVENT_APP,
            displayName: 'Event API',
            owners: [OWNER],
            passwordCredentials: [{ keyId: EVENT_KEY, displayName: `${WARDEN_MARK}kv/event-secret`, startDateTime: 'now-80d', endDateTime: 'now+10d', secretText: 'event-secret-text-0001' }],
          },
          {
            ...SWEPT_APP,
            displayName: 'Swept API',
            owners: [OWNER],
            passwordCredentials: [{ keyId: SWEPT_KEY, displayName: 'hand-made', startDateTime: 'now-80d', endDateTime: 'now+12d', secretText: 'swept-secret-text-0001' }],
          },
        ],
      },
      vaults: [{ name: VAULT, secrets: [{ name: 'event-secret', value: 'event-secret-text-0001', expiresOn: 'now+10d', tags: { appId: EVENT_APP.appId, keyId: EVENT_KEY, managedBy: 'warden' } }] }],
    },
  });
  azurite = await startAzurite();
  const policy = {
    mode: 'enforce',
    scopes: [`/subscriptions/${emu.subscriptionId}`],
    credentials: {
      rotate: [
        { appId: EVENT_APP.appId, vaultUrl: emu.vaultUrl(VAULT), secretName: 'event-secret' },
        { appId: SWEPT_APP.appId, vaultUrl: emu.vaultUrl(VAULT), secretName: 'swept-secret' },
      ],
    },
    alerts: { webhookUrl: '%WARDEN_ALERT_WEBHOOK%' },
  };
  const env = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: azurite.connectionString,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_LRO_POLL_MS: '10',
    WARDEN_RETRY_DELAY_MS: '5',
    WARDEN_SWEEP_SCHEDULE: '0 0 */6 * * *',
  };
  await useRuntime({ env, appRoot: APP_ROOT, clock: { now: () => emu.clock.nowDate() }, logSink: (r) => runtimeLogs.push(r) });
  host = await startHost({
    port: 0,
    env,
    appRoot: APP_ROOT,
    localSettings: false,
    functions: ['keyVaultEvents', 'work', 'sweep'],
    hostJson: { extensions: { queues: { maxPollingInterval: '00:00:00.100', visibilityTimeout: '00:00:01' } } },
    disableTimers: true,
    exportEnv: false,
    logSink: hostLogs,
  });
  queue = new QueueClient(azurite.connectionString, WORK_QUEUE);
  emu.events.subscribe({
    name: 'warden-keyvault',
    topic: '*',
    endpoint: `${host.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`,
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
  });
}, 60_000);

afterAll(async () => {
  await host?.stop({ drainMs: 2000 });
  resetRuntime();
  await emu?.stop();
  await azurite?.stop();
});

/** Waits until every event was delivered and the work queue stayed empty for a while. */
async function settled(): Promise<void> {
  await emu.idle();
  let emptySince: number | undefined;
  await waitFor(
    'the work queue to drain',
    async () => {
      const n = (await queue.getProperties()).approximateMessagesCount ?? 0;
      if (n > 0) emptySince = undefined;
      else emptySince ??= Date.now();
      return emptySince !== undefined && Date.now() - emptySince > 1500;
    },
    30_000,
    100,
  );
}

const addPasswords = (): number => emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' });

describe('credentials on the host runner', () => {
  it('rotates on a SecretNearExpiry event; duplicate deliveries rotate nothing more', async () => {
    emu.keyvault.setEventCasing('camel-string');
    const published = emu.keyvault.checkExpiry();
    const nearExpiry = published.find((e) => e.subject === 'event-secret');
    expect(nearExpiry?.eventType).toBe('Microsoft.KeyVault.SecretNearExpiry');

    await waitFor('the rotated secret in Key Vault', () => emu.keyvault.versions(VAULT, 'event-secret').length === 2, 20_000);
    await settled();
    const current = emu.keyvault.getSecret(VAULT, 'event-secret');
    expect(current?.tags).toMatchObject({ appId: EVENT_APP.appId, managedBy: 'warden' });
    expect(emu.graph.secretText(EVENT_APP.appId, current?.tags.keyId ?? '')).toBe(current?.value);
    const adds = addPasswords();
    expect(adds).toBe(1);

    // Event Grid delivers at least once: the same event twice more.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
        body: JSON.stringify([nearExpiry]),
      });
      expect(res.status).toBe(202);
    }
    await settled();
    expect(addPasswords()).toBe(adds);
    expect(emu.keyvault.versions(VAULT, 'event-secret')).toHaveLength(2);
  }, 60_000);

  it('a sweep rotates the listed app no event told it about, and removes the old passwords after the overlap', async () => {
    const run = await host.invoke('sweep');
    expect(run.ok).toBe(true);
    await waitFor('the swept secret in Key Vault', () => emu.keyvault.getSecret(VAULT, 'swept-secret'), 20_000);
    await settled();
    const swept = emu.graph.getApplication(SWEPT_APP.appId)?.passwordCredentials ?? [];
    expect(swept.map((p) => p.keyId)).toContain(SWEPT_KEY);
    expect(swept.filter((p) => p.displayName?.startsWith(WARDEN_MARK))).toHaveLength(1);

    emu.clock.advance(8 * DAY_MS);
    expect((await host.invoke('sweep')).ok).toBe(true);
    await waitFor('the old passwords to go', () => {
      const a = emu.graph.getApplication(EVENT_APP.appId)?.passwordCredentials.map((p) => p.keyId.toLowerCase()) ?? [];
      const b = emu.graph.getApplication(SWEPT_APP.appId)?.passwordCredentials.map((p) => p.keyId.toLowerCase()) ?? [];
      return !a.includes(EVENT_KEY) && !b.includes(SWEPT_KEY) && a.length === 1 && b.length === 1;
    }, 20_000);
    await settled();
    expect(emu.graph.getApplication(SWEPT_APP.appId)?.passwordCredentials[0]?.keyId.toLowerCase()).toBe(emu.keyvault.getSecret(VAULT, 'swept-secret')?.tags.keyId);
  }, 60_000);

  it('kept every secret out of the runtime and host logs and the alert bodies', () => {
    const values = [
      ...emu.keyvault.versions(VAULT, 'event-secret').map((v) => v.value),
      ...emu.keyvault.versions(VAULT, 'swept-secret').map((v) => v.value),
    ];
    expect(values.length).toBeGreaterThanOrEqual(3);
    const channels: Array<[string, string]> = [
      ...runtimeLogs.map((r, i): [string, string] => [`runtime log ${i}`, JSON.stringify(r)]),
      ['host log', hostLogs.text()],
      ...emu.webhook.received().map((w, i): [string, string] => [`webhook alert ${i}`, JSON.stringify(w)]),
    ];
    expect(runtimeLogs.some((r) => /Rotated/.test(r.message))).toBe(true);
    const leaks = channels.filter(([, t]) => values.some((v) => t.includes(v))).map(([where]) => where);
    expect(leaks).toEqual([]);
  });
});
