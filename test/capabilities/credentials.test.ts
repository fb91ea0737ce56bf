/**
 * The credentials capability end to end: the real Graph and Key Vault SDK clients against the
 * emulator, state, audit trail and alert de-duplication in Azurite, the real alert sinks (webhook,
 * mail through Graph, Event Grid topic), and the emulator's clock as Warden's clock. A sweep here is
 * what the work pipeline does with the sweep's targets: `listTargets()`, then one reconcile each.
 */
import { randomUUID } from 'node:crypto';
import type { Emulator, TenantFile } from '../../emulator';
import { createAlerter } from '../../shared/alerts';
import { createAuditLog } from '../../shared/audit';
import { createAzureClients } from '../../shared/azure/clients';
import type { Capability, CapabilityName } from '../../shared/capability';
import { DAY_MS, type Clock } from '../../shared/clock';
import { createLimiter } from '../../shared/concurrency';
import { createCredentialsModule, type CredentialsModule } from '../../shared/credentials';
import { PARTITIONS, WARDEN_MARK } from '../../shared/credentials/model';
import { FINDING } from '../../shared/credentials/plan';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import type { AuditLog, AuditRecord } from '../../shared/ports/audit';
import { TableStateStore } from '../../shared/ports/state';
import { reconcile, type ReconcileReport } from '../../shared/reconcile';
import { loadSettings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';
import { withEmulator } from '../helpers/emulator';

const TENANT_ID = 'c7cb8e56-3c8d-431c-a94c-866e27a25b45';
const SUB = '5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f';
const MAILBOX = 'f0f0f0f0-0000-4000-8000-000000000001';
const OWNER = 'f0f0f0f0-0000-4000-8000-000000000002';
const VAULT = 'kv-warden';

const ROTATED = { id: 'a0000000-0000-4000-8000-000000000001', appId: 'b0000000-0000-4000-8000-000000000001' };
const ORIGINAL_KEY = 'c0000000-0000-4000-8000-000000000001';
const ROTATING: Rotation = { appId: ROTATED.appId, secretName: 'app-secret' };
const EVENT_APP = { id: 'a0000000-0000-4000-8000-000000000002', appId: 'b0000000-0000-4000-8000-000000000002' };
const EVENT_KEY = 'c0000000-0000-4000-8000-000000000002';

const users = [
  { id: MAILBOX, displayName: 'Warden mailbox', userPrincipalName: 'warden@contoso.example', mail: 'warden@contoso.example' },
  { id: OWNER, displayName: 'Vision owner', userPrincipalName: 'vision-owner@contoso.example', mail: 'vision-owner@contoso.example' },
];

function rotatedApp(endDateTime = 'now+10d') {
  return {
    ...ROTATED,
    displayName: 'Vision API',
    owners: [OWNER],
    passwordCredentials: [{ keyId: ORIGINAL_KEY, displayName: 'original', startDateTime: 'now-80d', endDateTime, secretText: 'original-secret-text-0001' }],
  };
}

interface Harness {
  emu: Emulator;
  module: CredentialsModule;
  state: TableStateStore;
  audit: AuditLog;
  sink: ReturnType<typeof memorySink>;
  queued: WorkRequest[];
  run(target: string, trigger?: { kind: 'event' | 'schedule'; id: string }): Promise<ReconcileReport>;
  sweep(): Promise<{ targets: string[]; reports: ReconcileReport[] }>;
  auditRecords(): Promise<AuditRecord[]>;
  stop(): Promise<void>;
}

type Rotation = { appId: string; secretName: string };

async function harness(tenant: TenantFile, rotate: Rotation[], credentials: Partial<NonNullable<PolicyInput['credentials']>> = {}): Promise<Harness> {
  const emu = await withEmulator({ tenant });
  const run = randomUUID().replace(/-/g, '').slice(0, 12);
  const settings = loadSettings({
    AzureWebJobsStorage: process.env.WARDEN_TEST_STORAGE ?? 'UseDevelopmentStorage=true',
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: emu.urls.arm,
    WARDEN_GRAPH_ENDPOINT: emu.urls.graph,
    WARDEN_POLICY: JSON.stringify({ scopes: [`/subscriptions/${SUB}`] }),
  });
  const policy = parsePolicy({
    mode: 'enforce',
    scopes: [`/subscriptions/${SUB}`],
    credentials: { rotate: rotate.map((r) => ({ ...r, vaultUrl: emu.vaultUrl(VAULT) })), ...credentials },
    alerts: {
      webhookUrl: `${emu.urls.webhook}/alerts`,
      eventGridTopic: emu.urls.eventGridTopic,
      mail: { from: 'warden@contoso.example', to: ['secops@contoso.example'], notifyOwners: true },
      repeatHours: 24,
    },
  }).policy;
  const clients = createAzureClients(settings, { retry: { maxRetries: 2, retryDelayInMs: 5, maxRetryDelayInMs: 20 }, lroPollMs: 10 });
  const clock: Clock = { now: () => emu.clock.nowDate() };
  const sink = memorySink();
  const logger = createLogger(sink, {}, () => clock.now());
  const state = new TableStateStore(await clients.table(`credstate${run}`));
  const audit = createAuditLog(await clients.table(`credaudit${run}`), () => clock.now().getTime());
  const alerter = createAlerter({ policy, clients, state, clock, logger }, { maxRetryDelayMs: 20 });
  const queued: WorkRequest[] = [];
  const module = createCredentialsModule({
    settings,
    policy,
    clients,
    clock,
    limiter: createLimiter(8),
    logger,
    state,
    alerter,
    enqueue: async (items) => {
      queued.push(...items);
    },
  });
  const stub = (name: CapabilityName): Capability => ({
    name,
    listTargets: async () => [],
    parseTarget: (t) => t,
    inScope: () => false,
    plan: async () => {
      throw new Error('not used');
    },
    apply: async () => [],
  });
  const capabilities = { rbac: stub('rbac'), workspaces: stub('workspaces'), compute: stub('compute'), credentials: module.capability };
  const runOne = (target: string, trigger: { kind: 'event' | 'schedule'; id: string } = { kind: 'schedule', id: 'sweep' }) =>
    reconcile({ capability: 'credentials', target, trigger }, { capabilities, audit, alerter, mode: policy.mode, logger, clock });
  return {
    emu,
    module,
    state,
    audit,
    sink,
    queued,
    run: runOne,
    async sweep() {
      const targets = await module.capability.listTargets();
      const reports: ReconcileReport[] = [];
      for (const t of targets) reports.push(await runOne(t));
      return { targets, reports };
    },
    async auditRecords() {
      return (await audit.query({ limit: 500 })).records;
    },
    async stop() {
      await emu.stop();
    },
  };
}

const passwordsOf = (h: Harness, appId: string) => h.emu.graph.getApplication(appId)?.passwordCredentials ?? [];

describe('credentials: rotation of a listed app', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ tenantId: TENANT_ID, subscriptionId: SUB, directory: { users, applications: [rotatedApp()] }, vaults: [{ name: VAULT }] }, [ROTATING]);
  });
  afterAll(async () => h.stop());

  it('rotates a secret expiring in 10 days: new password, value in Key Vault with expiry and tags, owners alerted', async () => {
    const { targets, reports } = await h.sweep();
    expect(targets).toContain(ROTATED.appId);
    const report = reports.find((r) => r.target === ROTATED.appId);
    expect(report?.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['rotateSecret:applied']);

    const pwds = passwordsOf(h, ROTATED.appId);
    expect(pwds).toHaveLength(2);
    const added = pwds.find((p) => p.displayName?.startsWith(WARDEN_MARK));
    expect(added?.displayName).toMatch(/^warden:.+\/app-secret$/);
    expect(Date.parse(added?.endDateTime ?? '')).toBeGreaterThan(h.emu.clock.now() + 89 * DAY_MS);

    const stored = h.emu.keyvault.getSecret(VAULT, 'app-secret');
    expect(stored?.value).toBe(h.emu.graph.secretText(ROTATED.appId, added?.keyId ?? ''));
    expect(stored?.tags).toEqual({ appId: ROTATED.appId, keyId: added?.keyId, managedBy: 'warden' });
    expect(stored?.contentType).toBe('application/vnd.warden.entra-client-secret');
    expect(Math.abs((stored?.expiresOn?.getTime() ?? 0) - Date.parse(added?.endDateTime ?? ''))).toBeLessThan(1000);

    const mails = h.emu.graph.outbox().filter((m) => (m.message.toRecipients ?? []).some((r) => r.emailAddress.address === 'vision-owner@contoso.example'));
    expect(mails.map((m) => m.message.subject).join('\n')).toMatch(/Rotated/i);
    expect(h.emu.webhook.received('alerts').length).toBeGreaterThanOrEqual(1);
  });

  it('plans nothing on a second run', async () => {
    const again = await h.run(ROTATED.appId);
    expect(again.plan.changes).toEqual([]);
  });

  it('keeps the old password through the overlap and removes it after (simulated clock)', async () => {
    h.emu.clock.advance(6 * DAY_MS);
    const during = await h.sweep();
    expect(during.reports.flatMap((r) => r.plan.changes)).toEqual([]);
    expect(passwordsOf(h, ROTATED.appId).map((p) => p.keyId)).toContain(ORIGINAL_KEY);

    h.emu.clock.advance(DAY_MS + 60_000);
    const after = await h.sweep();
    const outcomes = after.reports.flatMap((r) => r.outcomes.map((o) => `${o.change.action}:${o.outcome}:${String(o.change.data.keyId)}`));
    expect(outcomes).toEqual([`removePassword:applied:${ORIGINAL_KEY}`]);
    const left = passwordsOf(h, ROTATED.appId);
    expect(left).toHaveLength(1);
    expect(left[0]?.keyId.toLowerCase()).toBe(h.emu.keyvault.getSecret(VAULT, 'app-secret')?.tags.keyId);
    expect(await h.state.list(PARTITIONS.removals)).toEqual([]);

    const audit = await h.auditRecords();
    expect(audit.filter((r) => r.capability === 'credentials' && r.outcome === 'applied').map((r) => r.action).sort()).toEqual(['removePassword', 'rotateSecret']);
  });
});

