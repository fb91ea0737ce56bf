/**
 * Members mode: one group with nested members bound with `principals: "members"` on a few workspaces;
 * a cold sweep creates one assignment per enabled transitive member per workspace. The member list
 * must be read once per run and shared by every workspace's reconcile, not read per workspace.
 */
import { generateTenant } from '../../emulator/generate';
import type { Emulator } from '../../emulator';
import { CONCURRENCY, LATENCY_MS, startBenchApp } from '../lib/app';
import { atMost, exactly, metric, type Scenario } from '../lib/types';
import { rbacPolicy, rbacSweep } from './rbac';

export type MembersSizes = {
  /** Enabled transitive members (one explicit, the rest generated, `nested` of them in a nested group). */
  members: number;
  nested: number;
  workspaces: number;
};

/** Graph's page size for the transitive member list Warden asks for (`$top=999`). */
const MEMBER_PAGE = 999;

/** Requests for pages of the member list itself (not the nested-group listing of the nesting map). */
function memberPages(emu: Emulator, from: number, to: number): number {
  return emu.record
    .since(from, { operation: 'graph.groups.transitiveMembers' })
    .filter((e) => e.seq <= to && !/microsoft\.graph\.group/i.test(e.path)).length;
}

export const members: Scenario<MembersSizes> = {
  name: 'members',
  title: 'Members mode: 500-member group (nested) on 4 workspaces',
  defaults: { members: 500, nested: 100, workspaces: 4 },
  storage: true,
  async run(ctx, sizes) {
    // Two explicit members, one of them disabled (left out); one nested group of `nested` members.
    const tenant = generateTenant({
      workspaces: sizes.workspaces,
      groups: 1,
      membersPerGroup: sizes.members - 1 - sizes.nested,
      explicitMembersPerGroup: 2,
      nestedDepth: 1,
      membersPerNestedGroup: sizes.nested,
      apps: 0,
      computesPerWorkspace: 0,
      seed: 'bench-members',
    });
    const app = await startBenchApp({ tenant, policy: rbacPolicy(tenant, 'members'), storage: ctx.storage });
    try {
      ctx.log(`members: ${sizes.members} members (${sizes.nested} nested) × ${sizes.workspaces} workspaces`);
      const f = await rbacSweep(app, app.runtime);
      const { start, sweepEnd, end } = f.marks;
      const objects = sizes.members + 2;
      const onePass = Math.ceil(objects / MEMBER_PAGE);
      const sweepPages = memberPages(app.emu, start, sweepEnd);
      const followUpPages = memberPages(app.emu, sweepEnd, end);
      const ideal = (f.calls.total / CONCURRENCY) * LATENCY_MS;
      return {
        metrics: [
          metric('writes', f.calls.writes, 'calls', exactly(sizes.members * sizes.workspaces)),
          metric('member pages (sweep)', sweepPages, 'requests', atMost(onePass, `≤ ${onePass} (one pass of ${objects} objects)`)),
          metric('member pages (follow-up)', followUpPages, 'requests'),
          metric('reads', f.calls.reads, 'calls'),
          metric('calls', f.calls.total, 'calls'),
          metric('wall', f.wallMs, 'ms'),
          metric('ideal wall', ideal, 'ms'),
          metric('wall ÷ ideal', f.wallMs / ideal, '×'),
          metric('failed changes', f.outcomes.failed ?? 0, '', exactly(0)),
        ],
        calls: { sweep: f.sweepCalls.byOperation, followUp: f.followUpCalls.byOperation },
        details: {
          sizes,
          targets: f.targets,
          sweepMs: Math.round(f.sweepMs),
          followUpMs: Math.round(f.wallMs - f.sweepMs),
          outcomes: f.outcomes,
          followUpStatuses: f.followUpStatuses,
          failures: f.failures,
          problems: app.logs.problems,
        },
      };
    } finally {
      await app.stop();
    }
  },
};
