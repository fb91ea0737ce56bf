/**
 * Warden on the emulator for a benchmark: the emulator with simulated per-call latency, the runtime
 * built directly (`useRuntime`, so scenarios may call `reconcile` and `listTargets` where the host adds
 * nothing), and — for scenarios about events and webhooks — the host runner serving the real
 * functions in the same process, fed by the emulator's Event Grid pushes.
 */
import { randomUUID } from 'node:crypto';
import { startEmulator, type Emulator, type TenantFile } from '../../emulator';
import { startHost, type Host } from '../../host/host';
import type { HostLogRecord } from '../../host/log';
import { formatRecord, type LogRecord } from '../../shared/logging';
import type { PolicyInput } from '../../shared/policy';
import { resetRuntime, useRuntime, type Runtime } from '../../shared/runtime';
import { WORK_QUEUE, WORK_TABLE } from '../../shared/work';
import type { CapabilityName } from '../../shared/capability';
import { freePort } from '../../tools/azurite';

/** Every benchmark runs with this simulated latency per emulator answer (the 30 ms). */
export const LATENCY_MS = 30;
/** `WARDEN_CONCURRENCY`'s default: calls in flight per instance. */
export const CONCURRENCY = 8;
/** Messages the Functions host runs at once from one queue (host.json `batchSize` + `newBatchThreshold`). */
export const HOST_QUEUE_PARALLELISM = 16 + 8;
export const CLIENT_STATE = 'bench-client-state-5e1c7d20';

export interface BenchAppOptions {
  tenant: TenantFile;
  policy: PolicyInput | ((emu: Emulator) => PolicyInput);
  storage: string;
  latencyMs?: number;
  pageSize?: number;
  /** Extra app settings. */
  env?: Record<string, string>;
  /** Start the host runner with the real functions (all, or these). */
  host?: boolean | { functions: string[] };
  /** Event Grid subscriptions from the emulator to the host's resourceEvents (default: when the host runs). */
  resourceEvents?: boolean;
}

/** Counts log records by level and keeps the last warnings and errors, for the scenario's details. */
export class LogTally {
  readonly levels: Record<string, number> = {};
  readonly problems: string[] = [];
  readonly lines: string[] = [];
  private running = new Set<string>();

  constructor(private readonly keep: (message: string) => boolean = () => false) {}

  app = (r: LogRecord): void => {
    this.levels[r.level] = (this.levels[r.level] ?? 0) + 1;
    if (r.level === 'warn' || r.level === 'error') this.note(`${r.level}: ${formatRecord(r)}`);
    if (this.keep(r.message)) this.lines.push(r.message);
  };

  host = (r: HostLogRecord): void => {
    this.levels[`host.${r.level}`] = (this.levels[`host.${r.level}`] ?? 0) + 1;
    if (r.category === 'host' && r.invocationId) {
      if (r.message.startsWith('Executing ')) this.running.add(r.invocationId);
      else if (r.message.startsWith('Executed ')) this.running.delete(r.invocationId);
    }
    if (r.level === 'warning' || r.level === 'error' || r.level === 'critical') this.note(`${r.level}: ${r.functionName ?? 'host'}: ${r.message}`);
    if (this.keep(r.message)) this.lines.push(r.message);
  };

  private note(line: string): void {
    if (this.problems.length < 20) this.problems.push(line.slice(0, 300));
  }

  inFlight(): number {
    return this.running.size;
  }
}

