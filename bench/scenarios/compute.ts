/**
 * New clusters without a managed identity, created at a steady rate; ARM's ResourceWriteSuccess events
 * are pushed by the emulator to the host's `resourceEvents` function, which queues the compute
 * reconciles that the `work` function runs. Measured: the time from a cluster's creation to the moment
 * ARM shows it with the identity, and the calls per cluster (LRO status polls counted apart).
 */
import { generateTenant } from '../../emulator/generate';
import type { PolicyInput } from '../../shared/policy';
import { callsSince, startBenchApp } from '../lib/app';
import { percentile, since, waitFor } from '../lib/stats';
import { atMost, exactly, metric, type Scenario } from '../lib/types';

export type ComputeSizes = {
  clusters: number;
  /** Created over this many milliseconds. */
  spreadMs: number;
  workspaces: number;
};

const LRO_POLL_OPERATIONS = new Set(['arm.operations.get', 'arm.operations.result']);

export const compute: Scenario<ComputeSizes> = {
  name: 'compute',
  title: 'Compute: 100 new clusters without identity, events pushed',
  defaults: { clusters: 100, spreadMs: 5000, workspaces: 10 },
  storage: true,
  async run(ctx, sizes) {
    const tenant = generateTenant({ workspaces: sizes.workspaces, groups: 0, membersPerGroup: 0, apps: 0, computesPerWorkspace: 0, seed: 'bench-compute' });
    const policy: PolicyInput = {
      mode: 'enforce',
      scopes: [`/subscriptions/${tenant.subscriptionId}`],
      compute: { requireManagedIdentity: true, identity: { type: 'SystemAssigned' }, requireLocalAuthDisabled: true, onViolation: { cluster: 'assign-identity', instance: 'alert' } },
    };
    const app = await startBenchApp({ tenant, policy, storage: ctx.storage, host: true });
    try {
      const { emu } = app;
      ctx.log(`compute: ${sizes.clusters} clusters over ${sizes.spreadMs} ms in ${sizes.workspaces} workspaces`);
      const workspaces = tenant.index.workspaceIds;
      const created = new Map<string, number>();
      const fixed = new Map<string, number>();
      const hasIdentity = (id: string): boolean => /SystemAssigned/i.test(emu.arm.getCompute(id)?.identity?.type ?? 'None');
      const check = (): boolean => {
        const now = performance.now();
        for (const id of created.keys()) if (!fixed.has(id) && hasIdentity(id)) fixed.set(id, now);
        return fixed.size === sizes.clusters;
      };
      // Checked every 10 ms from the first creation on, so each cluster's fix is timed as it happens.
      const watcher = waitFor(check, 'every cluster to get its identity', 120_000, 10).catch((err: unknown) =>
        ctx.log(`compute: ${err instanceof Error ? err.message : String(err)}`),
      );
      const mark = emu.record.mark();
      const t0 = performance.now();
      const interval = sizes.spreadMs / sizes.clusters;
      for (let i = 0; i < sizes.clusters; i++) {
        const wait = t0 + i * interval - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const ws = workspaces[i % workspaces.length] as string;
        // Local auth already off: the identity is the one violation.
        const c = emu.arm.createCompute(ws, { name: `bench-cluster-${i}`, computeType: 'AmlCompute', disableLocalAuth: true });
        created.set(c.id, performance.now());
      }
      await watcher;
      const fixedMs = since(t0);
      await app.settle(60_000, 1500);
      const calls = callsSince(emu, mark, 'arm');
      const polls = Object.entries(calls.byOperation)
        .filter(([op]) => LRO_POLL_OPERATIONS.has(op))
        .reduce((n, [, c]) => n + c, 0);
      const perCompute = (calls.total - polls) / sizes.clusters;
      const latencies = [...fixed].map(([id, at]) => at - (created.get(id) ?? at));
      const runs = [...(await app.workRuns('compute')).values()].reduce((a, b) => a + b, 0);
      return {
        metrics: [
          metric('fixed', fixed.size, 'clusters', exactly(sizes.clusters)),
          metric('event→fixed p50', percentile(latencies, 50), 'ms'),
          metric('event→fixed p99', percentile(latencies, 99), 'ms'),
          metric('calls per compute', perCompute, 'calls', atMost(3, '≤ 3 + LRO polls')),
          metric('LRO polls per compute', polls / sizes.clusters, 'calls'),
          metric('calls', calls.total, 'calls'),
          metric('reconciles', runs, ''),
          metric('all fixed after', fixedMs, 'ms'),
        ],
        calls: { run: calls.byOperation },
        details: { sizes, problems: app.logs.problems },
      };
    } finally {
      await app.stop();
    }
  },
};
