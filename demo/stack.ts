/**
 * Everything `npm run demo` runs, in this one process: Azurite (own ports, own temporary folder), the
 * Azure emulator seeded with the demo tenant, and the host runner serving the real `functions/*.ts`
 * with the settings a deployment would have (pointed at the emulator). Event Grid subscriptions from
 * the emulator to the host are made the way `infra/` makes them in Azure; the Graph subscription is
 * made by Warden itself (the `graphSubscriptions` timer).
 *
 * The emulator and Warden share one clock, so the story can let a week pass for both ("a secret nears
 * expiry") without touching the machine's time.
 */
import { createServer } from 'node:net';
import { startEmulator, type Emulator, type TenantFile } from '../emulator';
import { formatHostLog, type HostLogRecord, type HostLogSink } from '../host/log';
import { startHost, type Host } from '../host/host';
import { formatRecord, type LogRecord } from '../shared/logging';
import { resetRuntime, useRuntime, type Runtime } from '../shared/runtime';
import { freePort, startAzurite } from '../tools/azurite';

/** The secret Graph echoes in every notification to the demo host (a demo value, not a credential). */
export const DEMO_CLIENT_STATE = 'warden-demo-client-state-5c1e';

export interface StackOptions {
  tenant: TenantFile;
  /** The policy as JSON, `%NAME%` references left for Warden to resolve from its settings. */
  policy: unknown;
  /** Latency the emulator adds to every answer, so timings look like a cloud's (ms). */
  latencyMs: number;
  /** Serve Warden on this port when it is free (else any free port). */
  preferredPort?: number;
  /** Called as the pieces come up, for progress output. */
  onProgress?: (message: string) => void;
}

export interface Stack {
  emu: Emulator;
  host: Host;
  runtime: Runtime;
  /** Every log line the host, the functions and Warden wrote, oldest first. */
  logLines(): string[];
  /** Waits until the emulator's pushes are answered, no work is waiting and the host has been idle for `quietMs`. */
  settle(timeoutMs: number, quietMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

interface LogCapture {
  hostSink: HostLogSink;
  wardenSink: (r: LogRecord) => void;
  lines: string[];
  inFlight(): number;
}

function captureLogs(): LogCapture {
  const lines: string[] = [];
  const running = new Set<string>();
  return {
    lines,
    hostSink: (r: HostLogRecord) => {
      lines.push(formatHostLog(r));
      if (r.category === 'host' && r.invocationId) {
        if (r.message.startsWith('Executing ')) running.add(r.invocationId);
        else if (r.message.startsWith('Executed ')) running.delete(r.invocationId);
      }
    },
    wardenSink: (r) => lines.push(`${r.time} ${r.level.padEnd(5)} ${formatRecord(r)}`),
    inFlight: () => running.size,
  };
}

async function startAll(opts: StackOptions, started: Array<() => Promise<void>>): Promise<Omit<Stack, 'stop'>> {
  const progress = opts.onProgress ?? ((): void => undefined);
  const logs = captureLogs();
  // The host copies its settings into process.env (as Core Tools does for its worker); put it back after.
  const savedEnv = { ...process.env };
  started.push(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
  });

  progress('Starting Azurite (storage queues and tables)');
  const azurite = await startAzurite();
  started.push(() => azurite.stop());
  const storage = azurite.connectionString;

  progress('Starting the Azure emulator (ARM, Graph, Key Vault, Event Grid)');
  const emu = await startEmulator({ tenant: opts.tenant, latencyMs: opts.latencyMs });
  started.push(() => emu.stop());

  const port = opts.preferredPort !== undefined && (await isFree(opts.preferredPort)) ? opts.preferredPort : await freePort();
  const hostUrl = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: storage,
    WARDEN_POLICY: JSON.stringify(opts.policy),
    WARDEN_PUBLIC_URL: hostUrl,
    WARDEN_CLIENT_STATE: DEMO_CLIENT_STATE,
    WARDEN_LRO_POLL_MS: '20',
    WARDEN_RETRY_DELAY_MS: '20',
    WARDEN_HOST_DISABLE_TIMERS: '1',
    // The Azure default; timers do not fire on their own here (the story runs them when it needs them).
    WARDEN_SWEEP_SCHEDULE: '0 0 */6 * * *',
    // The host's queue polling backs off to 1 minute when idle; a story step cannot wait that long.
    AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:00.100',
    AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
  };

  progress('Starting Warden on the Functions host runner');
  // Built before the host serves anything, so every function uses this runtime (and the shared clock).
  resetRuntime();
  const runtime = await useRuntime({
    env,
    clock: { now: () => emu.clock.nowDate() },
    logSink: logs.wardenSink,
  });
  started.push(async () => resetRuntime());
  const host = await startHost({ port, env, localSettings: false, logSink: logs.hostSink, disableTimers: true });
  started.push(() => host.stop({ drainMs: 5000 }));

  const hook = (fn: string): string => `${host.url}/runtime/webhooks/eventgrid?functionName=${fn}`;
  emu.events.subscribe({
    name: 'warden-resources',
    topic: `/subscriptions/${emu.subscriptionId}`,
    endpoint: hook('resourceEvents'),
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
    subjectBeginsWith: `/subscriptions/${emu.subscriptionId}`,
  });
  emu.events.subscribe({
    name: 'warden-keyvault',
    topic: '*',
    endpoint: hook('keyVaultEvents'),
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'],
  });

  const queue = await runtime.core.clients.queue('warden-work');
  return {
    emu,
    host,
    runtime,
    logLines: () => [...logs.lines],
    async settle(timeoutMs, quietMs = 250) {
      const deadline = Date.now() + timeoutMs;
      let quietSince = 0;
      for (;;) {
        await emu.idle();
        // Visible messages only: a follow-up Warden scheduled for later (a coalesced re-check) is not
        // work in progress, and waiting for it would only make the story slower.
        const peeked = await queue.peekMessages({ numberOfMessages: 1 }).catch(() => ({ peekedMessageItems: [] }));
        const queued = peeked.peekedMessageItems.length;
        const busy = queued > 0 || logs.inFlight() > 0;
        if (busy) quietSince = 0;
        else if (!quietSince) quietSince = Date.now();
        else if (Date.now() - quietSince >= quietMs) return;
        if (Date.now() > deadline) throw new Error(`Warden was still busy after ${timeoutMs} ms (${queued} message(s) waiting, ${logs.inFlight()} invocation(s) running)`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

/**
 * Starts the stack. `stop()` stops everything in reverse order and removes Azurite's folder; a
 * failure half-way stops what had started before it rethrows.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const started: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const stop of started.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'Some parts of the demo did not stop cleanly');
  };
  try {
    const stack = await startAll(opts, started);
    return { ...stack, stop: stopAll };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}
