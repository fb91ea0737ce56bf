/**
 * The host runner: serves the functions registered through `shared/registration.ts` with the
 * surface Azure Functions Core Tools serves (`func start`), for local runs, the demo and the tests.
 * See docs/host.md.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { findFunction, registeredFunctions, resolveAppSettingExpression, type RegisteredFunction } from '../shared/registration';
import { loadHostConfig, type HostConfig } from '../shared/work/hostConfig';
import { resolveStorageConnectionString } from '../shared/work/storage';
import { isTruthy, mergeSettings, readLocalSettings } from './config';
import { createHttpSurface, timerInput } from './http';
import { Invoker, type InvocationResult } from './invoke';
import { consoleHostSink, createHostLogger, type HostLogSink } from './log';
import { queueInput, QueueListener } from './queues';
import { TimerSchedule } from './timers';

export interface StartHostOptions {
  /** Port on 127.0.0.1; 0 picks a free one. Default: `WARDEN_HOST_PORT`, then local.settings.json `Host.LocalHttpPort`, then 7071. */
  port?: number;
  /** The environment; local.settings.json `Values` fill in what it lacks. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Module whose import registers the functions; default `<appRoot>/functions/index.ts`; null = only what is registered already. */
  functionsModule?: string | null;
  /** Folder of host.json and local.settings.json; default the repository root. */
  appRoot?: string;
  /** local.settings.json to read, or false for none. Default `<appRoot>/local.settings.json`. */
  localSettings?: string | false;
  /** Values merged over host.json (tests shorten timeouts this way). */
  hostJson?: Record<string, unknown>;
  /** Serve only these functions (like `func start --functions`). */
  functions?: readonly string[];
  /** Where log records go; default the console. */
  logSink?: HostLogSink;
  /** Do not run timers on schedule (they still run through /admin/functions). Default `WARDEN_HOST_DISABLE_TIMERS`. */
  disableTimers?: boolean;
  /** How long a fetched queue message stays hidden between lease renewals. Default 10 minutes, as the host. */
  messageLeaseMs?: number;
  /** Graceful stop: how long to wait for running invocations. Default 30 s. */
  drainMs?: number;
  /** Copy the merged settings into `process.env`, as Core Tools does for its worker. Default true. */
  exportEnv?: boolean;
}

export interface Host {
  url: string;
  port: number;
  /** The functions this host serves (those in error are left out and logged). */
  functions: readonly RegisteredFunction[];
  settings: Readonly<Record<string, string>>;
  config: HostConfig;
  /** Runs a non-HTTP function by hand and waits for it (what `/admin/functions/NAME` does in the background). */
  invoke(name: string, input?: string): Promise<InvocationResult>;
  /** Stops taking work, waits for running invocations (up to `drainMs`), closes the listener. */
  stop(options?: { drainMs?: number }): Promise<void>;
}

export const DEFAULT_PORT = 7071;
const REPO_ROOT = resolve(__dirname, '..');

function loadFunctionsModule(path: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the app registers its functions on import, as under the real worker
  require(path);
}

function portFrom(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`WARDEN_HOST_PORT must be a port number; got "${raw}"`);
  return n;
}

function keysFrom(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((k) => k.trim()).filter(Boolean);
}

/**
 * Starts the host runner in this process.
 * @example
 * const host = await startHost({ port: 0, env: { ...process.env, AzureWebJobsStorage: conn }, disableTimers: true });
 * await fetch(`${host.url}/api/health`);
 * await host.stop();
 */
