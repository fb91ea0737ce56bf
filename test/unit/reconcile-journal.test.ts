import type { Capability, CapabilityName, Change, Plan } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLogger, memorySink } from '../../shared/logging';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { MemoryStateStore } from '../../shared/ports/state';
import { JOURNAL_PARTITION, reconcile, type ReconcileDeps } from '../../shared/reconcile';

/** A capability over one in-memory resource: it wants `fixed`, and its apply can "crash" after writing. */
function world() {
  const resource = { fixed: false };
  let crashAfterWrite = false;
  const change: Change = {
    id: 'c1', capability: 'compute', target: 't1', action: 'assignIdentity', description: 'Assign an identity to t1',
    resource: '/r/t1', destructive: false, data: {},
  };
  const cap: Capability = {
    name: 'compute',
    listTargets: async () => ['t1'],
    parseTarget: (t) => t,
    inScope: () => true,
    plan: async (): Promise<Plan> => ({
      capability: 'compute', target: 't1', skipped: [],
      changes: resource.fixed ? [] : [change],
      findings: resource.fixed ? [] : [{ type: 'Warden.Compute.IdentityMissing', subject: '/r/t1', severity: 'warning', summary: 'no identity', details: {}, actions: [] }],
    }),
    apply: async (plan) => {
      resource.fixed = true;
      if (crashAfterWrite) throw new Error('host killed');
      return plan.changes.map((c) => ({ change: c, outcome: 'applied' as const }));
    },
  };
  const audit = new MemoryAuditLog();
  const alerter = new MemoryAlerter();
  const journal = new MemoryStateStore();
  const deps: ReconcileDeps = {
    capabilities: { compute: cap } as unknown as Record<CapabilityName, Capability>,
    audit, alerter, journal, mode: 'enforce', logger: createLogger(memorySink()), clock: new ManualClock(),
  };
  return { resource, audit, alerter, journal, deps, crash: (v: boolean) => (crashAfterWrite = v) };
}

describe('the reconcile journal', () => {
  it('records a change made by a run that died before its audit records, and sends its findings', async () => {
    const w = world();
    w.crash(true);
    await expect(reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'event', id: 'e1' } }, w.deps)).rejects.toThrow('host killed');
    expect(w.audit.records).toEqual([]);
    expect(w.alerter.sent).toEqual([]);
    expect((await w.journal.list(JOURNAL_PARTITION)).length).toBeGreaterThan(0);

    w.crash(false);
    const retry = await reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'followup' } }, w.deps);
    expect(retry.plan.changes).toEqual([]);
    expect(w.audit.records.filter((r) => r.outcome === 'applied')).toEqual([
      expect.objectContaining({ action: 'assignIdentity', resource: '/r/t1', changeId: 'c1', summary: expect.stringContaining('confirmed after an interrupted run') }),
    ]);
    expect(w.alerter.sent.map((f) => f.type)).toEqual(['Warden.Compute.IdentityMissing']);
    expect(await w.journal.list(JOURNAL_PARTITION)).toEqual([]);
  });

  it('leaves no journal behind after a run that completes, and a second run records nothing more', async () => {
    const w = world();
    await reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'event' } }, w.deps);
    expect(await w.journal.list(JOURNAL_PARTITION)).toEqual([]);
    const applied = w.audit.records.filter((r) => r.outcome === 'applied').length;
    expect(applied).toBe(1);
    await reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'event' } }, w.deps);
    expect(w.audit.records.filter((r) => r.outcome === 'applied')).toHaveLength(1);
  });

  it('stores a large plan in rows a table can hold, and reads it back', async () => {
    const w = world();
    const big: Change[] = Array.from({ length: 800 }, (_, i) => ({
      id: `c${i}`, capability: 'rbac', target: 't1', action: 'createRoleAssignment', description: `Create role assignment "x" number ${i} ${'y'.repeat(150)}`,
      resource: `/r/t1/${i}`, destructive: false, data: {},
    }));
    const cap = w.deps.capabilities.compute;
    cap.plan = async () => ({ capability: 'compute', target: 't1', skipped: [], changes: w.resource.fixed ? [] : big, findings: [] });
    w.crash(true);
    await expect(reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'event' } }, w.deps)).rejects.toThrow('host killed');
    const rows = await w.journal.list<unknown>(JOURNAL_PARTITION);
    expect(rows.length).toBeGreaterThan(2);
    for (const r of rows) expect(JSON.stringify(r.value).length).toBeLessThan(32_000);
    w.crash(false);
    await reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'followup' } }, w.deps);
    expect(w.audit.records.filter((r) => r.outcome === 'applied')).toHaveLength(800);
    expect(await w.journal.list(JOURNAL_PARTITION)).toEqual([]);
  });

  it('writes no journal for a dry run', async () => {
    const w = world();
    await reconcile({ capability: 'compute', target: 't1', trigger: { kind: 'http' }, dryRun: true }, w.deps);
    expect(await w.journal.list(JOURNAL_PARTITION)).toEqual([]);
    expect(w.resource.fixed).toBe(false);
  });
});
