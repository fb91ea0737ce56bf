/**
 * A Warden RBAC module wired to the emulator exactly as in production — real SDK clients through
 * `createAzureClients`, the real adapters, a TableStateStore in Azurite — plus the Graph webhook
 * served on loopback by the registered handlers (`shared/rbac/functions.ts`), so the emulator's Graph
 * validates and pushes to them as Graph would. Work items are collected and run with `drain()`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import type { Emulator } from '../../emulator';
import { createAzureClients } from '../../shared/azure/clients';
import type { Capability, CapabilityName } from '../../shared/capability';
import type { Clock } from '../../shared/clock';
import { createLimiter } from '../../shared/concurrency';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { TableStateStore } from '../../shared/ports/state';
import { reconcile, type ReconcileReport } from '../../shared/reconcile';
import { createRbacModule, type RbacModule } from '../../shared/rbac';
import { graphLifecycleOptions, graphNotificationsOptions } from '../../shared/rbac/functions';
import { loadSettings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';
import { FAST_RETRY } from '../helpers/emulator';

export const CLIENT_STATE = 'emulator-client-state-7f3e9a1c5b';

export interface RbacHarness {
  module: RbacModule;
  capability: Capability;
  enqueued: WorkRequest[];
  alerter: MemoryAlerter;
  audit: MemoryAuditLog;
  sink: ReturnType<typeof memorySink>;
  /** The webhook's base URL (`WARDEN_PUBLIC_URL`). */
  publicUrl: string;
  /** Raw POST to the webhook (forged notifications). */
  post(path: string, body: string): Promise<number>;
  reconcile(target: string): Promise<ReconcileReport>;
  sweep(): Promise<ReconcileReport[]>;
  /** Waits for the emulator's pushes, then runs every queued rbac item (once per target per round). */
  drain(): Promise<ReconcileReport[]>;
  close(): Promise<void>;
}

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startRbac(emu: Emulator, policy: PolicyInput): Promise<RbacHarness> {
  const ready: { module?: RbacModule } = {};
  const getRuntime = async () => {
    if (!ready.module) throw new Error('not ready');
    return { rbac: ready.module };
  };
  const handlers: Record<string, (r: HttpRequest, c: InvocationContext) => Promise<HttpResponseInit>> = {
    '/api/graph/notifications': graphNotificationsOptions(getRuntime).handler as (r: HttpRequest, c: InvocationContext) => Promise<HttpResponseInit>,
    '/api/graph/lifecycle': graphLifecycleOptions(getRuntime).handler as (r: HttpRequest, c: InvocationContext) => Promise<HttpResponseInit>,
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
      const handler = handlers[url.pathname];
      const body = await readBody(req);
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const request = new HttpRequest({ method: req.method ?? 'POST', url: url.toString(), headers, ...(body ? { body: { string: body } } : {}) });
      const out = await handler(request, new InvocationContext({ invocationId: randomBytes(4).toString('hex'), functionName: 'graph', logHandler: () => undefined }));
      const h = new Headers(out.headers);
      const text = out.jsonBody !== undefined ? JSON.stringify(out.jsonBody) : typeof out.body === 'string' ? out.body : '';
      res.writeHead(out.status ?? 200, Object.fromEntries(h.entries())).end(text);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const settings = loadSettings({
    AzureWebJobsStorage: storage(),
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: emu.urls.arm,
    WARDEN_GRAPH_ENDPOINT: emu.urls.graph,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_PUBLIC_URL: publicUrl,
    WARDEN_CLIENT_STATE: CLIENT_STATE,
    WARDEN_CONCURRENCY: '8',
  });
  const parsed = parsePolicy(policy).policy;
  const clients = createAzureClients(settings, { retry: FAST_RETRY, lroPollMs: 10 });
  const state = new TableStateStore(await clients.table(`rbac${randomBytes(6).toString('hex')}`));
  const clock: Clock = { now: () => emu.clock.nowDate() };
  const sink = memorySink();
  const logger = createLogger(sink);
  const enqueued: WorkRequest[] = [];
  const alerter = new MemoryAlerter();
  const audit = new MemoryAuditLog();
  const rbac = createRbacModule(
    {
      settings,
      policy: parsed,
      clients,
      clock,
      limiter: createLimiter(settings.concurrency),
      logger,
      state,
      alerter,
      enqueue: async (items) => {
        enqueued.push(...items);
      },
    },
    { tuning: { retry: { principalNotFoundDelaysMs: [10, 20, 40, 80], throttleRetries: 3, throttleMaxWaitMs: 100, throttleDefaultWaitMs: 5 } } },
  );
  ready.module = rbac;
  const capabilities = { rbac: rbac.capability } as unknown as Record<CapabilityName, Capability>;
  const run = (target: string): Promise<ReconcileReport> =>
    reconcile({ capability: 'rbac', target, trigger: { kind: 'http' } }, { capabilities, audit, alerter, mode: parsed.mode, logger, clock });

  return {
    module: rbac,
    capability: rbac.capability,
    enqueued,
    alerter,
    audit,
    sink,
    publicUrl,
    async post(path, body) {
      const res = await fetch(`${publicUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      await res.text();
      return res.status;
    },
    reconcile: run,
    async sweep() {
      const out: ReconcileReport[] = [];
      for (const t of await rbac.capability.listTargets()) out.push(await run(t));
      return out;
    },
    async drain() {
      const out: ReconcileReport[] = [];
      await emu.idle();
      for (let round = 0; round < 10 && enqueued.length > 0; round++) {
        const items = enqueued.splice(0);
        const seen = new Set<string>();
        for (const item of items) {
          if (item.capability !== 'rbac' || seen.has(item.target)) continue;
          seen.add(item.target);
          out.push(await run(item.target));
        }
        await emu.idle();
      }
      return out;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
