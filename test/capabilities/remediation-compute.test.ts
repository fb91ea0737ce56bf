/**
 * Plan and remediate with a real capability (compute identity) against the emulator through the real
 * SDK clients: on a drifted tenant the plan lists exactly what apply does, the plan is empty after,
 * and a dry run writes nothing (checked on the emulator's request record). Also the deep health route.
 */
import { randomBytes } from 'node:crypto';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import type { Emulator } from '../../emulator';
import { createAuditLog } from '../../shared/audit';
import { createAzureClients } from '../../shared/azure/clients';
import { systemClock } from '../../shared/clock';
import { createComputeModule } from '../../shared/compute';
import { createLimiter } from '../../shared/concurrency';
import type { CoreDeps } from '../../shared/deps';
import { createLogger } from '../../shared/logging';
import { parsePolicy } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryStateStore } from '../../shared/ports/state';
import { reconcile } from '../../shared/reconcile';
import {
  healthDeepFunctionOptions, planFunctionOptions, remediateFunctionOptions, type PlanResult, type RemediateResult, type RemediationRuntime,
} from '../../shared/remediation';
import { loadSettings } from '../../shared/settings';
import type { WorkRequest } from '../../shared/work/item';
import { FAST_RETRY, withEmulator } from '../helpers/emulator';

let emu: Emulator;
let rt: RemediationRuntime;
let queued: WorkRequest[];
let n = 0;

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

beforeAll(async () => {
  emu = await withEmulator();
  const settings = loadSettings({ AzureWebJobsStorage: storage(), WARDEN_CREDENTIAL: 'emulator', WARDEN_ARM_ENDPOINT: emu.urls.arm, WARDEN_GRAPH_ENDPOINT: emu.urls.graph });
  const { policy } = parsePolicy({
    mode: 'enforce',
    scopes: [`/subscriptions/${emu.subscriptionId}`],
    compute: { requireManagedIdentity: true, onViolation: { cluster: 'assign-identity', instance: 'stop' } },
  });
  const clients = createAzureClients(settings, { retry: FAST_RETRY, lroPollMs: 10 });
  const logger = createLogger(() => undefined);
  const core: CoreDeps = { settings, policy, clients, clock: systemClock, limiter: createLimiter(4), logger };
  queued = [];
  const enqueue = async (items: WorkRequest[]): Promise<void> => {
    queued.push(...items);
  };
  const compute = createComputeModule({ ...core, state: new MemoryStateStore(), enqueue }).capability;
  // Only compute is real here; the other capabilities govern nothing in this test.
  const none = { ...compute, listTargets: async () => [], inScope: () => false };
  const capabilities = { compute, rbac: { ...none, name: 'rbac' as const }, workspaces: { ...none, name: 'workspaces' as const }, credentials: { ...none, name: 'credentials' as const } };
  const audit = createAuditLog(await clients.table(`audit${randomBytes(5).toString('hex')}`));
  const alerter = new MemoryAlerter();
  rt = {
    core,
    capabilities,
    reconcile: (req) => reconcile(req, { capabilities, audit, alerter, mode: policy.mode, logger, clock: systemClock }),
    enqueue,
    audit,
  };
});

afterAll(async () => {
  await emu.stop();
});

async function call(options: ReturnType<typeof planFunctionOptions>, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const req = new HttpRequest({
    method,
    url: `https://warden.example/api/${path}`,
    ...(body !== undefined ? { body: { string: JSON.stringify(body) }, headers: { 'content-type': 'application/json' } } : {}),
  });
  const res = (await options.handler(req, new InvocationContext({ invocationId: `inv-${++n}`, logHandler: () => undefined }))) as HttpResponseInit;
  return { status: res.status ?? 200, body: res.jsonBody as unknown };
}

const plan = (query: string) => call(planFunctionOptions(async () => rt), 'GET', `plan${query}`);
const remediate = (body: unknown) => call(remediateFunctionOptions(async () => rt), 'POST', 'remediate', body);

