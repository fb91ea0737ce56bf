/**
 * Wires Warden: settings and policy → SDK clients → ports → capabilities → the reconcile use case →
 * the work pipeline. Every dependency is created once here and injected; nothing below reads
 * the environment (only `loadSettings` does) or builds its own SDK client.
 */
import { createAlerter } from './alerts';
import { createAuditLog } from './audit';
import { AUDIT_TABLE } from './audit/table';
import { createAzureClients, DEFAULT_RETRY, type AzureClients } from './azure/clients';
import { CAPABILITIES, type Capability, type CapabilityName } from './capability';
import { systemClock, type Clock } from './clock';
import { createComputeModule, type ComputeModule } from './compute';
import { createLimiter } from './concurrency';
import { createCredentialsModule, type CredentialsModule } from './credentials';
import type { CoreDeps } from './deps';
import { consoleSink, createLogger, levelFilter, type LogSink } from './logging';
import { loadPolicy } from './policy';
import { createMlResources } from './ports/azure/ml';
import type { Alerter } from './ports/alerts';
import type { AuditLog } from './ports/audit';
import { TableStateStore, type StateStore } from './ports/state';
import { createRbacModule, type RbacModule } from './rbac';
import { reconcile, type ReconcileDeps, type ReconcileReport, type ReconcileRequest } from './reconcile';
import { registerSecret } from './redact';
import { loadSettings } from './settings';
import { createWorkPipeline, loadHostConfig, WORK_QUEUE, WORK_TABLE, type WorkPipeline } from './work';
import type { WorkRequest } from './work/item';
import { createWorkspacesModule, type WorkspacesModule } from './workspaces';

export const STATE_TABLE = 'wardenstate';

export interface Runtime {
  core: CoreDeps;
  state: StateStore;
  capabilities: Readonly<Record<CapabilityName, Capability>>;
  audit: AuditLog;
  alerter: Alerter;
  work: WorkPipeline;
  /** Queues work items on `warden-work` (optionally delayed). */
  enqueue(items: WorkRequest[], options?: { delayMs?: number }): Promise<void>;
  /** The one use case: plan, apply (enforce mode), audit, alert. */
  reconcile(req: ReconcileRequest): Promise<ReconcileReport>;
  rbac: RbacModule;
  workspaces: WorkspacesModule;
  compute: ComputeModule;
  credentials: CredentialsModule;
}

export interface RuntimeOptions {
  /** App settings; default: the environment, as `loadSettings` reads it. */
  env?: NodeJS.ProcessEnv;
  /** App root for a relative `WARDEN_POLICY_FILE`; default the working directory. */
  appRoot?: string;
  clock?: Clock;
  logSink?: LogSink;
  /** Replaces the SDK clients (benchmarks count calls through the emulator instead). */
  clients?: AzureClients;
}

export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const settings = loadSettings(options.env, options.appRoot);
  const { policy, substitutedValues } = loadPolicy(settings);
  for (const v of substitutedValues) registerSecret(v);
  registerSecret(settings.clientState);

  const logger = createLogger(levelFilter(options.logSink ?? consoleSink, settings.logLevel), { app: 'warden' });
  const clock = options.clock ?? systemClock;
  const clients =
    options.clients ??
    createAzureClients(settings, {
      retry: settings.retryDelayMs === undefined ? DEFAULT_RETRY : { ...DEFAULT_RETRY, retryDelayInMs: settings.retryDelayMs },
      ...(settings.lroPollMs === undefined ? {} : { lroPollMs: settings.lroPollMs }),
    });
  const limiter = createLimiter(settings.concurrency);
  const core: CoreDeps = { settings, policy, clients, clock, limiter, logger };

  const state: StateStore = new TableStateStore(await clients.table(STATE_TABLE));
  const audit = createAuditLog(await clients.table(AUDIT_TABLE));
  const alerter = createAlerter({ policy, clients, state, clock, logger });

  // The pipeline needs the reconcilers and the modules need `enqueue`: bind late.
  const late: { work?: WorkPipeline } = {};
  const enqueue = async (items: WorkRequest[], opts: { delayMs?: number } = {}): Promise<void> => {
    if (!late.work) throw new Error('The work pipeline is not ready yet');
    if (items.length > 0) await late.work.enqueue(items, opts);
  };

  const ml = createMlResources(clients, { limiter });
  const rbac = createRbacModule({ ...core, state, alerter, enqueue }, { ml });
  const workspaces = createWorkspacesModule({ ...core, state, enqueue }, { ml });
  const compute = createComputeModule({ ...core, state, enqueue }, { ml });
  const credentials = createCredentialsModule({ ...core, state, alerter, enqueue });
  const capabilities: Record<CapabilityName, Capability> = {
    rbac: rbac.capability,
    workspaces: workspaces.capability,
    compute: compute.capability,
    credentials: credentials.capability,
  };

  const reconcileDeps: ReconcileDeps = { capabilities, audit, alerter, mode: policy.mode, logger, clock, journal: state };
  const work = createWorkPipeline({
    queue: await clients.queue(WORK_QUEUE),
    table: await clients.table(WORK_TABLE),
    reconcilers: Object.fromEntries(
      CAPABILITIES.map((c) => [
        c,
        (item, ctx) =>
          reconcile(
            { capability: c, target: item.target, trigger: item.trigger, invocationId: ctx.invocationId },
            { ...reconcileDeps, logger: ctx.logger },
          ),
      ]),
    ),
    targets: Object.fromEntries(CAPABILITIES.map((c) => [c, () => capabilities[c].listTargets()])),
    alerter,
    audit: { log: audit, mode: policy.mode },
    logger,
    clock,
    maxDequeueCount: loadHostConfig({ env: settings.appSettings }).queues.maxDequeueCount,
  });
  late.work = work;

  logger.info('Warden runtime ready', { mode: policy.mode, scopes: policy.scopes.length, bindings: policy.rbac.bindings.length, version: settings.version });
  return {
    core,
    state,
    capabilities,
    audit,
    alerter,
    work,
    enqueue,
    reconcile: (req) => reconcile(req, reconcileDeps),
    rbac,
    workspaces,
    compute,
    credentials,
  };
}
