/**
 * RBAC sweeps over a tenant of workspaces with group bindings, as the sweep runs them: every target
 * from `listTargets()` reconciled with the Functions host's queue parallelism, every Azure call through
 * Warden's own limiter (`WARDEN_CONCURRENCY`). Work the sweep queues for later (the delta catch-up's
 * group reconciles) is then run through the work pipeline and counted too: it is part of what a sweep
 * costs.
 *
 * - cold start: nothing assigned yet; every binding's assignment is created.
 * - steady sweep: the same tenant after the cold start, with a fresh runtime (the caches a sweep six
 *   hours later finds expired): nothing to change.
 */
import { generateTenant, type GeneratedTenant } from '../../emulator/generate';
import type { PolicyInput } from '../../shared/policy';
import type { ReconcileReport } from '../../shared/reconcile';
import type { Runtime } from '../../shared/runtime';
import { callsSince, CONCURRENCY, forEachLimited, HOST_QUEUE_PARALLELISM, LATENCY_MS, startBenchApp, type BenchApp, type CallCount } from '../lib/app';
import { since } from '../lib/stats';
import { atMost, exactly, metric, type Metric, type Scenario, type ScenarioContext } from '../lib/types';

export type RbacSizes = {
  workspaces: number;
  bindings: number;
};

/** The roles the bindings grant (one per binding, cycling). */
export const BINDING_ROLES = ['AzureML Data Scientist', 'AzureML Compute Operator', 'Reader'];

export function rbacTenant(sizes: RbacSizes): GeneratedTenant {
  return generateTenant({
    workspaces: sizes.workspaces,
    groups: sizes.bindings,
    membersPerGroup: 5,
    apps: 0,
    computesPerWorkspace: 0,
    // every group security-enabled: `auto` binds the group itself
    securityEnabledEvery: 1,
    seed: 'bench-rbac',
  });
}

export function rbacPolicy(tenant: GeneratedTenant, principals: 'group' | 'members' = 'group'): PolicyInput {
  return {
    mode: 'enforce',
    scopes: [`/subscriptions/${tenant.subscriptionId}`],
    rbac: {
      bindings: tenant.index.groupIds.map((group, i) => ({
        id: `bench-${i}`,
        group,
        role: BINDING_ROLES[i % BINDING_ROLES.length] as string,
        principals,
      })),
    },
  };
}

export interface SweepFigures {
  targets: number;
  /** `listTargets()` alone. */
  listMs: number;
  sweepMs: number;
  /** Sweep plus the work it queued. */
  wallMs: number;
  sweepCalls: CallCount;
  followUpCalls: CallCount;
  calls: CallCount;
  outcomes: Record<string, number>;
  failures: string[];
  followUpStatuses: Record<string, number>;
  /** Request-record marks: before the sweep, after it, after its follow-up work. */
  marks: { start: number; sweepEnd: number; end: number };
}

/** One RBAC sweep: listTargets, every target reconciled, then the work it queued. */
export async function rbacSweep(app: BenchApp, rt: Runtime): Promise<SweepFigures> {
  const mark = app.emu.record.mark();
  const t0 = performance.now();
  const targets = await rt.capabilities.rbac.listTargets();
  const listMs = since(t0);
  const reports: ReconcileReport[] = [];
  await forEachLimited(targets, HOST_QUEUE_PARALLELISM, async (target) => {
    reports.push(await rt.reconcile({ capability: 'rbac', target, trigger: { kind: 'schedule', id: 'bench' } }));
  });
  const sweepMs = since(t0);
  const sweepCalls = callsSince(app.emu, mark);
  const mark2 = app.emu.record.mark();
  const followUpStatuses = await app.drainWork(120_000);
  const wallMs = since(t0);
  const outcomes: Record<string, number> = {};
  const failures: string[] = [];
  for (const r of reports) {
    for (const o of r.outcomes) {
      outcomes[o.outcome] = (outcomes[o.outcome] ?? 0) + 1;
      if (o.error && failures.length < 5) failures.push(`${o.change.action} ${o.change.resource}: ${o.error.code} ${o.error.message}`.slice(0, 200));
    }
  }
  return {
    marks: { start: mark, sweepEnd: mark2, end: app.emu.record.mark() },
    listMs,
    targets: targets.length,
    sweepMs,
    wallMs,
    sweepCalls,
    followUpCalls: callsSince(app.emu, mark2),
    calls: callsSince(app.emu, mark),
    outcomes,
    failures,
    followUpStatuses,
  };
}

