/** The table-backed audit trail against Azurite, and `/api/audit` over it. */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { HttpRequest, InvocationContext } from '@azure/functions';
import type { Trigger } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { InputError } from '../../shared/errors';
import { createLogger } from '../../shared/logging';
import type { Policy } from '../../shared/policy';
import type { AuditRecord } from '../../shared/ports/audit';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { reconcile } from '../../shared/reconcile';
import { forgetSecret, registerSecret } from '../../shared/redact';
import { createAuditLog, TableAuditLog } from '../../shared/audit';
import { auditFunctionOptions, type RemediationRuntime } from '../../shared/remediation';
import { fakeCapabilities, fakeWorld } from './remediation.fake';

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

function freshTable(): TableClient {
  return TableClient.fromConnectionString(storage(), `audit${randomBytes(6).toString('hex')}`, { allowInsecureConnection: true });
}

const trigger: Trigger = { kind: 'schedule', id: 'sweep' };
const rec = (time: string, over: Partial<AuditRecord> = {}): AuditRecord => ({
  time,
  capability: 'rbac',
  target: '3f1e2d3c-0000-4000-8000-000000000001',
  action: 'createRoleAssignment',
  outcome: 'applied',
  trigger,
  mode: 'enforce',
  summary: `change at ${time}`,
  ...over,
});