it('plans exactly the changes apply makes on a drifted tenant; a dry run writes nothing; the plan is empty after', async () => {
  let mark = emu.record.mark();
  const before = await plan('?capability=compute');
  expect(before.status).toBe(200);
  const p = before.body as PlanResult;
  expect(p.errors).toEqual([]);
  const drifted = p.plans.filter((x) => x.changes.length > 0);
  expect(drifted.length).toBeGreaterThan(0);
  expect(drifted.map((x) => x.target.split('/').pop())).toContain('cpu-cluster');
  const planned = drifted.flatMap((x) => x.changes.map((c) => `${c.action} ${c.id}`)).sort();
  expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark)).toEqual([]);

  // Dry run of each drifted target: the same changes as `planned`, nothing written to ARM.
  mark = emu.record.mark();
  const dry: string[] = [];
  for (const x of drifted) {
    const res = await remediate({ capability: 'compute', target: x.target, dryRun: true });
    expect(res.status).toBe(200);
    const r = res.body as Extract<RemediateResult, { status: 'completed' }>;
    for (const c of r.results.flatMap((y) => y.changes)) {
      expect(c.outcome).toBe('planned');
      dry.push(`${c.action} ${c.id}`);
    }
  }
  expect(dry.sort()).toEqual(planned);
  expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark)).toEqual([]);
  expect(emu.record.since(mark, { service: 'arm' }).length).toBeGreaterThan(0);

  // Apply each drifted target synchronously.
  mark = emu.record.mark();
  const applied: string[] = [];
  for (const x of drifted) {
    const r = (await remediate({ capability: 'compute', target: x.target })).body as Extract<RemediateResult, { status: 'completed' }>;
    for (const c of r.results.flatMap((y) => y.changes)) {
      expect(c).toMatchObject({ outcome: 'applied' });
      applied.push(`${c.action} ${c.id}`);
    }
  }
  expect(applied.sort()).toEqual(planned);
  expect(emu.record.writes({ service: 'arm' }).filter((r) => r.seq > mark).length).toBeGreaterThan(0);

  const after = (await plan('?capability=compute')).body as PlanResult;
  expect(after.totals.changes).toBe(0);

  // The audit trail holds each apply with the HTTP caller.
  const trail = await rt.audit.query({ capability: 'compute' });
  const appliedRecords = trail.records.filter((r) => r.outcome === 'applied');
  expect(appliedRecords.map((r) => `${r.action} ${r.changeId}`).sort()).toEqual(planned);
  expect(appliedRecords.every((r) => r.trigger.kind === 'http' && r.trigger.caller === 'function-key')).toBe(true);
  expect(trail.records.filter((r) => r.outcome === 'planned')).toHaveLength(planned.length);
});

it('queues every compute for `all` targets and answers 202 without writing', async () => {
  const mark = emu.record.mark();
  queued.length = 0;
  const res = await remediate({ capability: 'compute' });
  expect(res.status).toBe(202);
  const r = res.body as Extract<RemediateResult, { status: 'queued' }>;
  const targets = await rt.capabilities.compute.listTargets();
  expect(r.queued.map((q) => q.target).sort()).toEqual([...targets].sort());
  expect(queued.map((q) => q.target).sort()).toEqual([...targets].sort());
  expect(queued.every((q) => q.capability === 'compute' && q.trigger.kind === 'http')).toBe(true);
  expect(emu.record.writes({ service: 'arm' }).filter((x) => x.seq > mark)).toEqual([]);
});

it('refuses a compute id outside the scopes and a malformed one with 400', async () => {
  const outside = await remediate({ capability: 'compute', target: '/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c' });
  expect(outside).toMatchObject({ status: 400, body: { error: { code: 'TargetOutOfScope' } } });
  const malformed = await plan('?capability=compute&target=%2Fsubscriptions%2Fx');
  expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'InvalidTarget' } } });
});

describe('deep health', () => {
  const deep = () => call(healthDeepFunctionOptions(async () => rt, { timeoutMs: 3000 }), 'GET', 'health/deep');

  it('reports that storage, ARM and Graph answer', async () => {
    const res = await deep();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      mode: 'enforce',
      version: expect.any(String),
      checks: { storage: { ok: true }, arm: { ok: true }, graph: { ok: true } },
    });
  });

  it('answers 503 naming the dependency that does not answer', async () => {
    const id = emu.faults.add({ service: 'graph', status: 403, code: 'Authorization_RequestDenied' });
    try {
      const res = await deep();
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ status: 'degraded', checks: { storage: { ok: true }, arm: { ok: true }, graph: { ok: false, error: expect.stringContaining('403') } } });
    } finally {
      emu.faults.remove(id);
    }
  });
});
