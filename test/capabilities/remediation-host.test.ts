/**
 * The routes of issue 8 served by the host runner, with the real functions/*.ts, the emulator and
 * Azurite: function keys, health (shallow and deep), plan → dry run → apply → empty plan, `all` queued
 * and worked off, alerts at the emulator's sinks, and the audit trail read back over HTTP.
 */
import { isAdaptiveCardMessage } from '../../emulator/eventgrid';
import type { AuditRecord } from '../../shared/ports/audit';
import type { PlanResult, RemediateResult } from '../../shared/remediation';
import { startApp, CLIENT_STATE, type App } from '../helpers/app';
import { startAzurite, type Azurite } from '../helpers/azurite';

const KEY = 'host-function-key-7f3a9c';
let app: App;
// Its own Azurite: the work queue and the audit table have fixed names, and another worker's app
// would otherwise take this app's queued work and write into the same trail.
let azurite: Azurite;

beforeAll(async () => {
  azurite = await startAzurite();
  app = await startApp({
    storage: azurite.connectionString,
    policy: (emu) => ({
      mode: 'enforce',
      scopes: [`/subscriptions/${emu.subscriptionId}`],
      compute: { requireManagedIdentity: true, onViolation: { cluster: 'assign-identity', instance: 'stop' } },
      alerts: {
        eventGridTopic: emu.urls.eventGridTopic,
        webhookUrl: '%WARDEN_ALERT_WEBHOOK%',
        mail: { from: 'ada@contoso.example', to: ['ops@contoso.example'] },
        repeatHours: 24,
      },
    }),
    env: { WARDEN_HOST_FUNCTION_KEY: KEY },
    eventSubscriptions: false,
  });
});

afterAll(async () => {
  await app?.stop();
  await azurite?.stop();
});

async function api(path: string, init: RequestInit & { key?: boolean } = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.key !== false) headers.set('x-functions-key', KEY);
  const res = await fetch(`${app.url}/api/${path}`, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

const post = (path: string, body: unknown, init: RequestInit & { key?: boolean } = {}) =>
  api(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });

it('answers health anonymously, and deep health only with the function key', async () => {
  const health = await api('health', { key: false });
  expect(health.status).toBe(200);
  expect(health.body).toMatchObject({ status: 'ok', mode: 'enforce', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });

  const deep = await api(`health?deep=1&code=${KEY}`, { key: false });
  expect(deep.status).toBe(200);
  expect(deep.body).toMatchObject({ status: 'ok', checks: { storage: { ok: true }, arm: { ok: true }, graph: { ok: true } } });

  expect((await api('health?deep=1', { key: false })).status).toBe(401);
  expect((await api('health/deep', { key: false })).status).toBe(401);
});

it('refuses plan, remediate and audit without the function key', async () => {
  expect((await api('plan?capability=compute', { key: false })).status).toBe(401);
  expect((await post('remediate', { capability: 'compute' }, { key: false })).status).toBe(401);
  expect((await api('audit', { key: false })).status).toBe(401);
});

it('plans, dry-runs without writing, applies what was planned, and then plans nothing', async () => {
  const emu = app.emu;
  const plan = await api('plan?capability=compute');
  expect(plan.status).toBe(200);
  const drifted = (plan.body as PlanResult).plans.filter((p) => p.changes.length > 0);
  expect(drifted.length).toBeGreaterThan(0);
  const planned = drifted.flatMap((p) => p.changes.map((c) => c.id)).sort();

  let mark = emu.record.mark();
  for (const p of drifted) {
    const dry = await post('remediate', { capability: 'compute', target: p.target, dryRun: true });
    expect(dry.status).toBe(200);
    expect((dry.body as Extract<RemediateResult, { status: 'completed' }>).results[0]?.changes.every((c) => c.outcome === 'planned')).toBe(true);
  }
  expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark)).toEqual([]);
  expect(emu.record.writes({ service: 'graph' }).filter((r) => r.seq > mark && r.operation !== 'graph.sendMail')).toEqual([]);

  mark = emu.record.mark();
  const applied: string[] = [];
  for (const p of drifted) {
    const res = await post('remediate', { capability: 'compute', target: p.target });
    expect(res.status).toBe(200);
    for (const c of (res.body as Extract<RemediateResult, { status: 'completed' }>).results.flatMap((r) => r.changes)) {
      expect(c.outcome).toBe('applied');
      applied.push(c.id);
    }
  }
  expect(applied.sort()).toEqual(planned);
  expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark).length).toBeGreaterThan(0);

  const after = await api('plan?capability=compute');
  expect((after.body as PlanResult).totals.changes).toBe(0);
});

