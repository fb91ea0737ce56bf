/**
 * The whole emulator in one call: every service on its own loopback listener (HTTPS except the
 * managed-identity endpoint and the control API), sharing one clock, request record, fault injector,
 * pusher and event bus, seeded from a tenant file.
 *
 * @example
 * const emu = await startEmulator({ tenant: 'emulator/tenants/demo.json' });
 * const client = new AuthorizationManagementClient(cred, emu.arm.subscriptionId, { endpoint: emu.urls.arm });
 * await emu.stop();
 */
import { readFileSync } from 'node:fs';
import { createArmService, type ArmControl } from './arm';
import { EmuClock } from './core/clock';
import { EventBus } from './core/eventbus';
import { FaultInjector } from './core/faults';
import { Pusher } from './core/push';
import { RequestRecord } from './core/record';
import { createService, requireBearer, type EmuContext, type RunningService, type TlsMaterial } from './core/server';
import type { EmuRequest, EmuResponse } from './core/types';
import { errorResponse } from './core/types';
import { createControlService } from './control';
import { createEventGridTopicService, createMsiService, createWebhookService, type EventGridControl, type WebhookControl } from './eventgrid';
import { createGraphService, type GraphControl } from './graph';
import { createKeyVaultService, type KeyVaultControl } from './keyvault';
import { DEMO_TENANT_PATH, defaultSubscriptionId, loadTenant, type TenantFile } from './tenant';

export interface StartEmulatorOptions {
  /** A tenant object or a path to a tenant JSON file (default: the demo tenant). */
  tenant?: TenantFile | string;
  /** Certificate and key to serve (default: the PEM files named by WARDEN_EMULATOR_TLS_CERT / _KEY). */
  tls?: TlsMaterial;
  /** Path of the certificate file, for `wardenEnv().NODE_EXTRA_CA_CERTS` (default: WARDEN_EMULATOR_TLS_CERT). */
  tlsCertFile?: string;
  /** Latency added to every answer (benchmarks). */
  latencyMs?: number;
  /** Items per page of ARM lists (default 100). */
  pageSize?: number;
  /** ARM long-running operations: status polls answered `InProgress` before completion (default 1). */
  lroPolls?: number;
  /** Fixed port of the control API (default: any free port). */
  controlPort?: number;
  env?: NodeJS.ProcessEnv;
}

export interface EmulatorUrls {
  /** ARM root (`WARDEN_ARM_ENDPOINT`), e.g. `https://127.0.0.1:41234`. */
  arm: string;
  /** Graph root without version (`WARDEN_GRAPH_ENDPOINT`); Graph answers under `/v1.0`. */
  graph: string;
  /** The Event Grid custom topic endpoint (`…/api/events`). */
  eventGridTopic: string;
  /** Chat webhook base; post to `${webhook}/{name}`. */
  webhook: string;
  /** The managed-identity token endpoint (`IDENTITY_ENDPOINT`, plain http). */
  msi: string;
  /** The control API root (plain http), `/_emulator/...`. */
  control: string;
}

export interface Emulator {
  tenantId: string;
  subscriptionId: string;
  urls: EmulatorUrls;
  /** The HTTPS URL of a Key Vault from the tenant file. */
  vaultUrl(name: string): string;
  clock: EmuClock;
  record: RequestRecord;
  faults: FaultInjector;
  pusher: Pusher;
  events: EventBus;
  arm: ArmControl;
  graph: GraphControl;
  keyvault: KeyVaultControl;
  eventgrid: EventGridControl;
  webhook: WebhookControl;
  /** The value `IDENTITY_HEADER` must hold. */
  identityHeader: string;
  /** Waits until every push (notification, event) in flight has been answered. */
  idle(): Promise<void>;
  /** The app settings that point Warden at this emulator. */
  wardenEnv(): Record<string, string>;
  stop(): Promise<void>;
}

/** Graph answers a missing token with its own error shape. */
function requireGraphBearer(req: EmuRequest): EmuResponse | undefined {
  if (requireBearer(req) === undefined) return undefined;
  return errorResponse(401, 'InvalidAuthenticationToken', 'Access token is empty.');
}

function readTls(env: NodeJS.ProcessEnv): TlsMaterial {
  const cert = env.WARDEN_EMULATOR_TLS_CERT;
  const key = env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key) {
    throw new Error('No TLS material: pass `tls` or set WARDEN_EMULATOR_TLS_CERT and WARDEN_EMULATOR_TLS_KEY (scripts/tls.mjs ensureCert creates them).');
  }
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