describe('credentials: Key Vault failures during rotation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ tenantId: TENANT_ID, subscriptionId: SUB, directory: { users, applications: [rotatedApp()] }, vaults: [{ name: VAULT }] }, [ROTATING]);
  });
  afterAll(async () => h.stop());

  it('leaves no extra password on the app when Key Vault answers 5xx, and a retry completes the rotation', async () => {
    h.emu.keyvault.failNextWrites(VAULT, 100, 503);
    const failed = await h.run(ROTATED.appId);
    expect(failed.outcomes[0]).toMatchObject({ outcome: 'failed', error: { retryable: true } });
    expect(failed.retryable).toBe(true);
    expect(passwordsOf(h, ROTATED.appId).map((p) => p.keyId)).toEqual([ORIGINAL_KEY]);
    expect(h.emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' })).toBe(1);
    expect(h.emu.record.count({ service: 'graph', operation: 'graph.applications.removePassword' })).toBe(1);
    expect(h.emu.keyvault.getSecret(VAULT, 'app-secret')).toBeUndefined();

    h.emu.keyvault.failNextWrites(VAULT, 0, 503);
    const retried = await h.run(ROTATED.appId, { kind: 'schedule', id: 'retry' });
    expect(retried.outcomes.map((o) => o.outcome)).toEqual(['applied']);
    const added = passwordsOf(h, ROTATED.appId).filter((p) => p.displayName?.startsWith(WARDEN_MARK));
    expect(added).toHaveLength(1);
    expect(h.emu.keyvault.getSecret(VAULT, 'app-secret')?.tags.keyId).toBe(added[0]?.keyId);
  });

  it('retries the Key Vault write with the same credential when the outage is short', async () => {
    h.emu.clock.advance(80 * DAY_MS);
    const addsBefore = h.emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' });
    // The SDK tries 3 times (2 retries): 4 failures exhaust one attempt, the second attempt succeeds.
    h.emu.keyvault.failNextWrites(VAULT, 4, 503);
    const report = await h.run(ROTATED.appId);
    expect(report.outcomes.find((o) => o.change.action === 'rotateSecret')?.outcome).toBe('applied');
    expect(h.emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' })).toBe(addsBefore + 1);
    const current = h.emu.keyvault.getSecret(VAULT, 'app-secret');
    expect(h.emu.graph.secretText(ROTATED.appId, current?.tags.keyId ?? '')).toBe(current?.value);
  });
});