export interface BenchApp {
  emu: Emulator;
  runtime: Runtime;
  host: Host | undefined;
  /** The app settings the runtime (and host) run with. */
  env: Record<string, string>;
  logs: LogTally;
  /** A new runtime over the same settings: empty in-process caches, as a later sweep or another instance sees them. */
  freshRuntime(): Promise<Runtime>;
  /** Reconciles claimed per target of a capability, from the work pipeline's coalescing table. */
  workRuns(capability: CapabilityName): Promise<Map<string, number>>;
  /** Messages waiting in `warden-work` (delayed ones included). */
  queued(): Promise<number>;
  /**
   * Runs the queued work the way the `work` function does (without the host's polling): every message
   * through `runtime.work.handle`, up to the host's parallelism, until the queue is empty (delayed
   * follow-ups included). Returns how many messages ended in each status.
   */
  drainWork(timeoutMs: number): Promise<Record<string, number>>;
  /** Waits until the emulator's pushes are answered, the queue is empty and no function runs, for `quietMs`. */
  settle(timeoutMs: number, quietMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchApp(opts: BenchAppOptions): Promise<BenchApp> {
  const savedEnv = { ...process.env };
  const emu = await startEmulator({
    tenant: opts.tenant,
    latencyMs: opts.latencyMs ?? LATENCY_MS,
    ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
  });
  const withHost = opts.host !== undefined && opts.host !== false;
  const port = withHost ? await freePort() : 0;
  const hostUrl = `http://127.0.0.1:${port}`;
  const policy = typeof opts.policy === 'function' ? opts.policy(emu) : opts.policy;
  const env: Record<string, string> = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: opts.storage,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_CONCURRENCY: String(CONCURRENCY),
    // The emulator answers a status poll `InProgress` once; Azure ML takes seconds. A short interval
    // keeps latency figures about Warden, while the poll count is still reported.
    WARDEN_LRO_POLL_MS: '50',
    WARDEN_SWEEP_SCHEDULE: '0 0 0 1 1 *',
    WARDEN_HOST_DISABLE_TIMERS: '1',
    ...(withHost ? { WARDEN_PUBLIC_URL: hostUrl, WARDEN_CLIENT_STATE: CLIENT_STATE } : {}),
    ...(opts.env ?? {}),
  };
  const logs = new LogTally((m) => m.startsWith('Reconciled '));
  const build = (): Promise<Runtime> => useRuntime({ env: { ...env }, logSink: logs.app });
  let runtime: Runtime;
  let host: Host | undefined;
  try {
    resetRuntime();
    runtime = await build();
    // Start from an empty queue: a crashed earlier run must not feed this one.
    const queue = await runtime.core.clients.queue(WORK_QUEUE);
    await queue.createIfNotExists();
    await queue.clearMessages();
    if (withHost) {
      const functions = typeof opts.host === 'object' ? { functions: opts.host.functions } : {};
      host = await startHost({ port, env, localSettings: false, logSink: logs.host, disableTimers: true, drainMs: 10_000, ...functions });
      if (opts.resourceEvents !== false) {
        emu.events.subscribe({
          name: 'warden-resources',
          topic: `/subscriptions/${emu.subscriptionId}`,
          endpoint: `${host.url}/runtime/webhooks/eventgrid?functionName=resourceEvents`,
          schema: 'EventGridSchema',
          includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
          subjectBeginsWith: `/subscriptions/${emu.subscriptionId}`,
        });
      }
    }
  } catch (err) {
    await emu.stop();
    restoreEnv(savedEnv);
    throw err;
  }

  const app: BenchApp = {
    emu,
    runtime,
    host,
    env,
    logs,
    async freshRuntime() {
      app.runtime = await build();
      return app.runtime;
    },
    async workRuns(capability) {
      const table = await app.runtime.core.clients.table(WORK_TABLE);
      const out = new Map<string, number>();
      try {
        for await (const e of table.listEntities<{ target?: unknown; runs?: unknown }>({ queryOptions: { filter: `PartitionKey eq '${capability}'` } })) {
          out.set(typeof e.target === 'string' ? e.target : String(e.rowKey), typeof e.runs === 'number' ? e.runs : 0);
        }
      } catch (err) {
        if ((err as { statusCode?: unknown }).statusCode !== 404) throw err;
      }
      return out;
    },
    async queued() {
      const queue = await app.runtime.core.clients.queue(WORK_QUEUE);
      const props = await queue.getProperties();
      return props.approximateMessagesCount ?? 0;
    },
    async drainWork(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      const queue = await app.runtime.core.clients.queue(WORK_QUEUE);
      const statuses: Record<string, number> = {};
      for (;;) {
        const got = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 300 });
        if (got.receivedMessageItems.length === 0) {
          if ((await app.queued()) === 0) return statuses;
          if (Date.now() > deadline) throw new Error(`Queued work did not drain within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        await forEachLimited(got.receivedMessageItems, HOST_QUEUE_PARALLELISM, async (m) => {
          const text = Buffer.from(m.messageText, 'base64').toString('utf8');
          let entry: unknown = text;
          try {
            entry = JSON.parse(text);
          } catch {
            // the pipeline reports an unparsable message itself
          }
          try {
            const res = await app.runtime.work.handle(entry, { dequeueCount: m.dequeueCount, invocationId: randomUUID() });
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
            await queue.deleteMessage(m.messageId, m.popReceipt);
          } catch {
            // As the host does: retried after a short visibility timeout, dropped after the last try.
            statuses.thrown = (statuses.thrown ?? 0) + 1;
            if (m.dequeueCount >= app.runtime.work.maxDequeueCount) await queue.deleteMessage(m.messageId, m.popReceipt);
            else await queue.updateMessage(m.messageId, m.popReceipt, undefined, 1);
          }
        });
      }
    },
    async settle(timeoutMs, quietMs = 500) {
      const deadline = Date.now() + timeoutMs;
      let quietSince = 0;
      for (;;) {
        await emu.idle();
        const busy = (await app.queued()) > 0 || logs.inFlight() > 0;
        if (!busy) {
          if (!quietSince) quietSince = Date.now();
          if (Date.now() - quietSince >= quietMs) return;
        } else quietSince = 0;
        if (Date.now() > deadline) throw new Error(`The app did not settle within ${timeoutMs} ms (${await app.queued()} queued, ${logs.inFlight()} running)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      try {
        await host?.stop({ drainMs: 5000 });
      } finally {
        await emu.stop();
        resetRuntime();
        restoreEnv(savedEnv);
      }
    },
  };
  return app;
}

function restoreEnv(saved: NodeJS.ProcessEnv): void {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
}

/** Emulator calls (ARM, Graph, Key Vault) since a mark, split into reads and writes, by operation. */
export interface CallCount {
  total: number;
  reads: number;
  writes: number;
  byOperation: Record<string, number>;
  /** Sum of the time the emulator spent answering them (latency included): busy ÷ wall = calls in flight on average. */
  busyMs: number;
}

const SERVICES = new Set(['arm', 'graph', 'keyvault']);

export function callsSince(emu: Emulator, mark: number, service?: 'arm' | 'graph' | 'keyvault'): CallCount {
  const list = emu.record.since(mark).filter((e) => (service ? e.service === service : SERVICES.has(e.service)));
  const byOperation: Record<string, number> = {};
  let writes = 0;
  let busyMs = 0;
  for (const e of list) {
    busyMs += e.durationMs;
    byOperation[e.operation] = (byOperation[e.operation] ?? 0) + 1;
    if (!['GET', 'HEAD', 'OPTIONS'].includes(e.method)) writes++;
  }
  return { total: list.length, reads: list.length - writes, writes, byOperation: sortKeys(byOperation), busyMs };
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure after all settle. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker()));
  if (errors.length > 0) throw errors[0];
}
