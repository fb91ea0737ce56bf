/**
 * Test helpers for the loopback Azure emulator: start it (whole, or ARM alone with a simple principal
 * map), and build the REAL SDK clients pointed at it with a static token and fast retries.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { AzureMachineLearningWorkspaces } from '@azure/arm-machinelearning';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createArmService, type ArmControl, type ArmState, type PrincipalDirectory } from '../../emulator/arm';
import { EmuClock } from '../../emulator/core/clock';
import { EventBus } from '../../emulator/core/eventbus';
import { FaultInjector } from '../../emulator/core/faults';
import { Pusher } from '../../emulator/core/push';
import { RequestRecord } from '../../emulator/core/record';
import { createService, type EmuContext, type TlsMaterial } from '../../emulator/core/server';
import { startEmulator, type Emulator, type StartEmulatorOptions } from '../../emulator';
import { createAzureClients, type AzureClients } from '../../shared/azure/clients';
import { loadSettings, type Settings } from '../../shared/settings';

/** Retries that keep tests fast (the SDK default starts at 1 s). */
export const FAST_RETRY = { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 };
/** LRO polling interval for tests (the SDK default is 2 s). */
export const FAST_LRO = { updateIntervalInMs: 10 };

/** The PEM files the test runner generated (`WARDEN_EMULATOR_TLS_CERT` / `_KEY`). */
export function tlsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsMaterial {
  const cert = env.WARDEN_EMULATOR_TLS_CERT;
  const key = env.WARDEN_EMULATOR_TLS_KEY;
  if (!cert || !key) throw new Error('WARDEN_EMULATOR_TLS_CERT / WARDEN_EMULATOR_TLS_KEY are not set: run tests through `npm test`.');
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/** A TokenCredential that always answers the same token (what the SDK sees from `WARDEN_CREDENTIAL=emulator`). */
export function staticCredential(token = 'emulator-token'): TokenCredential & { scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    async getToken(s: string | string[]): Promise<AccessToken> {
      scopes.push(...(Array.isArray(s) ? s : [s]));
      return { token, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  };
}

type ArmTarget = string | { urls: { arm: string } };
const armUrl = (t: ArmTarget): string => (typeof t === 'string' ? t : t.urls.arm);

/** `@azure/arm-authorization` pointed at the emulator. */
export function authorizationClient(target: ArmTarget, subscriptionId: string, credential: TokenCredential = staticCredential()): AuthorizationManagementClient {
  return new AuthorizationManagementClient(credential, subscriptionId, { endpoint: armUrl(target), retryOptions: FAST_RETRY });
}

/** `@azure/arm-machinelearning` pointed at the emulator. */
export function machineLearningClient(target: ArmTarget, subscriptionId: string, credential: TokenCredential = staticCredential()): AzureMachineLearningWorkspaces {
  return new AzureMachineLearningWorkspaces(credential, subscriptionId, { endpoint: armUrl(target), retryOptions: FAST_RETRY });
}

/** A principal directory from a plain map, for ARM tests without Graph. */
export function mapDirectory(map: Record<string, 'User' | 'Group' | 'ServicePrincipal'>): PrincipalDirectory & { set(id: string, type: 'User' | 'Group' | 'ServicePrincipal'): void } {
  const m = new Map(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    lookup: (id) => {
      const type = m.get(id.toLowerCase());
      return type ? { type } : undefined;
    },
    set: (id, type) => {
      m.set(id.toLowerCase(), type);
    },
  };
}

export interface ArmHarness {
  url: string;
  control: ArmControl;
  state: ArmState;
  ctx: EmuContext;
  pusher: Pusher;
  events: EventBus;
  close(): Promise<void>;
}

/** The ARM service alone on its own HTTPS listener, seeded from a `resources` section. */
export async function startArm(opts: {
  section: unknown;
  principals?: PrincipalDirectory;
  pageSize?: number;
  lroPolls?: number;
  tenantId?: string;
}): Promise<ArmHarness> {
  const clock = new EmuClock();
  const ctx: EmuContext = { clock, record: new RequestRecord(), faults: new FaultInjector() };
  const pusher = new Pusher(clock);
  pusher.retryDelayMs = 10;
  const events = new EventBus(pusher, clock);
  const arm = createArmService(
    { ctx, events, tenantId: opts.tenantId ?? 'c7cb8e56-3c8d-431c-a94c-866e27a25b45', ...(opts.principals ? { principals: opts.principals } : {}) },
    opts.section,
    { ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}), ...(opts.lroPolls !== undefined ? { lroPolls: opts.lroPolls } : {}) },
  );
  const running = await createService({ service: 'arm', router: arm.router, ctx, tls: tlsFromEnv(), authorize: arm.authorize });
  return {
    url: running.url,
    control: arm.control,
    state: arm.state,
    ctx,
    pusher,
    events,
    async close() {
      arm.state.dispose();
      await pusher.drain();
      await running.close();
    },
  };
}

/** Starts the whole emulator with test TLS material; stop it in `afterAll`. */
export async function withEmulator(opts: StartEmulatorOptions = {}): Promise<Emulator> {
  const emu = await startEmulator({ tls: tlsFromEnv(), ...opts });
  emu.pusher.retryDelayMs = 10;
  return emu;
}

/** A Core Tools style receiver: records what arrives at `/runtime/webhooks/eventgrid?functionName=…`. */
export interface EventReceiver {
  url(functionName: string): string;
  received: Array<{ functionName: string; headers: IncomingMessage['headers']; body: unknown }>;
  /** Resolves once `n` deliveries arrived (or rejects at the deadline). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startEventReceiver(): Promise<EventReceiver> {
  const received: EventReceiver['received'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/runtime/webhooks/eventgrid') {
        res.writeHead(404).end();
        return;
      }
      if (req.headers['aeg-event-type'] !== 'Notification') {
        res.writeHead(400).end();
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      received.push({ functionName: url.searchParams.get('functionName') ?? '', headers: req.headers, body });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (fn) => `http://127.0.0.1:${port}/runtime/webhooks/eventgrid?functionName=${encodeURIComponent(fn)}`,
    received,
    async waitFor(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} deliveries, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Warden's own settings and SDK clients pointed at the emulator (the emulator credential, fast
 * retries and LRO polls), as the contract tests of the adapters use them.
 */
export function wardenClients(
  emu: { urls: { arm: string; graph: string }; subscriptionId: string },
  env: Record<string, string> = {},
): { settings: Settings; clients: AzureClients } {
  const settings = loadSettings({
    AzureWebJobsStorage: process.env.WARDEN_TEST_STORAGE ?? 'UseDevelopmentStorage=true',
    WARDEN_CREDENTIAL: 'emulator',
    WARDEN_ARM_ENDPOINT: emu.urls.arm,
    WARDEN_GRAPH_ENDPOINT: emu.urls.graph,
    WARDEN_POLICY: JSON.stringify({ scopes: [`/subscriptions/${emu.subscriptionId}`] }),
    ...env,
  });
  return { settings, clients: createAzureClients(settings, { retry: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 }, lroPollMs: 10 }) };
}