describe('credentials: Key Vault events', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      tenantId: TENANT_ID,
      subscriptionId: SUB,
      directory: {
        users,
        applications: [
          {
            ...EVENT_APP,
            displayName: 'Event API',
            owners: [OWNER],
            passwordCredentials: [{ keyId: EVENT_KEY, displayName: `${WARDEN_MARK}kv/event-secret`, startDateTime: 'now-80d', endDateTime: 'now+10d', secretText: 'event-secret-text-0001' }],
          },
        ],
      },
      vaults: [{ name: VAULT, secrets: [{ name: 'event-secret', value: 'event-secret-text-0001', expiresOn: 'now+10d', tags: { appId: EVENT_APP.appId, keyId: EVENT_KEY, managedBy: 'warden' } }] }],
    }, [{ appId: EVENT_APP.appId, secretName: 'event-secret' }]);
  });
  afterAll(async () => h.stop());

  it('rotates on SecretNearExpiry (camelCase payload), and a duplicate of the event does not rotate again', async () => {
    const event = h.emu.keyvault.emitSecretEvent(VAULT, 'event-secret', 'SecretNearExpiry', { casing: 'camel-string' });
    const first = await h.module.handleKeyVaultEvent(event);
    expect(first).toMatchObject({ outcome: 'enqueued', appId: EVENT_APP.appId });
    for (const item of h.queued.splice(0)) await h.run(item.target, { kind: 'event', id: event.id });
    expect(h.emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' })).toBe(1);

    const duplicate = await h.module.handleKeyVaultEvent(event);
    expect(duplicate).toMatchObject({ outcome: 'skipped', appId: EVENT_APP.appId });
    expect(h.queued).toEqual([]);
    // Even a duplicate that was queued before the rotation ran (both in flight) plans nothing.
    const late = await h.run(EVENT_APP.appId, { kind: 'event', id: event.id });
    expect(late.plan.changes).toEqual([]);
    expect(h.emu.record.count({ service: 'graph', operation: 'graph.applications.addPassword' })).toBe(1);
    expect(h.emu.keyvault.versions(VAULT, 'event-secret')).toHaveLength(2);
  });

  it('reads the PascalCase payload of SecretExpired the same way', async () => {
    const versions = h.emu.keyvault.versions(VAULT, 'event-secret');
    const event = h.emu.keyvault.emitSecretEvent(VAULT, 'event-secret', 'SecretExpired', { casing: 'pascal', version: versions[0]?.version ?? '' });
    expect(await h.module.handleKeyVaultEvent(event)).toMatchObject({ outcome: 'skipped', appId: EVENT_APP.appId });
  });
});

