/**
 * App credentials over a large tenant: a first scan (the credential inventory's full delta sync, then a
 * reconcile of every app that needs attention, some of them rotated into Key Vault), then a quiet
 * second scan with a fresh runtime, as the next sweep. Graph is throttled per tenant, so its request
 * count is the figure: the first scan should cost the delta pages plus one request per rotation, a quiet
 * one next to nothing.
 */
import type { Emulator } from '../../emulator';
import { generateTenant } from '../../emulator/generate';
import type { PolicyInput } from '../../shared/policy';
import type { ReconcileReport } from '../../shared/reconcile';
import type { Runtime } from '../../shared/runtime';
import { callsSince, forEachLimited, HOST_QUEUE_PARALLELISM, startBenchApp, type BenchApp, type CallCount } from '../lib/app';
import { since } from '../lib/stats';
import { atMost, exactly, metric, type Scenario } from '../lib/types';

export type CredentialsSizes = {
  apps: number;
  rotations: number;
};

/** Graph's largest page of `applications/delta` (Warden asks for it with `Prefer: odata.maxpagesize`). */
const DELTA_PAGE = 999;
const DAY_MS = 86_400_000;

interface ScanFigures {
  targets: number;
  ms: number;
  graph: CallCount;
  keyvault: CallCount;
  outcomes: Record<string, number>;
  results: Record<string, number>;
  failures: string[];
}

async function scan(app: BenchApp, rt: Runtime): Promise<ScanFigures> {
  const mark = app.emu.record.mark();
  const t0 = performance.now();
  const targets = await rt.capabilities.credentials.listTargets();
  const reports: ReconcileReport[] = [];
  await forEachLimited(targets, HOST_QUEUE_PARALLELISM, async (target) => {
    reports.push(await rt.reconcile({ capability: 'credentials', target, trigger: { kind: 'schedule', id: 'bench' } }));
  });
  const ms = since(t0);
  const outcomes: Record<string, number> = {};
  const results: Record<string, number> = {};
  const failures: string[] = [];
  for (const r of reports) {
    for (const o of r.outcomes) {
      outcomes[o.outcome] = (outcomes[o.outcome] ?? 0) + 1;
      if (o.result) results[o.result] = (results[o.result] ?? 0) + 1;
      if (o.error && failures.length < 5) failures.push(`${o.change.action} ${o.change.target}: ${o.error.code} ${o.error.message}`.slice(0, 200));
    }
  }
  return { targets: targets.length, ms, graph: callsSince(app.emu, mark, 'graph'), keyvault: callsSince(app.emu, mark, 'keyvault'), outcomes, results, failures };
}

export const credentials: Scenario<CredentialsSizes> = {
  name: 'credentials',
  title: 'Credentials: 10,000 apps, first scan then a quiet second scan',
  defaults: { apps: 10_000, rotations: 5 },
  storage: true,
  async run(ctx, sizes) {
    const nowMs = Date.now();
    const tenant = generateTenant({ workspaces: 0, groups: 0, membersPerGroup: 0, apps: sizes.apps, seed: 'bench-credentials', nowMs });
    // Rotate apps whose secret ends within the rotation window (generated ends run from 10 days ago to a year ahead).
    let due: string[] = [];
    const policy = (emu: Emulator): PolicyInput => {
      due = emu.graph
        .listApplications()
        .filter((a) => a.passwordCredentials.some((p) => Date.parse(p.endDateTime) > nowMs + DAY_MS && Date.parse(p.endDateTime) < nowMs + 10 * DAY_MS))
        .slice(0, sizes.rotations)
        .map((a) => a.appId);
      const vaultUrl = emu.vaultUrl('kv-bench');
      return {
        mode: 'enforce',
        scopes: [`/subscriptions/${tenant.subscriptionId}`],
        credentials: {
          warnDays: 30,
          rotateDaysBefore: 14,
          rotate: due.map((appId, i) => ({ appId, vaultUrl, secretName: `bench-app-secret-${i}` })),
        },
      };
    };
    const app = await startBenchApp({ tenant, policy, storage: ctx.storage });
    try {
      ctx.log(`credentials: first scan of ${sizes.apps} apps (${due.length} rotations)`);
      const first = await scan(app, app.runtime);
      ctx.log(`credentials: quiet second scan, fresh runtime`);
      const second = await scan(app, await app.freshRuntime());
      const pages = Math.ceil(sizes.apps / DELTA_PAGE);
      const rotated = first.results.rotated ?? 0;
      return {
        metrics: [
          metric('first: Graph requests', first.graph.total, 'requests', atMost(pages + due.length, `≤ ${pages + due.length} (${pages} pages + ${due.length} rotations)`)),
          metric('first: rotated', rotated, 'apps', exactly(due.length)),
          metric('first: targets', first.targets, 'apps'),
          metric('first: Key Vault requests', first.keyvault.total, 'requests'),
          metric('first: wall', first.ms, 'ms'),
          metric('second: Graph requests', second.graph.total, 'requests', atMost(3)),
          metric('second: Key Vault requests', second.keyvault.total, 'requests'),
          metric('second: wall', second.ms, 'ms'),
          metric('failed changes', (first.outcomes.failed ?? 0) + (second.outcomes.failed ?? 0), '', exactly(0)),
        ],
        calls: {
          firstGraph: first.graph.byOperation,
          firstKeyVault: first.keyvault.byOperation,
          secondGraph: second.graph.byOperation,
          secondKeyVault: second.keyvault.byOperation,
        },
        details: {
          sizes,
          first: { targets: first.targets, outcomes: first.outcomes, results: first.results, failures: first.failures },
          second: { targets: second.targets, outcomes: second.outcomes, results: second.results, failures: second.failures },
          problems: app.logs.problems,
        },
      };
    } finally {
      await app.stop();
    }
  },
};
