/**
 * The Graph delta catch-up: group change notifications can be late or lost and Graph sends no
 * `missed` signal for them, so on every relevant notification and every sweep Warden asks Graph what
 * changed in the watched groups (the bound groups and the groups nested in them) since its stored
 * cursor, and queues a reconcile of every bound group a change reaches.
 *
 * `groups/delta` filters on at most 50 ids, so the watched set is cut into sorted chunks of 50, each
 * with its own cursor (keyed by a hash of its ids) in the StateStore. A chunk without a cursor starts
 * at `$deltatoken=latest`; when that is not the very first catch-up (the watched set changed, or the
 * token expired) its past is unknown, so it queues a reconcile of every bound group it covers.
 * Members seen leaving a watched group
 * become pending offboarding records for the workspaces their bound groups reach.
 */
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import { DeltaExpiredError, type Directory } from '../ports/directory';
import type { GovernedResource } from '../ports/rbac';
import { ConcurrencyError, type StateStore } from '../ports/state';
import type { WorkRequest } from '../work/item';
import type { NestingMap } from './nesting';
import { P_DELTA, P_OFFBOARD, deltaCursorSchema, offboardKey, putIfUnchanged, readEntry, setHash, type OffboardRecord } from './store';

/** The rbac target that runs the catch-up. */
export const DELTA_TARGET = 'delta';
/** Graph's limit of ids in a delta `$filter`. */
export const MAX_DELTA_IDS = 50;

export interface CatchUpDeps {
  directory: Directory;
  state: StateStore;
  clock: Clock;
  enqueue: (items: WorkRequest[]) => Promise<void>;
  nesting: NestingMap;
  /** Bound group ids, lower case. */
  bound: readonly string[];
  workspacesReachedBy(groups: ReadonlySet<string>): Promise<GovernedResource[]>;
  /** Groups nested in a bound group (for rebuilding the nesting map). */
  nestedOf(group: string): Promise<string[]>;
  /** Forgets what this process cached about these bound groups' members (they changed). */
  invalidate(groups: Iterable<string>): void;
  log: Logger;
}

export interface CatchUpResult {
  /** Groups watched (bound and nested). */
  watched: number;
  /** Chunks whose cursor had to start afresh. */
  cursorsStarted: number;
  /** Watched groups Graph reported as changed. */
  changedGroups: string[];
  /** Bound groups queued for a reconcile. */
  enqueued: string[];
  /** Pending offboarding records written. */
  offboardingCandidates: number;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function catchUp(d: CatchUpDeps): Promise<CatchUpResult> {
  const result: CatchUpResult = { watched: 0, cursorsStarted: 0, changedGroups: [], enqueued: [], offboardingCandidates: 0 };
  if (d.bound.length === 0) return result;
  const bound = new Set(d.bound);
  const index = await d.nesting.fresh(d.bound, d.log, (g) => d.nestedOf(g));
  const watched = [...new Set([...d.bound, ...index.keys()])].sort();
  result.watched = watched.length;
  const holders = (groupId: string): string[] => [...(bound.has(groupId) ? [groupId] : []), ...(index.get(groupId) ?? [])];

  const affected = new Set<string>();
  const changed = new Set<string>();
  const removals = new Map<string, { type: 'User' | 'ServicePrincipal'; groups: Set<string> }>();
  let nestingChanged = false;
  const keys = new Set<string>();
  const existing = await d.state.list(P_DELTA);
  // The very first catch-up has no past to make up for (sweeps and notifications cover what came
  // before); a chunk that is new because the watched set changed, or whose token expired, might.
  const firstEver = existing.length === 0;

  for (const ids of chunk(watched, MAX_DELTA_IDS)) {
    const key = setHash(ids);
    keys.add(key);
    const cursor = await readEntry(d.state, P_DELTA, key, deltaCursorSchema);
    let link: string | undefined;
    let restart = cursor === undefined;
    if (cursor) {
      try {
        for await (const page of d.directory.groupsDelta(cursor.value.deltaLink)) {
          for (const c of page.changes) {
            changed.add(c.groupId);
            const hs = holders(c.groupId);
            for (const h of hs) affected.add(h);
            if (c.removed && !bound.has(c.groupId)) nestingChanged = true;
            for (const m of c.members) {
              if (m.type === 'Group') nestingChanged = true;
              else if (m.removed && (m.type === 'User' || m.type === 'ServicePrincipal')) {
                const r = removals.get(m.id) ?? { type: m.type, groups: new Set<string>() };
                for (const h of hs) r.groups.add(h);
                removals.set(m.id, r);
              }
            }
          }
          if (page.deltaLink) link = page.deltaLink;
        }
      } catch (err) {
        if (!(err instanceof DeltaExpiredError)) throw err;
        d.log.warn('The groups delta cursor expired; starting a new one and reconciling its groups', { groups: ids.length });
        restart = true;
      }
    }
    if (restart) {
      link = await d.directory.latestGroupsDeltaLink(ids);
      result.cursorsStarted++;
      if (!firstEver) for (const id of ids) for (const h of holders(id)) affected.add(h);
    }
    if (link) {
      const stored = await putIfUnchanged(d.state, P_DELTA, key, { deltaLink: link, groups: ids, updatedAt: d.clock.now().toISOString() }, cursor?.etag);
      if (!stored) d.log.debug('Another instance advanced the same delta cursor; keeping its value');
    }
  }

  for (const e of existing) if (!keys.has(e.key)) await d.state.delete(P_DELTA, e.key);
  d.invalidate(affected);
  if (nestingChanged) await d.nesting.markStale();

  for (const [principalId, r] of removals) {
    if (r.groups.size === 0) continue;
    for (const ws of await d.workspacesReachedBy(r.groups)) {
      const record: OffboardRecord = {
        workspaceId: ws.id,
        principalId,
        principalType: r.type,
        reason: `left group(s) ${[...r.groups].join(', ')}`,
        since: d.clock.now().toISOString(),
      };
      try {
        await d.state.put(P_OFFBOARD, offboardKey(ws.id, principalId), record, { create: true });
        result.offboardingCandidates++;
      } catch (err) {
        if (!(err instanceof ConcurrencyError)) throw err;
      }
    }
  }

  result.changedGroups = [...changed].sort();
  result.enqueued = [...affected].sort();
  if (result.enqueued.length > 0) {
    await d.enqueue(
      result.enqueued.map((target) => ({
        capability: 'rbac' as const,
        target,
        reason: 'Group membership changed (Graph delta catch-up)',
        trigger: { kind: 'notification' as const, id: 'graph-delta' },
      })),
    );
  }
  d.log.info(`Caught up group changes: ${result.changedGroups.length} changed, ${result.enqueued.length} bound group(s) queued`, {
    watched: result.watched,
    cursorsStarted: result.cursorsStarted,
    offboardingCandidates: result.offboardingCandidates,
  });
  return result;
}
