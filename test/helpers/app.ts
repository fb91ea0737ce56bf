/**
 * Runs the whole app for scenario tests: the emulator (ARM, Graph, Key Vault, Event Grid…), the host
 * runner serving the real functions/*.ts, Azurite (the suite's shared one, with per-test queue and
 * table names where it matters). The emulator pushes Event Grid events to the host Core Tools style,
 * and Graph notifications reach the host's webhook routes.
 */
import { randomUUID } from 'node:crypto';
import { startEmulator, type Emulator, type StartEmulatorOptions } from '../../emulator';
import { startHost, type Host } from '../../host/host';
import { memoryHostSink } from './hostLogs';
import { resetRuntime, getRuntime, type Runtime } from '../../shared/runtime';
import type { PolicyInput } from '../../shared/policy';
import { freePort } from './ports';
import { startAzurite, type Azurite } from './azurite';

export interface App {
  emu: Emulator;
  host: Host;
  url: string;
  /** The Warden runtime the host's functions use (same process). */
  runtime(): Promise<Runtime>;
  /** Every log line the host and the functions wrote. */
  logs(): string;
  /** Waits until the emulator's pushes are delivered and the work queue is drained. */
  settle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartAppOptions {
  policy: PolicyInput | ((emu: Emulator) => PolicyInput);
  emulator?: StartEmulatorOptions;
  env?: Record<string, string>;
  /** Event Grid subscriptions from the emulator to the host (default: resource and Key Vault events). */
  eventSubscriptions?: boolean;
  hostJson?: Record<string, unknown>;
  /** Storage connection string to use; default: a private Azurite for this app (queue and table names are fixed). */
  storage?: string;
}

export const CLIENT_STATE = 'test-client-state-8d1f0c2a';

export async function startApp(opts: StartAppOptions): Promise<App> {
  const savedEnv = { ...process.env };
  const emu = await startEmulator(opts.emulator ?? {});
  const port = await freePort();
  const hostUrl = `http://127.0.0.1:${port}`;
  const policy = typeof opts.policy === 'function' ? opts.policy(emu) : opts.policy;
  // The real functions use fixed queue and table names, so two apps (two Jest workers) must not share
  // one Azurite: each app gets its own unless the test passes one.
  const azurite: Azurite | undefined = opts.storage ? undefined : await startAzurite();
  const storage = opts.storage ?? (azurite as Azurite).connectionString;
  const env: Record<string, string> = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: storage,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_PUBLIC_URL: hostUrl,
    WARDEN_CLIENT_STATE: CLIENT_STATE,
    WARDEN_LRO_POLL_MS: '10',
    WARDEN_RETRY_DELAY_MS: '10',
    WARDEN_SWEEP_SCHEDULE: '0 0 0 1 1 *',
    WARDEN_HOST_DISABLE_TIMERS: '1',
    WARDEN_LOG_LEVEL: process.env.WARDEN_TEST_LOGS === '1' ? 'debug' : 'warn',
    AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
    AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:00.200',
    ...(opts.env ?? {}),
  };
  resetRuntime();
  await clearWorkQueues(storage);
  const sink = memoryHostSink();
  const host = await startHost({ port, env, localSettings: false, logSink: sink.sink, disableTimers: true, ...(opts.hostJson ? { hostJson: opts.hostJson } : {}) });
  if (opts.eventSubscriptions !== false) {
    emu.events.subscribe({
      name: 'warden-resources',
      topic: `/subscriptions/${emu.subscriptionId}`,
      endpoint: `${host.url}/runtime/webhooks/eventgrid?functionName=resourceEvents`,
      schema: 'EventGridSchema',
      includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
      subjectBeginsWith: `/subscriptions/${emu.subscriptionId}`,
    });
    emu.events.subscribe({
      name: 'warden-keyvault',
      topic: '*',
      endpoint: `${host.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`,
      schema: 'EventGridSchema',
      includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
    });
  }
  const app: App = {
    emu,
    host,
    url: host.url,
    runtime: () => getRuntime(),
    logs: () => sink.text(),
    async settle(timeoutMs = 20000) {
      const deadline = Date.now() + timeoutMs;
      const rt = await getRuntime();
      const queue = await rt.core.clients.queue('warden-work');
      let quietSince = 0;
      for (;;) {
        await emu.idle();
        const props = await queue.getProperties().catch(() => ({ approximateMessagesCount: 0 }));
        const busy = (props.approximateMessagesCount ?? 0) > 0 || sink.inFlight() > 0;
        if (!busy) {
          if (!quietSince) quietSince = Date.now();
          if (Date.now() - quietSince > 400) return;
        } else quietSince = 0;
        if (Date.now() > deadline) throw new Error(`The app did not settle within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await host.stop({ drainMs: 5000 });
      await emu.stop();
      await azurite?.stop();
      resetRuntime();
      for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
      Object.assign(process.env, savedEnv);
    },
  };
  return app;
}

async function clearWorkQueues(storage: string): Promise<void> {
  const { QueueServiceClient } = await import('@azure/storage-queue');
  const { resolveStorageConnectionString } = await import('../../shared/work/storage');
  const svc = QueueServiceClient.fromConnectionString(resolveStorageConnectionString(storage, {}));
  for (const name of ['warden-work', 'warden-work-poison']) {
    const q = svc.getQueueClient(name);
    await q.createIfNotExists();
    await q.clearMessages();
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, '').slice(0, 8)}`;
}
