/**
 * The bad-input corpus (fixtures/bad-input.ts) against the whole app: every HTTP route, every Event
 * Grid trigger, the work queue and the policy. Each case must end in a clear 4xx or a logged ignore:
 * never a 5xx, never a stack trace or a secret in the answer, never a write to Azure or Graph, never
 * work queued for nothing. Afterwards the app still serves.
 */
import { QueueClient } from '@azure/storage-queue';
import { PolicyError } from '../../shared/errors';
import { createRuntime } from '../../shared/composition';
import { startHost } from '../../host/host';
import { resetRuntime } from '../../shared/runtime';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { memoryHostSink } from '../helpers/hostLogs';
import { APP_ROOT } from '../host/helpers';
import { BAD_INPUT, type BadInputCase, type PolicyShape } from './fixtures/bad-input';
import {
  azureWrites,
  CLIENT_STATE,
  DATA_SCIENTIST,
  deliveredAlerts,
  launchApp,
  policyFor,
  resiliencePolicy,
  waitFor,
  workspaceId,
  type ResilienceApp,
} from './helpers';

const FUNCTION_KEY = 'resilience-function-key-5b7c1e9d';
const STACK = /\n\s+at |\bat [\w.<>]+ \(.+:\d+:\d+\)|\.ts:\d+:\d+|node_modules/;

let azurite: Azurite;
let app: ResilienceApp | undefined;

const http = BAD_INPUT.filter((c) => c.kind === 'http' || c.kind === 'eventgrid');
const queue = BAD_INPUT.filter((c) => c.kind === 'queue');
const refused = BAD_INPUT.filter((c) => c.kind === 'policy' && c.expect === 'refused');
const tolerated = BAD_INPUT.filter((c) => c.kind === 'policy' && c.expect !== 'refused');

beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);

afterAll(async () => {
  await app?.stop();
  await azurite?.stop();
});

function codes(c: BadInputCase): string[] {
  return c.code === undefined ? [] : typeof c.code === 'string' ? [c.code] : [...c.code];
}