describe('credentials: no secret value anywhere', () => {
  it('captures every log line, alert body and audit record of a rotation and finds no secret value in them', async () => {
    const h = await harness({ tenantId: TENANT_ID, subscriptionId: SUB, directory: { users, applications: [rotatedApp()] }, vaults: [{ name: VAULT }] }, [ROTATING]);
    try {
      // A failed attempt (its password taken back), then the rotation, then the overlap's end.
      h.emu.keyvault.failNextWrites(VAULT, 100, 503);
        const reports: ReconcileReport[] = [await h.run(ROTATED.appId)];
      h.emu.keyvault.failNextWrites(VAULT, 0, 503);
      reports.push(...(await h.sweep()).reports);
      h.emu.clock.advance(8 * DAY_MS);
      reports.push(...(await h.sweep()).reports);
      expect(reports.flatMap((r) => r.outcomes.map((o) => `${o.change.action}:${o.outcome}`))).toEqual(['rotateSecret:failed', 'rotateSecret:applied', 'removePassword:applied']);

      const secret = h.emu.keyvault.getSecret(VAULT, 'app-secret')?.value;
      expect(secret).toMatch(/.{16,}/);
      const values = [secret ?? '', 'original-secret-text-0001'];
      const audit = await h.auditRecords();
      expect(audit.length).toBeGreaterThan(2);
      const channels: Array<[string, string]> = [
        ...h.sink.records.map((r, i): [string, string] => [`log record ${i}`, JSON.stringify(r)]),
        ['log text', h.sink.text()],
        ...audit.map((r, i): [string, string] => [`audit record ${i}`, JSON.stringify(r)]),
        ...h.emu.webhook.received().map((w, i): [string, string] => [`webhook alert ${i}`, JSON.stringify(w)]),
        ...h.emu.graph.outbox().map((m, i): [string, string] => [`mail alert ${i}`, JSON.stringify(m)]),
        ...h.emu.eventgrid.received().map((e, i): [string, string] => [`Event Grid alert ${i}`, JSON.stringify(e)]),
        ...reports.map((r, i): [string, string] => [`report ${i} (plans, outcomes, error messages)`, JSON.stringify(r)]),
        ...reports.flatMap((r) => r.outcomes.filter((o) => o.error).map((o, i): [string, string] => [`error ${i}`, o.error?.message ?? ''])),
      ];
      expect(h.emu.graph.outbox().length).toBeGreaterThan(0);
      expect(h.emu.webhook.received().length).toBeGreaterThan(0);
      expect(channels.some(([, t]) => t.includes('Rotated'))).toBe(true);
      // Name where it leaked, never print it: the test output must not carry the secret either.
      const leaks = channels.filter(([, t]) => values.some((v) => v.length > 0 && t.includes(v))).map(([where]) => where);
      expect(leaks).toEqual([]);
    } finally {
      await h.stop();
    }
  });
});

