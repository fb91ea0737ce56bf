/**
 * A burst of Graph change notifications for one bound group (a bulk membership change), posted to the
 * host's `graphNotifications` webhook at an even rate with a bounded number in flight, as Graph's
 * delivery does. Each acknowledged notification queues work; the work pipeline's coalescing must turn
 * the burst into a handful of reconciles, and the webhook must answer fast (Graph drops slow
 * endpoints).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { generateTenant } from '../../emulator/generate';
import { DELTA_TARGET } from '../../shared/rbac';
import { callsSince, CLIENT_STATE, startBenchApp } from '../lib/app';
import { percentile, since } from '../lib/stats';
import { atMost, below, exactly, metric, type Scenario } from '../lib/types';
import { rbacPolicy, rbacSweep } from './rbac';

export type BurstSizes = {
  notifications: number;
  /** Over this many milliseconds. */
  spreadMs: number;
  /** Posts in flight at most. */
  concurrency: number;
  workspaces: number;
};

function notificationBody(groupId: string, tenantId: string, memberId: string, subscriptionId: string): string {
  const resource = `Groups/${groupId}`;
  return JSON.stringify({
    value: [
      {
        id: randomBytes(9).toString('base64url'),
        subscriptionId,
        subscriptionExpirationDateTime: new Date(Date.now() + 86_400_000).toISOString(),
        changeType: 'updated',
        resource,
        tenantId,
        clientState: CLIENT_STATE,
        resourceData: { '@odata.type': '#Microsoft.Graph.Group', '@odata.id': resource, id: groupId, organizationId: tenantId, 'members@delta': [{ id: memberId }] },
      },
    ],
  });
}

export const burst: Scenario<BurstSizes> = {
  name: 'burst',
  title: 'Burst: 1,000 Graph notifications for one group in 10 s',
  defaults: { notifications: 1000, spreadMs: 10_000, concurrency: 50, workspaces: 10 },
  storage: true,
  async run(ctx, sizes) {
    const tenant = generateTenant({ workspaces: sizes.workspaces, groups: 1, membersPerGroup: 20, apps: 0, computesPerWorkspace: 0, securityEnabledEvery: 1, seed: 'bench-burst' });
    const groupId = tenant.index.groupIds[0] as string;
    const app = await startBenchApp({ tenant, policy: rbacPolicy(tenant), storage: ctx.storage, host: true, resourceEvents: false });
    try {
      if (!app.host?.functions.some((f) => f.name === 'graphNotifications')) {
        throw new Error('functions/index.ts does not register graphNotifications; the burst has no webhook to post to');
      }
      ctx.log('burst: initial sweep (not measured)');
      await rbacSweep(app, app.runtime);
      await app.settle(60_000);
      const runsBefore = await app.workRuns('rbac');
      const linesBefore = app.logs.lines.length;

      ctx.log(`burst: ${sizes.notifications} notifications over ${sizes.spreadMs} ms, ≤ ${sizes.concurrency} in flight`);
      const url = `${app.host.url}/api/graph/notifications`;
      const subscriptionId = randomUUID();
      const acks: number[] = [];
      const statuses: Record<string, number> = {};
      const mark = app.emu.record.mark();
      const t0 = performance.now();
      let next = 0;
      const interval = sizes.spreadMs / sizes.notifications;
      const poster = async (): Promise<void> => {
        while (next < sizes.notifications) {
          const i = next++;
          const due = t0 + i * interval;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const body = notificationBody(groupId, tenant.tenantId, `${groupId.slice(0, 24)}${String(i).padStart(12, '0')}`, subscriptionId);
          const sent = performance.now();
          try {
            const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body });
            await res.arrayBuffer();
            acks.push(performance.now() - sent);
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          } catch (err) {
            statuses.error = (statuses.error ?? 0) + 1;
            if (statuses.error === 1) ctx.log(`burst: post failed: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: sizes.concurrency }, () => poster()));
      const postedMs = since(t0);
      ctx.log(`burst: posted in ${Math.round(postedMs)} ms; waiting for the work to settle`);
      await app.settle(180_000, 1500);
      const settledMs = since(t0);
      const runsAfter = await app.workRuns('rbac');
      const ran = (target: string): number => {
        const find = (m: Map<string, number>): number => [...m].find(([k]) => k.toLowerCase() === target.toLowerCase())?.[1] ?? 0;
        return find(runsAfter) - find(runsBefore);
      };
      const groupRuns = ran(groupId);
      const deltaRuns = ran(DELTA_TARGET);
      const calls = callsSince(app.emu, mark);
      return {
        metrics: [
          metric('group reconciles', groupRuns, '', atMost(5)),
          metric('delta catch-ups', deltaRuns, '', atMost(5)),
          metric('calls', calls.total, 'calls'),
          metric('writes', calls.writes, 'calls', exactly(0)),
          metric('ack p50', percentile(acks, 50), 'ms'),
          metric('ack p99', percentile(acks, 99), 'ms', below(100)),
          metric('ack max', Math.max(...acks), 'ms'),
          metric('acks 202', statuses['202'] ?? 0, '', exactly(sizes.notifications)),
          metric('posted in', postedMs, 'ms'),
          metric('settled in', settledMs, 'ms'),
        ],
        calls: { burst: calls.byOperation },
        details: { sizes, statuses, reconciledLogLines: app.logs.lines.length - linesBefore, hostLogLevels: app.logs.levels, problems: app.logs.problems },
      };
    } finally {
      await app.stop();
    }
  },
};