/** The RBAC targets for one sweep. */
export function rbacMetrics(f: SweepFigures, sizes: RbacSizes, want: { writes: number }): Metric[] {
  const ideal = (f.calls.total / CONCURRENCY) * LATENCY_MS;
  const readLimit = sizes.workspaces + READ_CONSTANT;
  return [
    metric('writes', f.calls.writes, 'calls', exactly(want.writes)),
    metric('reads', f.calls.reads, 'calls', atMost(readLimit, `≤ ${readLimit} (1/workspace + ${READ_CONSTANT})`)),
    metric('calls', f.calls.total, 'calls'),
    metric('follow-up calls', f.followUpCalls.total, 'calls'),
    metric('wall', f.wallMs, 'ms', atMost(1.3 * ideal, `≤ ${Math.round(1.3 * ideal)} ms (1.3 × calls ÷ ${CONCURRENCY} × ${LATENCY_MS} ms)`)),
    metric('wall ÷ ideal', f.wallMs / ideal, '×'),
    metric('calls in flight (avg)', f.sweepCalls.busyMs / f.sweepMs, ''),
    metric('failed changes', f.outcomes.failed ?? 0, '', exactly(0)),
  ];
}

/**
 * "A constant" of reads not tied to a workspace: the paged workspace list, role definitions, groups,
 * the delta catch-up's cursors. Generous on purpose: what it guards is reads growing per workspace.
 */
export const READ_CONSTANT = 20;

function details(f: SweepFigures, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    targets: f.targets,
    listTargetsMs: Math.round(f.listMs),
    sweepMs: Math.round(f.sweepMs),
    followUpMs: Math.round(f.wallMs - f.sweepMs),
    outcomes: f.outcomes,
    followUpStatuses: f.followUpStatuses,
    failures: f.failures,
  };
}

export const rbacColdStart: Scenario<RbacSizes> = {
  name: 'rbac-cold',
  title: 'RBAC cold start: workspaces × group bindings, nothing assigned',
  defaults: { workspaces: 200, bindings: 3 },
  storage: true,
  async run(ctx: ScenarioContext, sizes: RbacSizes) {
    const tenant = rbacTenant(sizes);
    const app = await startBenchApp({ tenant, policy: rbacPolicy(tenant), storage: ctx.storage });
    try {
      ctx.log(`rbac-cold: ${sizes.workspaces} workspaces × ${sizes.bindings} bindings`);
      const f = await rbacSweep(app, app.runtime);
      return {
        metrics: rbacMetrics(f, sizes, { writes: sizes.workspaces * sizes.bindings }),
        calls: { sweep: f.sweepCalls.byOperation, followUp: f.followUpCalls.byOperation },
        details: details(f, { sizes, problems: app.logs.problems }),
      };
    } finally {
      await app.stop();
    }
  },
};

export const rbacSteady: Scenario<RbacSizes> = {
  name: 'rbac-steady',
  title: 'RBAC steady sweep, no drift',
  defaults: { workspaces: 200, bindings: 3 },
  storage: true,
  async run(ctx: ScenarioContext, sizes: RbacSizes) {
    const tenant = rbacTenant(sizes);
    const app = await startBenchApp({ tenant, policy: rbacPolicy(tenant), storage: ctx.storage });
    try {
      ctx.log(`rbac-steady: cold start first (not measured)`);
      const cold = await rbacSweep(app, app.runtime);
      ctx.log(`rbac-steady: the steady sweep, with a fresh runtime`);
      const f = await rbacSweep(app, await app.freshRuntime());
      return {
        metrics: rbacMetrics(f, sizes, { writes: 0 }),
        calls: { sweep: f.sweepCalls.byOperation, followUp: f.followUpCalls.byOperation },
        details: details(f, { sizes, coldStartWrites: cold.calls.writes, problems: app.logs.problems }),
      };
    } finally {
      await app.stop();
    }
  },
};
