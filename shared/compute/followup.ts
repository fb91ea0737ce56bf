/**
 * Follow-ups for resources that are still being built. `ResourceWriteSuccess` arrives while a compute
 * or workspace is still `Creating`/`Updating` (and again, sometimes, when it is done). Judging a half-built
 * resource would be wrong (a cluster has no identity yet, a workspace has no datastores yet), and writing
 * to it answers 409. So the reconcile plans nothing for it and asks for a delayed re-check: a work item of
 * the same capability and target, queued with a growing delay (30 s, 1 min, 2 min … at most 15 min).
 *
 * Why a queued follow-up and not "fail and let the host retry": the queue's retries come at once
 * (host.json `visibilityTimeout` 0), five of them in a row, and then the item is poison and alerted as a
 * failure, although nothing failed. A follow-up is an ordinary work item, so the coalescing in `work/`
 * treats it like any other (duplicates fold), and it works in `report` mode too (nothing is written to
 * Azure either way).
 *
 * The attempts per target are counted in the state table, so a resource stuck in `Creating` costs at
 * most {@link FollowUpOptions.maxAttempts} re-checks (then the regular sweep covers it), even when the
 * queue cannot delay messages.
 */
import type { CapabilityName } from '../capability';
import type { Clock } from '../clock';
import { DAY_MS } from '../clock';
import type { Logger } from '../logging';
import { ConcurrencyError, type StateStore } from '../ports/state';
import type { WorkRequest } from '../work/item';

/** Queues work items; `delayMs` keeps them invisible that long (Storage queue visibility timeout). */
export type EnqueueWork = (items: WorkRequest[], options?: { delayMs?: number }) => Promise<void>;

export interface FollowUpOptions {
  /** Delay before the first re-check. */
  baseDelayMs: number;
  /** Longest delay between re-checks. */
  maxDelayMs: number;
  /** Re-checks per provisioning episode; after that the sweep covers the target. */
  maxAttempts: number;
  /** A record older than this belongs to an earlier episode (the resource was updated again later). */
  episodeMs: number;
}

export const DEFAULT_FOLLOW_UP: FollowUpOptions = { baseDelayMs: 30_000, maxDelayMs: 15 * 60_000, maxAttempts: 20, episodeMs: DAY_MS };

/** The state entry per target (partition `followup-<capability>`). */
interface FollowUpRecord {
  attempts: number;
  firstAt: string;
}

export interface FollowUpResult {
  scheduled: boolean;
  attempt: number;
  delayMs: number;
}

export interface FollowUps {
  /** Queues one delayed re-check of `target`, unless this episode already used up its attempts. */
  schedule(capability: CapabilityName, target: string, why: string): Promise<FollowUpResult>;
}

export interface FollowUpDeps {
  state: StateStore;
  enqueue: EnqueueWork;
  clock: Clock;
  logger: Logger;
}

/** Delay before re-check number `attempt` (1-based): doubling from the base, capped. */
export function followUpDelay(attempt: number, o: Pick<FollowUpOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(o.baseDelayMs * 2 ** exp, o.maxDelayMs);
}

export function createFollowUps(deps: FollowUpDeps, options: Partial<FollowUpOptions> = {}): FollowUps {
  const o: FollowUpOptions = { ...DEFAULT_FOLLOW_UP, ...options };
  return {
    async schedule(capability, target, why) {
      const partition = `followup-${capability}`;
      const key = target.toLowerCase();
      const now = deps.clock.now();
      const stored = await deps.state.get<FollowUpRecord>(partition, key);
      const fresh = stored && now.getTime() - Date.parse(stored.value.firstAt) < o.episodeMs ? stored.value : undefined;
      const attempt = (fresh?.attempts ?? 0) + 1;
      const log = deps.logger.child({ capability, target });
      if (attempt > o.maxAttempts) {
        log.warn(`Still ${why} after ${o.maxAttempts} re-checks; leaving it to the next sweep`);
        return { scheduled: false, attempt, delayMs: 0 };
      }
      try {
        await deps.state.put<FollowUpRecord>(
          partition,
          key,
          { attempts: attempt, firstAt: fresh?.firstAt ?? now.toISOString() },
          stored ? { etag: stored.etag } : { create: true },
        );
      } catch (err) {
        // Another reconcile of the same target counted (and queued) its re-check at the same moment.
        if (err instanceof ConcurrencyError) return { scheduled: false, attempt, delayMs: 0 };
        throw err;
      }
      const delayMs = followUpDelay(attempt, o);
      await deps.enqueue(
        [{ capability, target, reason: `Re-check: ${why}`, trigger: { kind: 'followup', id: `recheck-${attempt}` } }],
        { delayMs },
      );
      log.info(`Target is ${why}; queued re-check ${attempt} in ${Math.round(delayMs / 1000)} s`, { attempt, delayMs });
      return { scheduled: true, attempt, delayMs };
    },
  };
}
