/**
 * Plan and remediate through the real route handlers and the real `reconcile()`, over a small
 * in-memory capability: what the plan lists is what apply does, a dry run writes nothing, `all` queues,
 * and every bad input is a 4xx with a code and a message — never a stack trace.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import fc from 'fast-check';
import type { CapabilityName } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLogger, memorySink } from '../../shared/logging';
import type { Mode, Policy } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { reconcile } from '../../shared/reconcile';
import {
  healthFunctionOptions, planFunctionOptions, remediateFunctionOptions, type PlanResult, type RemediateResult, type RemediationRuntime,
} from '../../shared/remediation';
import type { WorkRequest } from '../../shared/work/item';
import { fakeCapabilities, fakeWorld, type FakeWorld } from './remediation.fake';

const G1 = '0d7c1a2b-1111-4aaa-8bbb-000000000001';
const G2 = '0d7c1a2b-1111-4aaa-8bbb-000000000002';
const G3 = '0d7c1a2b-1111-4aaa-8bbb-000000000003';
const WS = '/subscriptions/8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1';

interface Harness {
  world: FakeWorld;
  rt: RemediationRuntime;
  audit: MemoryAuditLog;
  alerter: MemoryAlerter;
  queued: WorkRequest[];
  logs: ReturnType<typeof memorySink>;
  call(fnName: 'plan' | 'remediate' | 'health', init: { method?: string; query?: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: unknown; headers: Record<string, string> }>;
}

function harness(opts: { mode?: Mode; role?: string; auth?: boolean } = {}): Harness {
  const world = fakeWorld();
  world.desired.set(G1, new Set(['reader', 'writer']));
  world.actual.set(G1, new Set(['reader']));
  world.actual.set(G2, new Set(['stale']));
  world.desired.set(G2, new Set());
  world.actual.set(G3, new Set(['ok']));
  world.desired.set(G3, new Set(['ok']));
  world.desired.set(WS, new Set(['baseline']));
  const capabilities = fakeCapabilities(world);
  const audit = new MemoryAuditLog();
  const alerter = new MemoryAlerter();
  const queued: WorkRequest[] = [];
  const logs = memorySink();
  const mode = opts.mode ?? 'enforce';
  const clock = new ManualClock('2026-05-01T00:00:00Z');
  const rt: RemediationRuntime = {
    core: {
      settings: { version: '9.8.7', remediationRole: opts.role, appServiceAuthEnabled: opts.auth ?? false } as RemediationRuntime['core']['settings'],
      policy: { mode, scopes: ['/subscriptions/8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f'] } as unknown as Policy,
      clients: {} as RemediationRuntime['core']['clients'],
    },
    capabilities,
    reconcile: (req) => reconcile(req, { capabilities, audit, alerter, mode, logger: createLogger(logs), clock }),
    enqueue: async (items) => {
      queued.push(...items);
    },
    audit,
  };
  const options = { plan: planFunctionOptions(async () => rt), remediate: remediateFunctionOptions(async () => rt), health: healthFunctionOptions(async () => rt) };
  let n = 0;
  return {
    world, rt, audit, alerter, queued, logs,
    async call(fnName, init) {
      const req = new HttpRequest({
        method: init.method ?? (fnName === 'remediate' ? 'POST' : 'GET'),
        url: `https://warden.example/api/${fnName}${init.query ?? ''}`,
        headers: init.headers ?? (init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(init.body !== undefined ? { body: { string: init.body } } : {}),
      });
      const ctx = new InvocationContext({ invocationId: `inv-${++n}`, functionName: fnName, logHandler: () => undefined });
      const res = (await options[fnName].handler(req, ctx)) as HttpResponseInit;
      return { status: res.status ?? 200, body: res.jsonBody as unknown, headers: (res.headers ?? {}) as Record<string, string> };
    },
  };
}

const changeKeys = (changes: Array<{ id: string; action: string }>): string[] => changes.map((c) => `${c.action} ${c.id}`).sort();

describe('plan and remediate', () => {
  it('plans exactly the changes remediation applies, and nothing after', async () => {
    const h = harness();
    const plan = await h.call('plan', { query: '?capability=rbac' });
    expect(plan.status).toBe(200);
    const p = plan.body as PlanResult;
    expect(p.plans.map((x) => x.target)).toEqual([G1, G2, G3]);
    expect(p.totals).toEqual({ targets: 3, changes: 2, findings: 0 });
    expect(h.world.writes).toBe(0);
    expect(h.audit.records).toEqual([]);

    const applied: string[] = [];
    for (const target of p.plans.map((x) => x.target)) {
      const res = await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target }) });
      expect(res.status).toBe(200);
      const r = res.body as Extract<RemediateResult, { status: 'completed' }>;
      expect(r.dryRun).toBe(false);
      for (const c of r.results.flatMap((x) => x.changes)) {
        expect(c.outcome).toBe('applied');
        applied.push(`${c.action} ${c.id}`);
      }
    }
    expect(applied.sort()).toEqual(changeKeys(p.plans.flatMap((x) => x.changes)));
    expect(h.world.actual.get(G1)).toEqual(new Set(['reader', 'writer']));

    const after = (await h.call('plan', { query: '?capability=rbac' })).body as PlanResult;
    expect(after.totals.changes).toBe(0);
  });

  it('runs a dry run through reconcile: planned outcomes and audit records, nothing written', async () => {
    const h = harness();
    const res = await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target: G1.toUpperCase(), dryRun: true }) });
    expect(res.status).toBe(200);
    const r = res.body as Extract<RemediateResult, { status: 'completed' }>;
    expect(r.dryRun).toBe(true);
    expect(r.results[0]?.target).toBe(G1);
    expect(r.results[0]?.changes.map((c) => c.outcome)).toEqual(['planned']);
    expect(h.world.writes).toBe(0);
    expect(h.audit.records.map((a) => [a.outcome, a.trigger.kind, a.trigger.caller])).toEqual([['planned', 'http', 'function-key']]);
  });

  it('plans every target at once for a dry run without a target, instead of queueing work that would apply', async () => {
    const h = harness();
    const res = await h.call('remediate', { body: JSON.stringify({ capability: 'all', dryRun: true }) });
    expect(res.status).toBe(200);
    const r = res.body as Extract<RemediateResult, { status: 'completed' }>;
    expect(r.results.map((x) => `${x.capability} ${x.target}`).sort()).toEqual(
      [`compute ${WS}`, `credentials ${G1}`, `credentials ${G2}`, `credentials ${G3}`, `rbac ${G1}`, `rbac ${G2}`, `rbac ${G3}`, `workspaces ${WS}`].sort(),
    );
    expect(h.queued).toEqual([]);
    expect(h.world.writes).toBe(0);
  });

  it('queues every in-scope target for `all` and answers 202 with what was queued', async () => {
    const h = harness({ role: 'Warden.Remediate', auth: true });
    h.world.outOfScope.add(G3);
    const who = Buffer.from(JSON.stringify({ claims: [{ typ: 'preferred_username', val: 'ada@contoso.example' }, { typ: 'roles', val: 'Warden.Remediate' }] })).toString('base64');
    const res = await h.call('remediate', { body: JSON.stringify({ capability: 'rbac' }), headers: { 'content-type': 'application/json', 'x-ms-client-principal': who } });
    expect(res.status).toBe(202);
    const r = res.body as Extract<RemediateResult, { status: 'queued' }>;
    expect(r.queued).toEqual([{ capability: 'rbac', target: G1 }, { capability: 'rbac', target: G2 }]);
    expect(h.queued.map((q) => [q.capability, q.target, q.trigger.kind, q.trigger.caller])).toEqual([
      ['rbac', G1, 'http', 'ada@contoso.example'],
      ['rbac', G2, 'http', 'ada@contoso.example'],
    ]);
    expect(h.queued[0]?.trigger.id).toMatch(/^inv-/);
    expect(h.world.writes).toBe(0);
  });

  it('records the signed-in principal as the caller of a synchronous remediation', async () => {
    const h = harness({ role: 'Warden.Remediate', auth: true });
    const who = Buffer.from(JSON.stringify({ claims: [{ typ: 'preferred_username', val: 'grace@contoso.example' }, { typ: 'roles', val: 'Warden.Remediate' }] })).toString('base64');
    const res = await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target: G2 }), headers: { 'content-type': 'application/json', 'x-ms-client-principal': who } });
    expect(res.status).toBe(200);
    expect(h.audit.records.map((a) => [a.action, a.outcome, a.trigger.caller])).toEqual([['deleteAssignment', 'applied', 'grace@contoso.example']]);
  });

  it('hands a target to every capability that accepts it with `all`', async () => {
    const h = harness();
    const p = (await h.call('plan', { query: `?capability=all&target=${G1}` })).body as PlanResult;
    expect(p.plans.map((x) => x.capability)).toEqual(['rbac', 'credentials']);
    const w = (await h.call('plan', { query: `?capability=all&target=${encodeURIComponent(WS)}` })).body as PlanResult;
    expect(w.plans.map((x) => x.capability)).toEqual(['workspaces', 'compute']);
  });

  it('changes nothing in report mode, even when asked to apply', async () => {
    const h = harness({ mode: 'report' });
    const res = await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target: G1 }) });
    const r = res.body as Extract<RemediateResult, { status: 'completed' }>;
    expect(r).toMatchObject({ mode: 'report', dryRun: true });
    expect(r.results[0]?.changes.map((c) => c.outcome)).toEqual(['planned']);
    expect(h.world.writes).toBe(0);
  });

  it('returns each failed change with its error and whether a retry can help', async () => {
    const h = harness();
    h.world.failing.set(G1, 'terminal');
    h.world.failing.set(G2, 'transient');
    const one = (await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target: G1 }) })).body as Extract<RemediateResult, { status: 'completed' }>;
    expect(one.results[0]?.changes[0]).toMatchObject({ outcome: 'failed', error: { code: 'AuthorizationFailed', retryable: false } });
    expect(one.results[0]?.retryable).toBe(false);
    expect(h.alerter.sent.map((f) => f.type)).toEqual(['Warden.Rbac.ChangeFailed']);
    const two = (await h.call('remediate', { body: JSON.stringify({ capability: 'rbac', target: G2 }) })).body as Extract<RemediateResult, { status: 'completed' }>;
    expect(two.results[0]).toMatchObject({ retryable: true, changes: [{ outcome: 'failed', error: { code: 'Busy', retryable: true } }] });
  });

  it('answers a failure of the capability itself with a 5xx naming the invocation, and no stack', async () => {
    const h = harness();
    h.rt.capabilities.rbac.plan = () => Promise.reject(Object.assign(new Error('connect ECONNRESET 10.1.2.3:443'), { code: 'ECONNRESET' }));
    const res = await h.call('plan', { query: `?capability=rbac&target=${G1}` });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ error: { code: 'InternalError', invocationId: 'inv-1' } });
    expect(JSON.stringify(res.body)).not.toMatch(/ECONNRESET|\bat .+:\d+/);
    expect(res.headers['x-warden-invocation-id']).toBe('inv-1');
  });

  it('plans the others when one target cannot be planned, and says which', async () => {
    const h = harness();
    const real = h.rt.capabilities.rbac.plan.bind(h.rt.capabilities.rbac);
    h.rt.capabilities.rbac.plan = (t) => (t === G2 ? Promise.reject(Object.assign(new Error('Forbidden'), { code: 'AuthorizationFailed', statusCode: 403 })) : real(t));
    const p = (await h.call('plan', { query: '?capability=rbac' })).body as PlanResult;
    expect(p.plans.map((x) => x.target)).toEqual([G1, G3]);
    expect(p.errors).toEqual([{ capability: 'rbac', target: G2, error: { code: 'AuthorizationFailed', message: 'Forbidden' } }]);
  });
});

describe('bad input to plan and remediate', () => {
  const ROLE = 'Warden.Remediate';
  const principal = (roles: string[]): string =>
    Buffer.from(JSON.stringify({ claims: [{ typ: 'preferred_username', val: 'bob@contoso.example' }, ...roles.map((r) => ({ typ: 'roles', val: r }))] })).toString('base64');

  const cases: Array<[string, 'plan' | 'remediate', Parameters<Harness['call']>[1], number, string, { role?: string; auth?: boolean }?]> = [
    ['unknown capability (query)', 'plan', { query: '?capability=network' }, 400, 'UnknownCapability'],
    ['unknown capability (body)', 'remediate', { body: '{"capability":"network"}' }, 400, 'UnknownCapability'],
    ['malformed target', 'plan', { query: '?capability=rbac&target=not-a-guid' }, 400, 'InvalidTarget'],
    ['malformed target for every capability', 'remediate', { body: '{"capability":"all","target":"../../etc"}' }, 400, 'InvalidTarget'],
    ['empty target', 'remediate', { body: '{"capability":"rbac","target":"  "}' }, 400, 'InvalidTarget'],
    ['control characters in target', 'plan', { query: '?capability=rbac&target=a%00b' }, 400, 'InvalidTarget'],
    ['target outside the scopes', 'remediate', { body: `{"capability":"rbac","target":"${G3}"}` }, 400, 'TargetOutOfScope'],
    ['wrong method on plan', 'plan', { method: 'POST' }, 405, 'MethodNotAllowed'],
    ['wrong method on remediate', 'remediate', { method: 'GET' }, 405, 'MethodNotAllowed'],
    ['wrong method on health', 'health' as 'plan', { method: 'DELETE' }, 405, 'MethodNotAllowed'],
    ['oversized body', 'remediate', { body: JSON.stringify({ capability: 'rbac', target: 'x'.repeat(80_000) }) }, 413, 'PayloadTooLarge'],
    ['non-JSON body', 'remediate', { body: 'capability=rbac' }, 400, 'InvalidJson'],
    ['JSON that is not an object', 'remediate', { body: '["rbac"]' }, 400, 'InvalidInput'],
    ['form content type', 'remediate', { body: 'capability=rbac', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'UnsupportedMediaType'],
    ['no body', 'remediate', { headers: {} }, 400, 'BodyRequired'],
    ['misspelt dryRun', 'remediate', { body: '{"capability":"rbac","dryrun":true}' }, 400, 'UnknownField'],
    ['dryRun as a string', 'remediate', { body: '{"capability":"rbac","dryRun":"yes"}' }, 400, 'InvalidDryRun'],
    ['capability twice', 'plan', { query: '?capability=rbac&capability=all' }, 400, 'DuplicateParameter'],
    ['no principal when a role is required', 'remediate', { body: '{"capability":"rbac"}' }, 401, 'PrincipalRequired', { role: ROLE, auth: true }],
    ['role required but authentication off', 'plan', { headers: { 'x-ms-client-principal': principal([ROLE]) } }, 401, 'PrincipalRequired', { role: ROLE, auth: false }],
    ['principal without the role', 'plan', { headers: { 'x-ms-client-principal': principal(['Reader']) } }, 403, 'RoleRequired', { role: ROLE, auth: true }],
    ['forged principal header', 'remediate', { body: '{"capability":"rbac"}', headers: { 'content-type': 'application/json', 'x-ms-client-principal': 'bm90IGpzb24=' } }, 401, 'InvalidPrincipal', { role: ROLE, auth: true }],
  ];

  // One object per case: jest reads a test function with more parameters than the row has as `done`-style.
  it.each(cases.map(([name, fnName, init, status, code, opts]) => ({ name, fnName, init, status, code, opts })))('$name → $status $code', async ({ fnName, init, status, code, opts }) => {
    const h = harness({ ...(opts?.role ? { role: opts.role } : {}), ...(opts?.auth !== undefined ? { auth: opts.auth } : {}) });
    h.world.outOfScope.add(G3);
    const res = await h.call(fnName, init);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
    expect((res.body as { error: { message: string } }).error.message.length).toBeGreaterThan(5);
    expect(h.world.writes).toBe(0);
    expect(h.queued).toEqual([]);
    expect(h.audit.records).toEqual([]);
  });

  it('answers any body or query with a 2xx or a 4xx envelope, never a 5xx or a stack', async () => {
    const h = harness();
    const anyJson = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({ capability: fc.oneof(fc.constantFrom<CapabilityName | 'all'>('rbac', 'compute', 'all'), fc.string()), target: fc.option(fc.string(), { nil: undefined }), dryRun: fc.option(fc.boolean(), { nil: undefined }) }).map((v) => JSON.stringify({ ...v, dryRun: true })),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(anyJson, fc.string(), fc.string(), async (body, cap, target) => {
        const r1 = await h.call('remediate', { body });
        const r2 = await h.call('plan', { query: `?capability=${encodeURIComponent(cap)}&target=${encodeURIComponent(target)}` });
        for (const r of [r1, r2]) {
          expect(r.status).toBeLessThan(500);
          if (r.status >= 400) expect(r.body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
          expect(JSON.stringify(r.body)).not.toMatch(/\n\s+at /);
        }
      }),
      { numRuns: 150 },
    );
    expect(h.world.writes).toBe(0);
  });
});

describe('health', () => {
  it('answers version and mode anonymously', async () => {
    const h = harness({ mode: 'report' });
    const res = await h.call('health', {});
    expect(res).toMatchObject({ status: 200, body: { status: 'ok', version: '9.8.7', mode: 'report' } });
  });

  it('sends ?deep=1 to the key-protected deep route, keeping the key', async () => {
    const h = harness();
    const res = await h.call('health', { query: '?deep=1&code=abc' });
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe('/api/health/deep?code=abc');
  });
});
