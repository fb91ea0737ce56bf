/**
 * Shared pieces of the resilience suite: a small tenant that gives every capability something to do
 * (two role assignments, one cluster identity, one rotation, posture and expiry findings), the policy
 * that governs it, the whole app (emulator + host runner + the real functions) on a private Azurite,
 * a normalised view of the end state to compare a faulted run against a clean one, and the secret
 * scanner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TableServiceClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import type { Emulator, TenantFile } from '../../emulator';
import { startHost, type Host, type StartHostOptions } from '../../host/host';
import { formatRecord, type LogRecord } from '../../shared/logging';
import type { PolicyInput } from '../../shared/policy';
import type { AuditRecord } from '../../shared/ports/audit';
import { getRuntime, resetRuntime, useRuntime } from '../../shared/runtime';
import { WORK_POISON_QUEUE, WORK_QUEUE } from '../../shared/work/item';
import type { Azurite } from '../helpers/azurite';
import { withEmulator } from '../helpers/emulator';
import { memoryHostSink } from '../helpers/hostLogs';
import { formatHostLog } from '../../host/log';
import { freePort } from '../helpers/ports';
import { APP_ROOT, waitFor } from '../host/helpers';

export { waitFor };

export const IDS = {
  tenant: '7e57a11e-0000-4000-8000-0000000000aa',
  subscription: '7e57a11e-5ab0-4000-8000-000000000001',
  warden: '7e57a11e-0000-4000-8000-00000000a001',
  wardenApp: '7e57a11e-0000-4000-8000-00000000a002',
  ada: '7e57a11e-0000-4000-8000-000000000101',
  grace: '7e57a11e-0000-4000-8000-000000000102',
  owner: '7e57a11e-0000-4000-8000-000000000103',
  /** A user who joins the team during a test (PrincipalNotFound while ARM has not seen them). */
  newcomer: '7e57a11e-0000-4000-8000-000000000104',
  team: '7e57a11e-0000-4000-8000-000000000201',
  rotatedApp: { id: '7e57a11e-0000-4000-8000-000000000301', appId: '7e57a11e-0000-4000-8000-000000000311' },
  rotatedKey: '7e57a11e-0000-4000-8000-000000000321',
  warnedApp: { id: '7e57a11e-0000-4000-8000-000000000302', appId: '7e57a11e-0000-4000-8000-000000000312' },
  warnedKey: '7e57a11e-0000-4000-8000-000000000322',
} as const;

export const RG = 'rg-res';
export const WORKSPACE = 'mlw-res';
export const CLUSTER = 'cluster-res';
export const INSTANCE = 'ci-ada';
export const VAULT = 'kv-res';
export const SECRET_NAME = 'rotated-api-secret';
/** Secret texts seeded in the tenant: they must never surface anywhere either. */
export const SEEDED_SECRETS = ['seeded-rotated-secret-text-0001', 'seeded-warned-secret-text-0002'];
export const DATA_SCIENTIST = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
export const CLIENT_STATE = 'test-client-state-8d1f0c2a';