describe('TableAuditLog', () => {
  it('reads newest first across days, in pages whose tokens continue exactly where they stopped', async () => {
    const log = createAuditLog(freshTable());
    const times = [
      '2026-01-01T23:59:59.000Z', '2026-01-02T00:00:00.000Z', '2026-01-02T10:00:00.000Z',
      '2026-01-03T08:00:00.000Z', '2026-01-03T08:00:00.001Z', '2026-01-05T00:00:00.000Z', '2026-01-05T12:30:00.000Z',
    ];
    // Written out of order, in two calls: the keys, not the writing order, decide the reading order.
    await log.record([times[3], times[0], times[6]].map((t) => rec(t as string)));
    await log.record([times[5], times[1], times[4], times[2]].map((t) => rec(t as string)));
    const expected = [...times].reverse();

    const all = await log.query({});
    expect(all.records.map((r) => r.time)).toEqual(expected);
    expect(all.continuationToken).toBeUndefined();

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await log.query({ limit: 2, ...(token ? { continuationToken: token } : {}) });
      expect(page.records.length).toBeLessThanOrEqual(2);
      seen.push(...page.records.map((r) => r.time));
      token = page.continuationToken;
      pages++;
    } while (token && pages < 10);
    expect(seen).toEqual(expected);
  });

  it('filters by since (inclusive) and by capability, and pages through the filter', async () => {
    const log = createAuditLog(freshTable());
    await log.record([
      rec('2026-02-01T00:00:00.000Z', { capability: 'compute' }),
      rec('2026-02-02T00:00:00.000Z'),
      rec('2026-02-03T00:00:00.000Z', { capability: 'compute' }),
      rec('2026-02-03T06:00:00.000Z'),
      rec('2026-02-04T00:00:00.000Z', { capability: 'compute' }),
    ]);
    const since = await log.query({ since: new Date('2026-02-02T00:00:00.000Z') });
    expect(since.records.map((r) => r.time)).toEqual(['2026-02-04T00:00:00.000Z', '2026-02-03T06:00:00.000Z', '2026-02-03T00:00:00.000Z', '2026-02-02T00:00:00.000Z']);

    const compute = await log.query({ capability: 'compute', limit: 2 });
    expect(compute.records.map((r) => r.time)).toEqual(['2026-02-04T00:00:00.000Z', '2026-02-03T00:00:00.000Z']);
    const rest = await log.query({ capability: 'compute', limit: 2, ...(compute.continuationToken ? { continuationToken: compute.continuationToken } : {}) });
    expect(rest.records.map((r) => r.time)).toEqual(['2026-02-01T00:00:00.000Z']);

    const both = await log.query({ capability: 'compute', since: new Date('2026-02-02T12:00:00Z') });
    expect(both.records.map((r) => r.time)).toEqual(['2026-02-04T00:00:00.000Z', '2026-02-03T00:00:00.000Z']);
  });

  it('keeps the order of records written in the same millisecond (last written first)', async () => {
    const log = createAuditLog(freshTable());
    const t = '2026-03-01T00:00:00.000Z';
    await log.record([rec(t, { summary: 'first' }), rec(t, { summary: 'second' }), rec(t, { summary: 'third' })]);
    expect((await log.query({})).records.map((r) => r.summary)).toEqual(['third', 'second', 'first']);
  });

  it('round-trips every field of a record', async () => {
    const log = createAuditLog(freshTable());
    const full: AuditRecord = rec('2026-03-02T00:00:00.000Z', {
      outcome: 'failed',
      trigger: { kind: 'http', caller: 'ada@contoso.example', id: 'inv-1' },
      invocationId: 'inv-1',
      resource: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws',
      changeId: 'c-1',
      error: { code: 'AuthorizationFailed', message: 'no' },
      details: { result: 'created', nested: { n: [1, 2] } },
    });
    await log.record([full]);
    expect((await log.query({})).records).toEqual([full]);
  });

  it('caps limit at 1000 and refuses a malformed continuation token', async () => {
    const log = createAuditLog(freshTable());
    await log.record(Array.from({ length: 120 }, (_, i) => rec(new Date(Date.UTC(2026, 3, 1, 0, 0, i)).toISOString())));
    expect((await log.query({ limit: 5000 })).records).toHaveLength(120);
    expect((await log.query({ limit: 0 })).records).toHaveLength(1);
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const bad of ['garbage!', b64({ p: '', r: '' }), b64({ p: 'a\nb' }), b64([1]), 'e30', 'x'.repeat(2000)]) {
      const err = await log.query({ continuationToken: bad }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).status).toBe(400);
    }
  });

  it('writes no secret, even one hidden in details or an error', async () => {
    const secret = 'Zq8~very.secret~value';
    registerSecret(secret);
    try {
      const table = freshTable();
      const log = new TableAuditLog(table);
      await log.record([rec('2026-03-03T00:00:00.000Z', { summary: `rotated to ${secret}`, details: { secretText: secret }, error: { code: 'X', message: `Bearer abc.def.ghi ${secret}` } })]);
      const raw: unknown[] = [];
      for await (const e of table.listEntities()) raw.push(e);
      const text = JSON.stringify(raw);
      expect(text).not.toContain(secret);
      expect(text).not.toContain('abc.def.ghi');
      expect(text).toContain('[REDACTED]');
    } finally {
      forgetSecret(secret);
    }
  });

  it('keeps an oversized record within Table limits', async () => {
    const log = createAuditLog(freshTable());
    await log.record([rec('2026-03-04T00:00:00.000Z', { summary: 's'.repeat(100_000), details: { blob: 'd'.repeat(200_000) } })]);
    const [r] = (await log.query({})).records;
    expect(r?.summary.length).toBeLessThanOrEqual(2048);
    expect(r?.details).toMatchObject({ truncated: true });
  });
});