function requestFor(a: ResilienceApp, c: BadInputCase): { url: string; init: RequestInit } {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-functions-key': FUNCTION_KEY };
  if (c.kind === 'eventgrid') {
    if (c.eventType !== null) headers['aeg-event-type'] = c.eventType ?? 'Notification';
  }
  for (const [k, v] of Object.entries(c.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const method = c.method ?? (c.kind === 'eventgrid' ? 'POST' : 'GET');
  const url = c.kind === 'eventgrid' ? `${a.url}/runtime/webhooks/eventgrid?functionName=${c.target}` : `${a.url}${c.target}`;
  return { url, init: { method, headers, ...(c.body !== undefined && method !== 'GET' ? { body: c.body } : {}) } };
}

/** Answers and logs say nothing about Warden's secrets. */
function expectNoSecret(text: string): void {
  expect(text).not.toContain(CLIENT_STATE);
  expect(text).not.toContain(FUNCTION_KEY);
}

describe('the bad-input corpus', () => {
  it('holds at least 50 cases over every route and trigger', () => {
    expect(BAD_INPUT.length).toBeGreaterThanOrEqual(50);
    const targets = new Set(BAD_INPUT.map((c) => (c.kind === 'http' ? c.target.split('?')[0] : `${c.kind}:${c.kind === 'policy' ? '' : c.target}`)));
    for (const t of ['/api/remediate', '/api/plan', '/api/audit', '/api/health', '/api/graph/notifications', '/api/graph/lifecycle', 'eventgrid:resourceEvents', 'eventgrid:keyVaultEvents', 'eventgrid:graphEvents', 'queue:warden-work', 'policy:']) {
      expect(targets).toContain(t);
    }
    expect(new Set(BAD_INPUT.map((c) => c.name)).size).toBe(BAD_INPUT.length);
  });

  describe('routes and Event Grid triggers', () => {
    let mark = 0;
    beforeAll(async () => {
      app = await launchApp({ azurite, env: { WARDEN_HOST_FUNCTION_KEY: FUNCTION_KEY } });
      mark = app.emu.record.mark();
    }, 30_000);

    it.each(http.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const a = app as ResilienceApp;
      const before = a.emu.record.mark();
      const logsFrom = a.logMark();
      const { url, init } = requestFor(a, c);
      const res = await fetch(url, init);
      const text = await res.text();

      expect(res.status).toBeLessThan(500);
      if (c.expect === 'ignored') expect([200, 202, 204]).toContain(res.status);
      else expect(res.status).toBe(c.expect);
      expect(text).not.toMatch(STACK);
      expectNoSecret(text);
      if (codes(c).length > 0) {
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        expect(codes(c)).toContain(body.error?.code);
        expect(typeof body.error?.message).toBe('string');
        expect(String(body.error?.message).length).toBeGreaterThan(0);
      }
      if (c.text !== undefined) {
        expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(text).toBe(c.text);
      }
      if (c.log) await waitFor(`the log line ${String(c.log)}`, () => c.log?.test(a.logsSince(logsFrom)), 5000);

      await a.settle(10_000, { quietMs: 100 });
      expect(azureWrites(a.emu, before)).toEqual([]);
      expect(await a.queueDepth()).toEqual({ work: 0, poison: 0 });
      expectNoSecret(a.logsSince(logsFrom));
    });

    it('after the whole corpus: nothing written, no alert, and the app still serves', async () => {
      const a = app as ResilienceApp;
      expect(azureWrites(a.emu, mark)).toEqual([]);
      expect(deliveredAlerts(a.emu)).toEqual({ eventGrid: [], webhook: [], mail: [] });
      const health = await fetch(`${a.url}/api/health`);
      expect(health.status).toBe(200);
      // No invocation failed: bad input is answered, not thrown.
      expect(a.allLogs()).not.toMatch(/\(Failed, Id=/);
    });
  });

  describe('the work queue', () => {
    let client: QueueClient;
    beforeAll(() => {
      client = new QueueClient(azurite.connectionString, 'warden-work');
    });

    it.each(queue.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const a = app as ResilienceApp;
      const before = a.emu.record.mark();
      const logsFrom = a.logMark();
      const alertsBefore = a.emu.eventgrid.received().length;
      await client.sendMessage(c.body ?? '');
      if (c.log) await waitFor(`the log line ${String(c.log)}`, () => c.log?.test(a.logsSince(logsFrom)), 15_000);
      await a.settle(15_000);
      expect(azureWrites(a.emu, before)).toEqual([]);
      const depth = await a.queueDepth();
      expect(depth).toEqual({ work: 0, poison: c.poison ? 1 : 0 });
      if (c.poison) await new QueueClient(azurite.connectionString, 'warden-work-poison').clearMessages();
      // Nothing is dropped silently: what cannot be run is alerted (and recorded), what is out of scope only logged.
      const alerts = a.emu.eventgrid.received().slice(alertsBefore).map((r) => String(r.event.type));
      expect(alerts).toEqual(c.alert ? [c.alert] : []);
      expect(a.logsSince(logsFrom)).not.toMatch(STACK);
      expectNoSecret(a.logsSince(logsFrom));
    });

    afterAll(async () => {
      await app?.stop();
      app = undefined;
    });
  });

  describe('hostile policies', () => {
    const base = (): PolicyShape =>
      JSON.parse(JSON.stringify(policyFor({ vaultUrl: 'https://127.0.0.1:1', eventGridTopic: 'https://127.0.0.1:1/api/events' }))) as PolicyShape;
    const refusedEnv = (policy: string): Record<string, string> => ({
      AzureWebJobsStorage: azurite.connectionString,
      WARDEN_POLICY: policy,
      WARDEN_CREDENTIAL: 'emulator',
      WARDEN_ARM_ENDPOINT: 'https://127.0.0.1:1',
      WARDEN_GRAPH_ENDPOINT: 'https://127.0.0.1:1',
      WARDEN_ALERT_WEBHOOK: 'https://127.0.0.1:1/hook',
    });

    it.each(refused.map((c) => [c.name, c] as const))('%s: the app refuses to start, naming the path', async (_name, c) => {
      const policy = JSON.stringify(c.policy?.(base()));
      const err = await createRuntime({ env: refusedEnv(policy), logSink: () => undefined }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PolicyError);
      const issues = (err as PolicyError).issues.map((i) => i.path);
      for (const path of codes(c)) expect(issues.filter((i) => i.startsWith(path))).not.toEqual([]);
      // The message names the problem without echoing a 10,000-character value back.
      expect((err as PolicyError).message.length).toBeLessThan(2000);
    });

    it('a host started with a refused policy answers with a 5xx that names an invocation, and logs the path', async () => {
      const saved = { ...process.env };
      const sink = memoryHostSink();
      resetRuntime();
      const host = await startHost({
        port: 0,
        env: { ...refusedEnv(JSON.stringify(refused[0]?.policy?.(base()))), WARDEN_HOST_DISABLE_TIMERS: '1' },
        localSettings: false,
        disableTimers: true,
        appRoot: APP_ROOT,
        functions: ['health', 'remediate'],
        logSink: sink.sink,
      });
      try {
        for (const [path, init] of [['/api/health', {}], ['/api/remediate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"capability":"rbac"}' }]] as const) {
          const res = await fetch(`${host.url}${path}`, init);
          const text = await res.text();
          expect(res.status).toBe(500);
          const body = JSON.parse(text) as { error: { code: string; invocationId?: string } };
          expect(body.error.code).toBe('InvalidPolicy');
          expect(body.error.invocationId).toMatch(/^[0-9a-f-]{36}$/);
          expect(text).not.toMatch(STACK);
          expect(text).not.toContain('rbac.bindings');
        }
        expect(sink.text()).toMatch(/rbac\.bindings\[0\]\.role: must be at most 128 characters/);
        expect(sink.text()).not.toContain('R'.repeat(200));
      } finally {
        await host.stop({ drainMs: 1000 });
        resetRuntime();
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    });

    it.each(tolerated.map((c) => [c.name, c] as const))('%s: the app runs, writes only what the valid parts want, and settles', async (_name, c) => {
      const a = await launchApp({ azurite, policy: (emu) => c.policy?.(JSON.parse(JSON.stringify(resiliencePolicy(emu))) as PolicyShape) as never });
      try {
        const logsFrom = a.logMark();
        await a.sweep(60_000);
        if (c.log) expect(a.logsSince(logsFrom)).toMatch(c.log);
        if (c.alert) expect(deliveredAlerts(a.emu).eventGrid.map((x) => x.split(' ')[0])).toContain(c.alert);
        expect(await a.queueDepth()).toEqual({ work: 0, poison: 0 });
        expect(deliveredAlerts(a.emu).eventGrid.filter((x) => x.startsWith('Warden.Work.Failed'))).toEqual([]);
        const granted = a.emu.arm.roleAssignments({ scope: workspaceId(), roleDefinitionId: DATA_SCIENTIST });
        // Whatever the hostile binding does, the valid one still governs, once per principal.
        expect(granted.map((g) => g.principalId).sort()).toEqual(c.name.includes('globs') ? [] : ['7e57a11e-0000-4000-8000-000000000101', '7e57a11e-0000-4000-8000-000000000102']);
        expect(a.emu.record.writes({ status: (s) => s >= 400 })).toEqual([]);
        // Stable: nothing more is planned for the workspace (a second sweep would change nothing).
        const plan = await fetch(`${a.url}/api/plan?capability=rbac&target=${encodeURIComponent(workspaceId())}`);
        expect(plan.status).toBe(200);
        expect(((await plan.json()) as { totals: { changes: number } }).totals.changes).toBe(0);
      } finally {
        await a.stop();
      }
    }, 90_000);
  });
});