it('queues every target for `all`, answers 202, and the work pipeline runs them', async () => {
  const res = await post('remediate', { capability: 'compute' });
  expect(res.status).toBe(202);
  const queued = (res.body as Extract<RemediateResult, { status: 'queued' }>).queued;
  expect(queued.length).toBeGreaterThan(0);
  // Queued work carries the remediate invocation as its trigger: the audit trail shows the work ran.
  const invocationId = res.headers.get('x-warden-invocation-id');
  expect(invocationId).toBeTruthy();
  await app.settle();
  const trail = await api('audit?capability=compute&limit=1000');
  const records = (trail.body as { records: AuditRecord[] }).records.filter((r) => r.trigger.id === invocationId);
  expect(records.length).toBeGreaterThan(0);
  const targets = new Set(queued.map((q) => q.target));
  expect(records.every((r) => targets.has(r.target) && r.trigger.kind === 'http' && r.trigger.caller === 'function-key')).toBe(true);
  // Everything was applied before: the queued run finds nothing to change.
  expect(records.filter((r) => r.outcome === 'applied')).toEqual([]);
});

it('alerts the findings at the Event Grid topic, the webhook and by mail', async () => {
  const emu = app.emu;
  const events = emu.eventgrid.received();
  expect(events.length).toBeGreaterThan(0);
  expect(events.every((e) => e.schema === 'CloudEventSchemaV1_0' && e.auth === 'bearer')).toBe(true);
  expect(events.map((e) => e.event.type)).toContain('Warden.Compute.IdentityMissing');
  const hooks = emu.webhook.received('alerts');
  expect(hooks.length).toBeGreaterThan(0);
  expect(hooks.every((h) => isAdaptiveCardMessage(h.body))).toBe(true);
  expect(emu.graph.outbox().some((m) => m.from === 'ada@contoso.example')).toBe(true);
  // The same findings, found again by the plan, the dry runs, the applies and the queued run, were sent once each.
  const subjects = events.map((e) => `${String(e.event.type)} ${String(e.event.subject)}`);
  expect(new Set(subjects).size).toBe(subjects.length);
});

it('reads the audit trail newest first, paged, with no secret', async () => {
  const first = await api('audit?capability=compute&limit=3');
  expect(first.status).toBe(200);
  const page = first.body as { records: AuditRecord[]; continuationToken?: string; nextLink?: string };
  expect(page.records).toHaveLength(3);
  expect(page.nextLink).toBeDefined();
  const next = await fetch(page.nextLink as string, { headers: { 'x-functions-key': KEY } });
  const page2 = (await next.json()) as { records: AuditRecord[] };
  const times = [...page.records, ...page2.records].map((r) => Date.parse(r.time));
  expect(times).toEqual([...times].sort((a, b) => b - a));
  const all = JSON.stringify((await api('audit?limit=1000')).body);
  expect(all).not.toContain(CLIENT_STATE);
  expect(all).not.toContain(KEY);
  expect(all).not.toContain(app.emu.wardenEnv().WARDEN_ALERT_WEBHOOK);
});

it('answers bad input over HTTP with a JSON 4xx and no stack', async () => {
  const cases: Array<[Promise<{ status: number; body: unknown }>, number, string]> = [
    [api('plan?capability=network'), 400, 'UnknownCapability'],
    [api('plan?capability=compute&target=%2Fnot%2Fan%2Fid'), 400, 'InvalidTarget'],
    [api('plan', { method: 'PUT' }), 405, 'MethodNotAllowed'],
    [api('remediate'), 405, 'MethodNotAllowed'],
    [post('remediate', 'not json'), 400, 'InvalidJson'],
    [post('remediate', JSON.stringify({ capability: 'compute', target: 'x'.repeat(100_000) })), 413, 'PayloadTooLarge'],
    [api('remediate', { method: 'POST', body: 'capability=compute', headers: { 'content-type': 'text/plain' } }), 415, 'UnsupportedMediaType'],
    [api('audit?since=last-week'), 400, 'InvalidSince'],
  ];
  for (const [p, status, code] of cases) {
    const res = await p;
    expect({ status: res.status, code: (res.body as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
    expect(JSON.stringify(res.body)).not.toMatch(/\n\s+at |\.ts:\d+/);
  }
});
