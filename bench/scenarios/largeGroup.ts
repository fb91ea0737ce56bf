/**
 * A 100,000-member group bound with `principals: "members"`: the RBAC plan expands it (transitive
 * members, paged) and plans one assignment per member. For comparison, a second probe only streams
 * the members through the directory port, keeping what the engine keeps. The expansion runs in a separate bare `node`
 * process on the compiled app (the emulator stays in this one), so its peak RSS is Warden's alone.
 * Report mode and `plan` only: nothing is written, nothing audited.
 */
import { spawn } from 'node:child_process';
import { z } from 'zod';
import { startEmulator } from '../../emulator';
import { generateTenant } from '../../emulator/generate';
import type { PolicyInput } from '../../shared/policy';
import { callsSince, CONCURRENCY, LATENCY_MS } from '../lib/app';
import { DIST, ensureBuilt, ROOT } from '../lib/build';
import { writeFixtures } from '../lib/fixtures';
import { below, exactly, metric, type Scenario } from '../lib/types';

export type LargeGroupSizes = {
  members: number;
};

const resultSchema = z.object({
  baselineRss: z.number(),
  baselineMaxRss: z.number(),
  sampledPeakRss: z.number(),
  maxRss: z.number(),
  heapUsedAfter: z.number(),
  rssAfter: z.number(),
  planMs: z.number(),
  changes: z.number(),
  findings: z.number(),
  skipped: z.number(),
});

const MB = 1024 * 1024;
/** Graph's page size for the transitive member list Warden asks for (`$top=999`). */
const MEMBER_PAGE = 999;

function runProbe(script: string, input: unknown): Promise<z.infer<typeof resultSchema>> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_BENCH_PROBE: JSON.stringify(input) };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [script, DIST], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the memory probe exited with ${code}: ${err.slice(0, 800)}`));
      try {
        resolve(resultSchema.parse(JSON.parse(out)));
      } catch (e) {
        reject(new Error(`the memory probe printed no result: ${out.slice(0, 200)} ${err.slice(0, 300)} (${String(e)})`));
      }
    });
  });
}

export const largeGroup: Scenario<LargeGroupSizes> = {
  name: 'large-group',
  title: 'Large group: peak RSS expanding a 100,000-member group',
  defaults: { members: 100_000 },
  storage: true,
  async run(ctx, sizes) {
    const build = ensureBuilt(ctx.log);
    const f = writeFixtures();
    const tenant = generateTenant({ workspaces: 1, groups: 1, membersPerGroup: sizes.members, explicitMembersPerGroup: 0, apps: 0, computesPerWorkspace: 0, seed: 'bench-large' });
    const groupId = tenant.index.groupIds[0] as string;
    const emu = await startEmulator({ tenant, latencyMs: LATENCY_MS });
    try {
      const policy: PolicyInput = {
        mode: 'report',
        scopes: [`/subscriptions/${tenant.subscriptionId}`],
        rbac: { bindings: [{ id: 'bench-large', group: groupId, role: 'AzureML Data Scientist', principals: 'members' }] },
      };
      const env: Record<string, string> = {
        ...emu.wardenEnv(),
        AzureWebJobsStorage: ctx.storage,
        WARDEN_POLICY: JSON.stringify(policy),
        WARDEN_CONCURRENCY: String(CONCURRENCY),
      };
      ctx.log(`large-group: planning ${sizes.members.toLocaleString('en-US')} members in a separate process`);
      const mark = emu.record.mark();
      const r = await runProbe(f.planMemoryProbe, { env, capability: 'rbac', target: groupId });
      const calls = callsSince(emu, mark);
      const pages = emu.record.since(mark, { operation: 'graph.groups.transitiveMembers' }).filter((e) => !/microsoft\.graph\.group/i.test(e.path)).length;
      ctx.log('large-group: the member expansion alone, for comparison');
      const e = await runProbe(f.planMemoryProbe, { env, capability: 'rbac', target: groupId, expandOnly: true });
      const onePass = Math.ceil(sizes.members / MEMBER_PAGE);
      return {
        metrics: [
          metric('peak RSS', r.maxRss / MB, 'MB', below(300)),
          metric('RSS before the plan', r.baselineRss / MB, 'MB'),
          metric('heap after the plan', r.heapUsedAfter / MB, 'MB'),
          metric('member pages', pages, 'requests', exactly(onePass, `= ${onePass} (one pass)`)),
          // ARM allows 4,000 role assignments per subscription: a members binding this large is refused
          // with a Warden.Rbac.TooManyMembers finding instead of 100,000 planned assignments.
          metric('planned assignments', r.changes, '', exactly(0)),
          metric('findings', r.findings, '', exactly(1)),
          metric('plan time', r.planMs, 'ms'),
          metric('peak RSS, expansion alone', e.maxRss / MB, 'MB'),
          metric('expansion time', e.planMs, 'ms'),
        ],
        calls: { plan: calls.byOperation },
        details: { sizes, build, probe: r, expansionProbe: e },
      };
    } finally {
      await emu.stop();
    }
  },
};