describe('credentials: a 2,000-app tenant', () => {
  const apps = Array.from({ length: 2000 }, (_, i) => {
    const n = i.toString().padStart(12, '0');
    const expiring = i % 100 === 0;
    return {
      id: `a1000000-0000-4000-8000-${n}`,
      appId: `b1000000-0000-4000-8000-${n}`,
      displayName: `App ${i}`,
      owners: expiring ? [OWNER] : [],
      passwordCredentials: [{ keyId: `c1000000-0000-4000-8000-${n}`, displayName: 'main', startDateTime: 'now-100d', endDateTime: expiring ? 'now+20d' : 'now+200d' }],
      ...(i % 7 === 0 ? { keyCredentials: [{ keyId: `d1000000-0000-4000-8000-${n}`, startDateTime: 'now-100d', endDateTime: 'now+300d' }] } : {}),
    };
  });
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ tenantId: TENANT_ID, subscriptionId: SUB, directory: { users, applications: [rotatedApp(), ...apps] }, vaults: [{ name: VAULT }] }, [ROTATING]);
  });
  afterAll(async () => h.stop());

  it('alerts the expiring ones, then sweeps again with nothing changed in at most 3 Graph requests', async () => {
    const mark = h.emu.record.mark();
    const first = await h.sweep();
    // Not 2,000 targets: only the apps that need attention (20 expiring + the listed one).
    expect(first.targets).toHaveLength(21);
    const firstGraph = h.emu.record.since(mark, { service: 'graph' });
    const pages = firstGraph.filter((r) => r.operation === 'graph.applications.delta').length;
    expect(pages).toBeLessThanOrEqual(3);
    expect(first.reports.flatMap((r) => r.plan.findings).filter((f) => f.type === FINDING.expiring)).toHaveLength(20);

    const second = h.emu.record.mark();
    const again = await h.sweep();
    expect(again.targets).toHaveLength(21);
    const requests = h.emu.record.since(second, { service: 'graph' });
    expect(requests.map((r) => r.operation)).toEqual(['graph.applications.delta']);
    expect(requests.length).toBeLessThanOrEqual(3);
    expect(again.reports.flatMap((r) => r.plan.changes)).toEqual([]);
  });
});