export async function startEmulator(opts: StartEmulatorOptions = {}): Promise<Emulator> {
  const env = opts.env ?? process.env;
  const tenant = loadTenant(opts.tenant ?? DEMO_TENANT_PATH);
  const tls = opts.tls ?? readTls(env);
  const tenantId = tenant.tenantId;
  const subscriptionId = defaultSubscriptionId(tenant);

  const clock = new EmuClock();
  const ctx: EmuContext = { clock, record: new RequestRecord(), faults: new FaultInjector() };
  ctx.faults.latencyMs = opts.latencyMs ?? 0;
  const pusher = new Pusher(clock);
  const events = new EventBus(pusher, clock);
  for (const sub of tenant.eventSubscriptions ?? []) {
    events.subscribe({
      name: sub.name,
      topic: sub.topic,
      endpoint: sub.endpoint,
      schema: sub.schema,
      ...(sub.includedEventTypes ? { includedEventTypes: sub.includedEventTypes } : {}),
      ...(sub.subjectBeginsWith ? { subjectBeginsWith: sub.subjectBeginsWith } : {}),
      ...(sub.subjectEndsWith ? { subjectEndsWith: sub.subjectEndsWith } : {}),
    });
  }

  const graph = createGraphService({ ctx, pusher, events, tenantId }, tenant.directory);
  const arm = createArmService({ ctx, events, tenantId, principals: graph.principals }, tenant.resources ?? {}, {
    ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
    ...(opts.lroPolls !== undefined ? { lroPolls: opts.lroPolls } : {}),
  });
  if (!arm.state.getSubscription(subscriptionId)) arm.state.addSubscription(subscriptionId);
  const keyvault = createKeyVaultService({ ctx, events, tenantId, subscriptionId }, tenant.vaults);
  const topic = createEventGridTopicService({ ctx });
  const webhook = createWebhookService({ ctx });
  const msi = createMsiService({ ctx, tenantId });

  const running: RunningService[] = [];
  const start = async (...args: Parameters<typeof createService>): Promise<RunningService> => {
    const r = await createService(...args);
    running.push(r);
    return r;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  };

  let emulator: Emulator | undefined;
  try {
    const armSvc = await start({ service: 'arm', router: arm.router, ctx, tls, authorize: arm.authorize });
    const graphSvc = await start({ service: 'graph', router: graph.router, ctx, tls, authorize: requireGraphBearer });
    const topicSvc = await start({ service: 'eventgrid', router: topic.router, ctx, tls });
    const webhookSvc = await start({ service: 'webhook', router: webhook.router, ctx, tls });
    const msiSvc = await start({ service: 'msi', router: msi.router, ctx });
    const vaultUrls = new Map<string, string>();
    for (const v of keyvault.vaults) {
      const svc = await start({ service: 'keyvault', router: v.router, ctx, tls });
      keyvault.control.setVaultUrl(v.name, svc.url);
      vaultUrls.set(v.name.toLowerCase(), svc.url);
    }
    const urls: EmulatorUrls = {
      arm: armSvc.url,
      graph: graphSvc.url,
      eventGridTopic: `${topicSvc.url}/api/events`,
      webhook: `${webhookSvc.url}/webhooks`,
      msi: `${msiSvc.url}/msi/token`,
      control: '',
    };
    const certFile = opts.tlsCertFile ?? env.WARDEN_EMULATOR_TLS_CERT;
    const firstVault = keyvault.vaults[0];

    const emu: Emulator = {
      tenantId,
      subscriptionId,
      urls,
      vaultUrl(name) {
        const url = vaultUrls.get(name.toLowerCase());
        if (!url) throw new Error(`The tenant has no Key Vault named ${name} (known: ${[...vaultUrls.keys()].join(', ') || 'none'}).`);
        return url;
      },
      clock,
      record: ctx.record,
      faults: ctx.faults,
      pusher,
      events,
      arm: arm.control,
      graph: graph.control,
      keyvault: keyvault.control,
      eventgrid: topic.control,
      webhook: webhook.control,
      identityHeader: msi.identityHeader,
      idle: () => pusher.drain(),
      wardenEnv() {
        const out: Record<string, string> = {
          WARDEN_ARM_ENDPOINT: urls.arm,
          WARDEN_GRAPH_ENDPOINT: urls.graph,
          WARDEN_CREDENTIAL: 'emulator',
          IDENTITY_ENDPOINT: urls.msi,
          IDENTITY_HEADER: msi.identityHeader,
          WARDEN_ALERT_WEBHOOK: `${urls.webhook}/alerts`,
          WARDEN_EMULATOR_EVENTGRID_TOPIC: urls.eventGridTopic,
          WARDEN_EMULATOR_CONTROL: urls.control,
          WARDEN_EMULATOR_TENANT_ID: tenantId,
          WARDEN_EMULATOR_SUBSCRIPTION_ID: subscriptionId,
        };
        if (firstVault) out.WARDEN_EMULATOR_VAULT_URL = emu.vaultUrl(firstVault.name);
        if (certFile) out.NODE_EXTRA_CA_CERTS = certFile;
        return out;
      },
      async stop() {
        arm.state.dispose();
        await stopAll();
      },
    };
    const controlSvc = await start({
      service: 'control',
      router: createControlService(emu),
      ctx,
      internal: true,
      ...(opts.controlPort !== undefined ? { port: opts.controlPort } : {}),
    });
    urls.control = controlSvc.url;
    emulator = emu;
    return emu;
  } finally {
    if (!emulator) {
      arm.state.dispose();
      await stopAll();
    }
  }
}

export { loadTenant, DEMO_TENANT_PATH, type TenantFile } from './tenant';
export type { ArmControl } from './arm';
export type { GraphControl } from './graph';
export type { KeyVaultControl } from './keyvault';
export type { EventGridControl, WebhookControl } from './eventgrid';
export type { TlsMaterial } from './core/server';