describe('/api/audit over a reconcile scenario', () => {
  const G1 = '3f1e2d3c-0000-4000-8000-0000000000a1';
  const G2 = '3f1e2d3c-0000-4000-8000-0000000000a2';

  function runtimeFor(audit: ReturnType<typeof createAuditLog>, settings: Partial<RemediationRuntime['core']['settings']> = {}): RemediationRuntime {
    const world = fakeWorld();
    return {
      core: {
        settings: { version: '1.2.3', remediationRole: undefined, appServiceAuthEnabled: false, ...settings } as RemediationRuntime['core']['settings'],
        policy: { mode: 'enforce', scopes: [] } as unknown as Policy,
        clients: {} as RemediationRuntime['core']['clients'],
      },
      capabilities: fakeCapabilities(world),
      reconcile: () => Promise.reject(new Error('not used')),
      enqueue: async () => undefined,
      audit,
    };
  }

  async function get(rt: RemediationRuntime, query: string): Promise<{ status: number; body: { records: AuditRecord[]; continuationToken?: string; nextLink?: string; error?: { code: string; message: string } } }> {
    const handler = auditFunctionOptions(async () => rt).handler;
    const res = await handler(
      new HttpRequest({ method: 'GET', url: `https://warden.example/api/audit${query}` }),
      new InvocationContext({ invocationId: 'inv-audit', functionName: 'audit', logHandler: () => undefined }),
    );
    const init = res as { status: number; jsonBody: never };
    return { status: init.status, body: init.jsonBody };
  }

  it('returns the records of a scenario in order, paged, with no secret', async () => {
    const secret = 'p4ss-in-a-finding-123';
    registerSecret(secret);
    try {
      const world = fakeWorld();
      world.desired.set(G1, new Set(['reader', 'writer']));
      world.actual.set(G2, new Set(['stale']));
      world.desired.set(G2, new Set());
      world.findings.set(G1, [{ type: 'Warden.Rbac.ForbiddenAssignment', subject: G1, severity: 'warning', summary: `Owner found (${secret})`, details: {}, actions: [] }]);
      const clock = new ManualClock('2026-04-01T10:00:00Z');
      const audit = createAuditLog(freshTable());
      const deps = { capabilities: fakeCapabilities(world), audit, alerter: new MemoryAlerter(), mode: 'enforce' as const, logger: createLogger(() => undefined), clock };
      await reconcile({ capability: 'rbac', target: G1, trigger: { kind: 'http', caller: 'ada@contoso.example', id: 'inv-1' }, invocationId: 'inv-1' }, deps);
      clock.advance(60_000);
      await reconcile({ capability: 'rbac', target: G2, trigger: { kind: 'event', id: 'evt-7' } }, deps);
      clock.advance(60_000);
      // Second run plans nothing: no new change records, only the finding again.
      await reconcile({ capability: 'rbac', target: G2, trigger: { kind: 'schedule', id: 'sweep' } }, deps);

      const rt = runtimeFor(audit);
      const first = await get(rt, '?limit=2&code=FUNCTION-KEY');
      expect(first.status).toBe(200);
      const next = new URL(first.body.nextLink as string);
      expect(next.searchParams.get('code')).toBeNull();
      expect(next.searchParams.get('limit')).toBe('2');
      const second = await get(rt, `?limit=10&continuationToken=${encodeURIComponent(first.body.continuationToken as string)}`);
      const records = [...first.body.records, ...second.body.records];
      expect(records.map((r) => [r.target, r.action, r.outcome, r.trigger.kind])).toEqual([
        [G2, 'deleteAssignment', 'applied', 'event'],
        [G1, 'finding', 'found', 'http'],
        [G1, 'createAssignment', 'applied', 'http'],
        [G1, 'createAssignment', 'applied', 'http'],
      ]);
      expect(records[1]?.trigger).toEqual({ kind: 'http', caller: 'ada@contoso.example', id: 'inv-1' });
      expect(records[1]?.invocationId).toBe('inv-1');
      expect(records.every((r) => r.mode === 'enforce' && r.capability === 'rbac' && typeof r.time === 'string')).toBe(true);
      expect(JSON.stringify(records)).not.toContain(secret);

      const since = await get(rt, `?since=${encodeURIComponent('2026-04-01T10:01:00Z')}&capability=rbac`);
      expect(since.body.records.map((r) => r.target)).toEqual([G2]);
      expect((await get(rt, '?capability=compute')).body.records).toEqual([]);
    } finally {
      forgetSecret(secret);
    }
  });

  it.each([
    ['?since=yesterday', 'InvalidSince'],
    ['?limit=abc', 'InvalidLimit'],
    ['?limit=0', 'InvalidLimit'],
    ['?limit=-5', 'InvalidLimit'],
    ['?capability=everything', 'UnknownCapability'],
    ['?continuationToken=not-ours', 'InvalidContinuationToken'],
    ['?limit=1&limit=2', 'DuplicateParameter'],
  ])('answers %s with 400 %s', async (query, code) => {
    const rt = runtimeFor(createAuditLog(freshTable()));
    const res = await get(rt, query);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe(code);
    expect(res.body.error?.message).toEqual(expect.any(String));
  });
});