export async function startHost(options: StartHostOptions = {}): Promise<Host> {
  const appRoot = options.appRoot ?? REPO_ROOT;
  const sink = options.logSink ?? consoleHostSink;
  const log = createHostLogger(sink);
  const env = options.env ?? process.env;

  const localFile = options.localSettings === false ? undefined : (options.localSettings ?? join(appRoot, 'local.settings.json'));
  const local = localFile ? readLocalSettings(localFile) : { values: {}, localHttpPort: undefined };
  const { settings, shadowed } = mergeSettings(local.values, env);
  for (const k of shadowed) log.info(`Skipping '${k}' from local settings as it's already defined in current environment variables.`);

  let storage: string | undefined;
  if (settings.AzureWebJobsStorage) {
    storage = resolveStorageConnectionString(settings.AzureWebJobsStorage, settings);
    settings.AzureWebJobsStorage = storage;
  }
  if (options.exportEnv !== false) {
    for (const [k, v] of Object.entries(settings)) if (process.env[k] !== v) process.env[k] = v;
  }

  const config = loadHostConfig({ appRoot, env: settings, ...(options.hostJson ? { override: options.hostJson } : {}) });

  const moduleSpec = options.functionsModule === undefined ? join(appRoot, 'functions', 'index.ts') : options.functionsModule;
  if (moduleSpec !== null) {
    const path = existsSync(moduleSpec) || !existsSync(moduleSpec.replace(/\.ts$/, '.js')) ? moduleSpec : moduleSpec.replace(/\.ts$/, '.js');
    loadFunctionsModule(path);
  }

  const wanted = options.functions?.map((n) => n.toLowerCase());
  const candidates = registeredFunctions().filter((f) => {
    if (wanted && !wanted.includes(f.name.toLowerCase())) return false;
    if (isTruthy(settings[`AzureWebJobs.${f.name}.Disabled`])) {
      log.info(`Function '${f.name}' is disabled (AzureWebJobs.${f.name}.Disabled)`);
      return false;
    }
    return true;
  });
  if (wanted) {
    for (const n of options.functions ?? []) if (!findFunction(n)) log.warn(`Function '${n}' is not registered`);
  }

  const invoker = new Invoker(log, config.functionTimeoutMs);
  const leaseMs = options.messageLeaseMs ?? 10 * 60_000;
  const disableTimers = options.disableTimers ?? isTruthy(settings.WARDEN_HOST_DISABLE_TIMERS);

  const served: RegisteredFunction[] = [];
  const listeners: QueueListener[] = [];
  const timers = new Map<string, TimerSchedule>();
  const resolvedQueues = new Map<string, string>();
  const resolvedSchedules = new Map<string, string>();
  for (const f of candidates) {
    try {
      if (f.kind === 'storageQueue') {
        const queueName = resolveAppSettingExpression(f.options.queueName, settings);
        const conn = settings[f.options.connection] ?? settings[`AzureWebJobs${f.options.connection}`];
        if (!conn) throw new Error(`Storage account connection string '${f.options.connection}' does not exist`);
        listeners.push(
          new QueueListener({
            fn: f,
            queueName,
            connectionString: resolveStorageConnectionString(conn, settings),
            config: config.queues,
            leaseMs,
            invoker,
            log,
          }),
        );
        resolvedQueues.set(f.name.toLowerCase(), queueName);
      } else if (f.kind === 'timer') {
        const schedule = resolveAppSettingExpression(f.options.schedule, settings);
        const t = new TimerSchedule({ fn: f, schedule, timezone: settings.WEBSITE_TIME_ZONE, invoker, log });
        resolvedSchedules.set(f.name.toLowerCase(), schedule);
        t.start(!disableTimers);
        timers.set(f.name.toLowerCase(), t);
      }
      served.push(f);
    } catch (err) {
      log.error(`The '${f.name}' function is in error: ${err instanceof Error ? err.message : String(err)}`, { functionName: f.name });
    }
  }

  const runByHand = (f: RegisteredFunction, input: string): Promise<InvocationResult> => {
    const reason = 'This function was programmatically called via the host APIs.';
    switch (f.kind) {
      case 'timer': {
        const t = timers.get(f.name.toLowerCase());
        return invoker.invoke({ fn: f, input: timerInput(false, undefined, t?.next(), new Date()), reason });
      }
      case 'storageQueue': {
        const queueName = resolvedQueues.get(f.name.toLowerCase());
        return invoker.invoke({ fn: f, input: queueInput(input), reason, ...(queueName ? { resolved: { queueName } } : {}) });
      }
      case 'eventGrid':
        return invoker.invoke({ fn: f, input: queueInput(input), reason });
      case 'http':
        return Promise.reject(new Error(`Function '${f.name}' is an HTTP function; call its route instead`));
    }
  };

  const surface = createHttpSurface({
    functions: served,
    invoker,
    log,
    routePrefix: config.routePrefix,
    functionKeys: keysFrom(settings.WARDEN_HOST_FUNCTION_KEY),
    masterKeys: keysFrom(settings.WARDEN_HOST_MASTER_KEY),
    runByHand: (f, input) => void runByHand(f, input),
  });

  const server: Server = createServer((req, res) => void surface(req, res));
  const port = options.port ?? portFrom(settings.WARDEN_HOST_PORT, local.localHttpPort ?? DEFAULT_PORT);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${actualPort}`;

  try {
    await Promise.all(listeners.map((l) => l.start()));
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop(0)));
    await new Promise((r) => server.close(r));
    throw err;
  }

  log.info(`Host started on ${url} with ${served.length} function(s)`);
  for (const f of served) {
    let what: string;
    if (f.kind === 'http') {
      const methods = (f.options.methods ?? ['GET', 'POST']).join(',');
      what = `[${methods}] ${url}/${config.routePrefix ? `${config.routePrefix}/` : ''}${(f.options.route ?? f.name).replace(/^\/+/, '')}`;
    } else if (f.kind === 'eventGrid') what = `eventGridTrigger: POST ${url}/runtime/webhooks/eventgrid?functionName=${f.name}`;
    else if (f.kind === 'storageQueue') what = `queueTrigger on '${resolvedQueues.get(f.name.toLowerCase()) ?? f.options.queueName}'`;
    else what = `timerTrigger '${resolvedSchedules.get(f.name.toLowerCase()) ?? f.options.schedule}'${disableTimers ? ' (schedule disabled; POST /admin/functions/' + f.name + ')' : ''}`;
    log.info(`  ${f.name}: ${what}`);
  }

  let stopped: Promise<void> | undefined;
  const stop = (opts: { drainMs?: number } = {}): Promise<void> => {
    stopped ??= (async () => {
      const drainMs = opts.drainMs ?? options.drainMs ?? 30_000;
      const deadline = Date.now() + drainMs;
      log.info('Stopping the host');
      for (const t of timers.values()) t.stop();
      const closed = new Promise<void>((r) => server.close(() => r()));
      await Promise.all(listeners.map((l) => l.stop(drainMs)));
      const still = await invoker.drain(Math.max(0, deadline - Date.now()));
      if (still > 0) log.warn(`${still} invocation(s) still running after ${drainMs} ms`);
      server.closeAllConnections();
      await closed;
      log.info('Host stopped');
    })();
    return stopped;
  };

  return {
    url,
    port: actualPort,
    functions: served,
    settings,
    config,
    invoke: (name, input = '') => {
      const f = served.find((x) => x.name.toLowerCase() === name.toLowerCase());
      if (!f) return Promise.reject(new Error(`Function '${name}' is not served by this host`));
      return runByHand(f, input);
    },
    stop,
  };
}