export function resilienceTenant(): TenantFile {
  return {
    tenantId: IDS.tenant,
    subscriptionId: IDS.subscription,
    directory: {
      callerAppId: IDS.wardenApp,
      users: [
        { id: IDS.ada, displayName: 'Ada', userPrincipalName: 'ada@contoso.example', mail: 'ada@contoso.example' },
        { id: IDS.grace, displayName: 'Grace', userPrincipalName: 'grace@contoso.example', mail: 'grace@contoso.example' },
        { id: IDS.owner, displayName: 'Owner', userPrincipalName: 'owner@contoso.example', mail: 'owner@contoso.example' },
      ],
      servicePrincipals: [{ id: IDS.warden, appId: IDS.wardenApp, displayName: 'func-warden (managed identity)' }],
      groups: [{ id: IDS.team, displayName: 'Team A', securityEnabled: true, members: [IDS.ada, IDS.grace] }],
      applications: [
        {
          ...IDS.rotatedApp,
          displayName: 'rotated-api',
          owners: [IDS.owner],
          passwordCredentials: [
            { keyId: IDS.rotatedKey, displayName: 'hand-made', startDateTime: 'now-80d', endDateTime: 'now+5d', secretText: SEEDED_SECRETS[0] },
          ],
        },
        {
          ...IDS.warnedApp,
          displayName: 'warned-api',
          owners: [IDS.owner],
          passwordCredentials: [
            { keyId: IDS.warnedKey, displayName: 'current', startDateTime: 'now-60d', endDateTime: 'now+20d', secretText: SEEDED_SECRETS[1] },
          ],
        },
      ],
    },
    resources: {
      callerObjectId: IDS.warden,
      subscriptions: [
        {
          id: IDS.subscription,
          displayName: 'Resilience',
          resourceGroups: [
            {
              name: RG,
              location: 'westeurope',
              registries: [{ name: 'crres', adminUserEnabled: true }],
              workspaces: [
                {
                  name: WORKSPACE,
                  tags: { team: 'a' },
                  containerRegistry: 'crres',
                  datastores: [{ name: 'workspaceblobstore', credentialsType: 'AccountKey', isDefault: true }],
                  computes: [
                    { name: CLUSTER, computeType: 'AmlCompute', vmSize: 'STANDARD_DS3_V2', scaleSettings: { maxNodeCount: 2, minNodeCount: 0 } },
                    { name: INSTANCE, computeType: 'ComputeInstance', vmSize: 'STANDARD_DS11_V2', assignedUser: IDS.ada, identity: { type: 'SystemAssigned' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
      roleAssignments: [
        { scope: `/subscriptions/${IDS.subscription}`, roleName: 'Contributor', principalId: IDS.warden, principalType: 'ServicePrincipal' },
      ],
    },
    vaults: [{ name: VAULT, secrets: [] }],
  };
}

export function workspaceId(): string {
  return `/subscriptions/${IDS.subscription}/resourceGroups/${RG}/providers/Microsoft.MachineLearningServices/workspaces/${WORKSPACE}`;
}

export function clusterId(): string {
  return `${workspaceId()}/computes/${CLUSTER}`;
}

export function resiliencePolicy(emu: Emulator, mode: 'enforce' | 'report' = 'enforce'): PolicyInput {
  return policyFor({ vaultUrl: emu.vaultUrl(VAULT), eventGridTopic: emu.urls.eventGridTopic }, mode);
}

/** The policy that governs {@link resilienceTenant}, for a vault and topic at these URLs. */
export function policyFor(urls: { vaultUrl: string; eventGridTopic: string }, mode: 'enforce' | 'report' = 'enforce'): PolicyInput {
  return {
    mode,
    scopes: [`/subscriptions/${IDS.subscription}`],
    rbac: { bindings: [{ id: 'team-a', group: IDS.team, role: 'AzureML Data Scientist', match: { tags: { team: 'a' } }, principals: 'members' }] },
    compute: { onViolation: { cluster: 'assign-identity', instance: 'alert' } },
    credentials: { rotate: [{ appId: IDS.rotatedApp.appId, vaultUrl: urls.vaultUrl, secretName: SECRET_NAME }] },
    alerts: {
      eventGridTopic: urls.eventGridTopic,
      webhookUrl: '%WARDEN_ALERT_WEBHOOK%',
      mail: { from: 'owner@contoso.example', to: ['ops@contoso.example'], notifyOwners: true },
    },
  };
}

export interface ResilienceApp {
  emu: Emulator;
  host: Host;
  url: string;
  azurite: Azurite;
  /** The app settings the host runs with (what a second host or a child process gets too). */
  env: Record<string, string>;
  /** What the runtime logged through its own logger (outside any invocation's context). */
  runtimeLogs: LogRecord[];
  /** Every log line so far: every host's and the runtime's. */
  allLogs(): string;
  /** A cursor into the logs, for {@link logsSince}. */
  logMark(): number[];
  /** Log lines written after `mark` (every host's and the runtime's). */
  logsSince(mark: readonly number[]): string;
  /** Counts a child-process host in {@link allLogs} and, while it lives, in what {@link settle} waits for. */
  attach(child: ChildHost): void;
  /**
   * Waits until the emulator's pushes are answered, nothing runs and the work queue stayed empty a
   * while. `visibleOnly` ignores messages queued for later (a compute's 30 s re-check); `pushes:
   * false` does not wait for the emulator's deliveries (a notification held back on purpose).
   */
  settle(timeoutMs?: number, options?: { visibleOnly?: boolean; pushes?: boolean; quietMs?: number }): Promise<void>;
  /** Runs the sweep (as its timer would) and waits until every queued reconcile is done. */
  sweep(timeoutMs?: number): Promise<void>;
  /** Messages in `warden-work` and `warden-work-poison` (visible or not). */
  queueDepth(): Promise<{ work: number; poison: number }>;
  poisonMessages(): Promise<string[]>;
  /** Stops the host (gracefully unless it is already stopped) and the emulator. */
  stop(): Promise<void>;
}

export interface LaunchOptions {
  azurite: Azurite;
  mode?: 'enforce' | 'report';
  policy?: (emu: Emulator) => PolicyInput;
  tenant?: TenantFile;
  /** Extra app settings (over the fast defaults); a function gets the emulator (for its URLs). */
  env?: Record<string, string> | ((emu: Emulator) => Record<string, string>);
  hostJson?: Record<string, unknown>;
  /** How long a fetched message stays leased between renewals (a crashed host's messages reappear after it). */
  messageLeaseMs?: number;
  /** Run no host in this process (the test starts child processes instead). */
  noHost?: boolean;
}

/** The short waits every resilience app uses: 1 s visibility timeout, quick polling, fast SDK retries. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  WARDEN_RETRY_DELAY_MS: '10',
  WARDEN_LRO_POLL_MS: '10',
  WARDEN_SWEEP_SCHEDULE: '0 0 0 1 1 *',
  WARDEN_HOST_DISABLE_TIMERS: '1',
  AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
  AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:00.200',
};

/** Empties the queues and drops the tables of a previous app on this Azurite (coalescing, alert marks, audit). */
export async function resetStorage(connectionString: string): Promise<void> {
  for (const name of [WORK_QUEUE, WORK_POISON_QUEUE]) {
    const q = new QueueClient(connectionString, name);
    await q.createIfNotExists();
    await q.clearMessages();
  }
  const tables = TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true });
  for await (const t of tables.listTables()) if (t.name) await tables.deleteTable(t.name);
}

/**
 * Starts the emulator (small tenant), resets the private Azurite, and runs the real functions on the
 * host runner in this process, as `test/helpers/app.ts` does, plus what the resilience tests need:
 * a short message lease, more hosts, captured runtime logs.
 */
export async function launchApp(opts: LaunchOptions): Promise<ResilienceApp> {
  const savedEnv = { ...process.env };
  const emu = await withEmulator({ tenant: opts.tenant ?? resilienceTenant() });
  const restore = (): void => {
    resetRuntime();
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
  };
  try {
    return await launchOn(emu, opts, restore);
  } catch (err) {
    await emu.stop();
    restore();
    throw err;
  }
}

async function launchOn(emu: Emulator, opts: LaunchOptions, restore: () => void): Promise<ResilienceApp> {
  const port = await freePort();
  const hostUrl = `http://127.0.0.1:${port}`;
  const policy = opts.policy ? opts.policy(emu) : resiliencePolicy(emu, opts.mode ?? 'enforce');
  const env: Record<string, string> = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: opts.azurite.connectionString,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_PUBLIC_URL: hostUrl,
    WARDEN_CLIENT_STATE: CLIENT_STATE,
    ...FAST_ENV,
    ...(typeof opts.env === 'function' ? opts.env(emu) : (opts.env ?? {})),
  };
  resetRuntime();
  await resetStorage(opts.azurite.connectionString);
  const sinks: Array<ReturnType<typeof memoryHostSink>> = [];
  const children: ChildHost[] = [];
  const hostOptions = (sink: ReturnType<typeof memoryHostSink>, p: number): StartHostOptions => ({
    port: p,
    env,
    localSettings: false,
    logSink: sink.sink,
    disableTimers: true,
    appRoot: APP_ROOT,
    ...(opts.hostJson ? { hostJson: opts.hostJson } : {}),
    ...(opts.messageLeaseMs !== undefined ? { messageLeaseMs: opts.messageLeaseMs } : {}),
  });
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const runtimeLogs: LogRecord[] = [];
  // The default runtime logs to the console; this one logs where the secret scanner can read it.
  await useRuntime({ env: process.env, appRoot: APP_ROOT, logSink: (r) => runtimeLogs.push(r) });

  const firstSink = memoryHostSink();
  sinks.push(firstSink);
  const hosts: Host[] = [];
  if (!opts.noHost) hosts.push(await startHost(hostOptions(firstSink, port)));
  const host = hosts[0];
  const url = host?.url ?? hostUrl;
  emu.events.subscribe({
    name: 'warden-resources',
    topic: `/subscriptions/${emu.subscriptionId}`,
    endpoint: `${url}/runtime/webhooks/eventgrid?functionName=resourceEvents`,
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
  });
  emu.events.subscribe({
    name: 'warden-keyvault',
    topic: '*',
    endpoint: `${url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`,
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
  });

  const queues = {
    work: new QueueClient(opts.azurite.connectionString, WORK_QUEUE),
    poison: new QueueClient(opts.azurite.connectionString, WORK_POISON_QUEUE),
  };
  const depth = async (q: QueueClient): Promise<number> => {
    try {
      return (await q.getProperties()).approximateMessagesCount ?? 0;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return 0;
      throw err;
    }
  };
  const inFlight = (): number => sinks.reduce((n, s) => n + s.inFlight(), 0) + children.reduce((n, c) => n + (c.alive() ? c.inFlight() : 0), 0);

  const app: ResilienceApp = {
    emu,
    get host(): Host {
      if (!host) throw new Error('This app runs no host in process');
      return host;
    },
    url,
    azurite: opts.azurite,
    env,
    runtimeLogs,
    allLogs: () => [...sinks.map((s) => s.text()), ...children.map((c) => c.output()), ...runtimeLogs.map(formatRecord)].join('\n'),
    logMark: () => [...sinks.map((x) => x.records.length), ...children.map((c) => c.output().length), runtimeLogs.length],
    logsSince: (mark) => {
      const parts: string[] = [];
      sinks.forEach((x, i) => parts.push(...x.records.slice(mark[i] ?? 0).map(formatHostLog)));
      children.forEach((c, i) => parts.push(c.output().slice(mark[sinks.length + i] ?? 0)));
      // Hosts or children added after the mark was taken: all of theirs is new (the runtime's slot is last).
      parts.push(...runtimeLogs.slice(mark.length > 0 ? (mark[mark.length - 1] ?? 0) : 0).map(formatRecord));
      return parts.join('\n');
    },
    attach: (child) => {
      children.push(child);
    },
    async settle(timeoutMs = 30_000, settleOptions = {}) {
      const deadline = Date.now() + timeoutMs;
      let quietSince = 0;
      const queued = async (): Promise<number> =>
        settleOptions.visibleOnly ? (await queues.work.peekMessages({ numberOfMessages: 1 })).peekedMessageItems.length : depth(queues.work);
      for (;;) {
        if (settleOptions.pushes !== false) await emu.idle();
        const busy = (await queued().catch(() => 1)) > 0 || inFlight() > 0;
        if (!busy) {
          quietSince ||= Date.now();
          if (Date.now() - quietSince > (settleOptions.quietMs ?? 500)) return;
        } else quietSince = 0;
        if (Date.now() > deadline) throw new Error(`The app did not settle within ${timeoutMs} ms (${JSON.stringify(await app.queueDepth().catch(() => ({})))} queued, ${inFlight()} running)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async sweep(timeoutMs = 60_000) {
      const h = hosts[0];
      if (h) {
        const r = await h.invoke('sweep');
        if (!r.ok) {
          const inner = r.error instanceof AggregateError ? r.error.errors.map((e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))).join('; ') : '';
          const which = [...app.allLogs().matchAll(/Sweep of (\w+) failed/g)].map((m) => m[1]);
          throw new Error(`The sweep failed: ${String(r.error)}${inner ? ` (${inner})` : ''}${which.length ? ` [${[...new Set(which)].join(', ')}]` : ''}`);
        }
      } else {
        const res = await fetch(`${url}/admin/functions/sweep`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
        if (res.status !== 202) throw new Error(`The sweep was not accepted: ${res.status}`);
      }
      await app.settle(timeoutMs);
    },
    queueDepth: async () => ({ work: await depth(queues.work), poison: await depth(queues.poison) }),
    async poisonMessages() {
      await queues.poison.createIfNotExists();
      const peeked = await queues.poison.peekMessages({ numberOfMessages: 32 });
      return peeked.peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString('utf8'));
    },
    async stop() {
      await Promise.all(children.map((c) => c.kill()));
      await Promise.all(hosts.map((h) => h.stop({ drainMs: 3000 })));
      await emu.stop();
      restore();
    },
  };
  return app;
}

/** What a clean run of the whole app makes of {@link resilienceTenant} (the faulted runs must end the same). */
export function expectedGovernedState(): GovernedState {
  const ws = workspaceId().toLowerCase();
  return {
    roleAssignments: [
      `/subscriptions/${IDS.subscription} | b24988ac-6180-42a0-ab88-20f7382dd24c | ${IDS.warden} | ServicePrincipal | `,
      `${ws} | ${DATA_SCIENTIST} | ${IDS.ada} | User | warden:team-a`,
      `${ws} | ${DATA_SCIENTIST} | ${IDS.grace} | User | warden:team-a`,
    ],
    computes: [`${INSTANCE} | SystemAssigned | Succeeded | Running`, `${CLUSTER} | SystemAssigned | Succeeded | `],
    passwords: {
      // Warden names its passwords `warden:<vault host's first label>/<secret>`; the emulated vault's host is 127.0.0.1.
      [IDS.rotatedApp.appId]: [`${IDS.rotatedKey} hand-made`, `new warden:127/${SECRET_NAME}`],
      [IDS.warnedApp.appId]: [`${IDS.warnedKey} current`],
    },
    vault: { versions: 1, currentMatchesLivePassword: true, tags: { appId: IDS.rotatedApp.appId, managedBy: 'warden' } },
  };
}

/** The alerts a clean run sends (type and subject), each to every sink. */
export function expectedAlerts(): string[] {
  const ws = workspaceId();
  return [
    `Warden.Compute.IdentityMissing ${clusterId()}`,
    `Warden.Credentials.Expiring ${IDS.warnedApp.appId}/passwordCredentials/${IDS.warnedKey}`,
    `Warden.Credentials.Rotated ${IDS.rotatedApp.appId}`,
    `Warden.Workspaces.CredentialDatastore ${ws}/datastores/workspaceblobstore`,
    `Warden.Workspaces.RegistryAdminUserEnabled /subscriptions/${IDS.subscription}/resourceGroups/${RG}/providers/Microsoft.ContainerRegistry/registries/crres`,
  ].sort();
}

/**
 * The Azure state Warden governs, normalised so that a clean run and a faulted run compare equal:
 * role assignments, compute identities, the rotated app's passwords and the Key Vault secret.
 */
export interface GovernedState {
  roleAssignments: string[];
  computes: string[];
  passwords: Record<string, string[]>;
  /** Versions of the rotated secret, and whether the current one holds a live password of the app. */
  vault: { versions: number; currentMatchesLivePassword: boolean; tags: Record<string, string> };
}

export function governedState(emu: Emulator): GovernedState {
  const roleAssignments = emu.arm
    .roleAssignments({ below: `/subscriptions/${IDS.subscription}` })
    .map((a) => `${a.scope.toLowerCase()} | ${a.roleDefinitionId.split('/').pop()?.toLowerCase() ?? ''} | ${a.principalId} | ${a.principalType} | ${a.description ?? ''}`)
    .sort();
  const computes = emu.arm
    .computes()
    .map((c) => {
      const state = (c.properties.properties as { state?: unknown } | undefined)?.state;
      return `${c.name} | ${c.identity?.type ?? 'None'} | ${c.properties.provisioningState ?? ''} | ${typeof state === 'string' ? state : ''}`;
    })
    .sort();
  const passwords: Record<string, string[]> = {};
  for (const app of [IDS.rotatedApp, IDS.warnedApp]) {
    const view = emu.graph.getApplication(app.appId);
    passwords[app.appId] = (view?.passwordCredentials ?? [])
      .map((p) => (p.keyId === IDS.rotatedKey || p.keyId === IDS.warnedKey ? `${p.keyId} ${p.displayName ?? ''}` : `new ${p.displayName ?? ''}`))
      .sort();
  }
  const versions = emu.keyvault.versions(VAULT, SECRET_NAME);
  const current = emu.keyvault.getSecret(VAULT, SECRET_NAME);
  const live = emu.graph.getApplication(IDS.rotatedApp.appId)?.passwordCredentials ?? [];
  const currentMatchesLivePassword =
    current !== undefined && live.some((p) => emu.graph.secretText(IDS.rotatedApp.appId, p.keyId) === current.value);
  const tags = { ...(current?.tags ?? {}) };
  delete tags.keyId;
  return { roleAssignments, computes, passwords, vault: { versions: versions.length, currentMatchesLivePassword, tags } };
}

/** Alerts that reached each sink, as `type subject`, de-duplicated and sorted. */
export function deliveredAlerts(emu: Emulator): { eventGrid: string[]; webhook: string[]; mail: string[] } {
  const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();
  const eventGrid = uniq(emu.eventgrid.received().map((r) => `${String(r.event.type)} ${String(r.event.subject)}`));
  const webhook = uniq(
    emu.webhook.received().map((r) => {
      const text = JSON.stringify(r.body);
      const fact = (title: string): string => new RegExp(`"title":"${title}","value":"([^"]*)"`).exec(text)?.[1] ?? '?';
      return `${fact('Type')} ${fact('Subject')}`;
    }),
  );
  const mail = uniq(
    emu.graph.outbox().map((m) => {
      const content = m.message.body?.content ?? '';
      const line = (name: string): string => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(content)?.[1]?.trim() ?? '?';
      return `${line('Type')} ${line('Subject')}`;
    }),
  );
  return { eventGrid, webhook, mail };
}

/** Successful writes Warden made, by operation (what "no duplicate writes" counts). */
export function successfulWrites(emu: Emulator, since = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of emu.record.since(since)) {
    if (['GET', 'HEAD', 'OPTIONS'].includes(r.method) || r.status >= 400 || r.status === 0) continue;
    if (!['arm', 'graph', 'keyvault'].includes(r.service)) continue;
    if (r.operation === 'graph.sendMail') continue;
    out[r.operation] = (out[r.operation] ?? 0) + 1;
  }
  return out;
}

/** Writes to the governed services (ARM, Graph, Key Vault), whatever their answer; mail is an alert sink. */
export function azureWrites(emu: Emulator, since = 0): string[] {
  return emu.record
    .since(since)
    .filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method))
    .filter((r) => ['arm', 'graph', 'keyvault'].includes(r.service))
    .filter((r) => r.operation !== 'graph.sendMail')
    .map((r) => `${r.method} ${r.operation} ${r.path}`);
}

/** Finds every occurrence of a secret value in a set of texts; returns `where: secret-name` lines. */
export function findSecrets(texts: Record<string, string>, secrets: Record<string, string>): string[] {
  const hits: string[] = [];
  for (const [where, text] of Object.entries(texts)) {
    for (const [name, value] of Object.entries(secrets)) {
      if (value.length < 6) continue;
      if (text.includes(value)) hits.push(`${where}: ${name}`);
      // Secrets also travel encoded: URL-encoded, JSON-escaped and base64 forms count too.
      else if (text.includes(encodeURIComponent(value))) hits.push(`${where}: ${name} (url-encoded)`);
      else if (text.includes(Buffer.from(value).toString('base64'))) hits.push(`${where}: ${name} (base64)`);
    }
  }
  return hits;
}

/** A host runner in a child process (see host-child.ts). */
export interface ChildHost {
  url: string;
  pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** SIGKILL: a crash, no drain. */
  kill(): Promise<void>;
  /** SIGTERM: a graceful stop. */
  stop(): Promise<void>;
  alive(): boolean;
  /** Invocations it started and has not finished (from its Executing/Executed lines). */
  inFlight(): number;
}

const HOST_CHILD = join(__dirname, 'host-child.ts');

/** Starts the host runner in its own process with these app settings, on `port` (0: any). */
export async function spawnHost(env: Record<string, string>, options: { port?: number; leaseMs?: number } = {}): Promise<ChildHost> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', HOST_CHILD], {
    cwd: APP_ROOT,
    env: {
      ...process.env,
      ...env,
      WARDEN_HOST_PORT: String(options.port ?? 0),
      RESILIENCE_MESSAGE_LEASE_MS: String(options.leaseMs ?? 3000),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await waitFor('the child host to serve', () => /READY (\S+)/.exec(out)?.[1] ?? (child.exitCode !== null ? `exited ${child.exitCode}` : undefined), 60_000, 50);
  if (url.startsWith('exited')) throw new Error(`The child host ${url}:\n${out}`);
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const inFlight = (): number => {
    const started = new Set([...out.matchAll(/Executing '[^']+' \(Reason=.*?, Id=([0-9a-f-]+)\)$/gm)].map((m) => m[1]));
    for (const m of out.matchAll(/Executed '[^']+' \((?:Succeeded|Failed), Id=([0-9a-f-]+)/g)) started.delete(m[1]);
    return started.size;
  };
  return {
    url,
    pid: child.pid ?? 0,
    output: () => out,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    alive: () => child.exitCode === null && child.signalCode === null,
    inFlight,
  };
}

/** The whole audit trail so far (every page), oldest first. */
export async function auditTrail(): Promise<AuditRecord[]> {
  const rt = await getRuntime();
  const out: AuditRecord[] = [];
  let token: string | undefined;
  do {
    const page = await rt.audit.query({ limit: 1000, ...(token ? { continuationToken: token } : {}) });
    out.push(...page.records);
    token = page.continuationToken;
  } while (token);
  return out.reverse();
}

/** Changes the audit trail says were applied: `capability action resource`. */
export async function appliedChanges(): Promise<string[]> {
  return (await auditTrail())
    .filter((r) => r.outcome === 'applied')
    .map((r) => `${r.capability} ${r.action} ${r.resource ?? r.target}`)
    .sort();
}

/** What the audit trail of a clean run says was applied (each line once). */
export function expectedAppliedChanges(): string[] {
  return [
    `compute assignIdentity ${clusterId()}`,
    `credentials rotateSecret ${IDS.rotatedApp.appId}`,
    `rbac createRoleAssignment ${workspaceId()}`,
  ].sort();
}

/** {@link appliedChanges}, each line once. */
export async function appliedChangeSet(): Promise<string[]> {
  return [...new Set(await appliedChanges())].sort();
}
