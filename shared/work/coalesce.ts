/**
 * Level-triggered coalescing of work per (capability, target), kept in one table entity per target and
 * changed only with ETag optimistic concurrency, so any number of hosts can share the queue.
 *
 * The guarantee: every message is either (a) run: it claims the target and reconciles, (b) covered:
 * a reconcile that started after the message was queued has succeeded, or is running and its own
 * message is still held (if that run fails, its message is retried, alerted or poisoned), or
 * (c) handed over to exactly one follow-up work item, queued now or by the running claimant when it
 * finishes. So 1,000 messages for one target cost a handful of reconciles, and none is lost.
 */
import { createHash } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import type { CapabilityName } from '../capability';

export type FollowUpState = 'none' | 'requested' | 'queued';

/** The coalescing state of one target. Times are epoch milliseconds. */
export interface TargetState {
  target: string;
  running: boolean;
  /** Work item id of the running claimant ('' when none). */
  claimId: string;
  runStartedAt: number | undefined;
  /** A claim whose lease has passed belongs to a crashed host and is taken over. */
  leaseUntil: number | undefined;
  /** Start of the last reconcile that succeeded: everything queued before it is covered. */
  lastSuccessStartedAt: number | undefined;
  followUp: FollowUpState;
  followUpId: string;
  /** Work item that promised the queued follow-up: if its message comes back, it queues it again. */
  followUpBy: string;
  /** Reconciles claimed so far (for operators and tests). */
  runs: number;
  lastOutcome: string;
  lastError: string;
  lastFinishedAt: number | undefined;
}

export interface StoredState {
  state: TargetState;
  etag: string;
}

export type Decision =
  | { kind: 'claim'; takeover: boolean }
  | { kind: 'covered'; by: 'running' | 'succeeded' }
  | { kind: 'alreadyRequested' }
  | { kind: 'requestFollowUp' }
  | { kind: 'defer'; delayMs: number };

export interface DecideInput {
  /** Work item id: a redelivered message finds its own claim and takes it over. */
  id: string;
  enqueuedAt: number;
  isFollowUp: boolean;
}

/**
 * What to do with one message, from the target's state. Pure, so every branch is tested by table.
 * `windowMs`: after a successful reconcile, new work for the target waits at most this long and is
 * folded into one follow-up (bursts cost one reconcile per window, not one per message).
 */
export function decide(state: TargetState | undefined, msg: DecideInput, now: number, windowMs: number): Decision {
  if (!state) return { kind: 'claim', takeover: false };
  // A redelivered claimant (its host died mid-run) runs again at once: its earlier run never finished.
  if (state.running && state.claimId === msg.id) return { kind: 'claim', takeover: true };
  const active = state.running && state.leaseUntil !== undefined && state.leaseUntil > now;
  if (active && state.runStartedAt !== undefined && msg.enqueuedAt <= state.runStartedAt) return { kind: 'covered', by: 'running' };
  if (state.lastSuccessStartedAt !== undefined && msg.enqueuedAt <= state.lastSuccessStartedAt) {
    return { kind: 'covered', by: 'succeeded' };
  }
  // The claimant queues the follow-up when it finishes (a claim resets the flag, so it is ours to set).
  if (active) return state.followUp === 'requested' ? { kind: 'alreadyRequested' } : { kind: 'requestFollowUp' };
  // A follow-up already waited out its window; it must run (it may be the very item `queued` refers to).
  if (!msg.isFollowUp && state.lastSuccessStartedAt !== undefined && now - state.lastSuccessStartedAt < windowMs) {
    const delayMs = state.lastSuccessStartedAt + windowMs - now;
    // The promiser's own message back again (it died between promising and queueing): queue it again.
    if (state.followUp === 'queued' && state.followUpBy !== msg.id) return { kind: 'alreadyRequested' };
    return { kind: 'defer', delayMs };
  }
  return { kind: 'claim', takeover: state.running };
}

/** Row key of a target: ARM ids are case-insensitive and hold characters a row key may not. */
export function targetKey(target: string): string {
  return createHash('sha256').update(target.trim().toLowerCase(), 'utf8').digest('hex');
}

interface Entity {
  partitionKey: string;
  rowKey: string;
  target: string;
  running: boolean;
  claimId: string;
  runStartedAt: string;
  leaseUntil: string;
  lastSuccessStartedAt: string;
  followUp: string;
  followUpId: string;
  followUpBy: string;
  runs: number;
  lastOutcome: string;
  lastError: string;
  lastFinishedAt: string;
}

const iso = (t: number | undefined): string => (t === undefined ? '' : new Date(t).toISOString());
const ms = (s: unknown): number | undefined => {
  if (typeof s !== 'string' || s === '') return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function statusCode(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Thrown when another writer changed the entity first; the caller re-reads and decides again. */
export class ConflictError extends Error {
  constructor() {
    super('The target state changed concurrently');
    this.name = 'ConflictError';
  }
}

/** The table behind {@link TargetState}: read, create and replace with ETag checks. */
export class TargetStateStore {
  constructor(private readonly table: TableClient) {}

  private ensured: Promise<void> | undefined;

  /** Creates the table once per process (409 "already exists" is fine). */
  ensureTable(): Promise<void> {
    this.ensured ??= this.table.createTable().catch((err: unknown) => {
      this.ensured = undefined;
      throw err;
    });
    return this.ensured;
  }

  async read(capability: CapabilityName, target: string): Promise<StoredState | undefined> {
    await this.ensureTable();
    try {
      const e = await this.table.getEntity<Omit<Entity, 'partitionKey' | 'rowKey'>>(capability, targetKey(target));
      const followUp = e.followUp === 'requested' || e.followUp === 'queued' ? e.followUp : 'none';
      return {
        etag: e.etag,
        state: {
          target: str(e.target) || target,
          running: e.running === true,
          claimId: str(e.claimId),
          runStartedAt: ms(e.runStartedAt),
          leaseUntil: ms(e.leaseUntil),
          lastSuccessStartedAt: ms(e.lastSuccessStartedAt),
          followUp,
          followUpId: str(e.followUpId),
          followUpBy: str(e.followUpBy),
          runs: typeof e.runs === 'number' ? e.runs : 0,
          lastOutcome: str(e.lastOutcome),
          lastError: str(e.lastError),
          lastFinishedAt: ms(e.lastFinishedAt),
        },
      };
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /** Creates (no etag) or replaces (etag must match) the entity; throws {@link ConflictError} on a race. */
  async write(capability: CapabilityName, state: TargetState, etag: string | undefined): Promise<void> {
    const entity: Entity = {
      partitionKey: capability,
      rowKey: targetKey(state.target),
      target: state.target,
      running: state.running,
      claimId: state.claimId,
      runStartedAt: iso(state.runStartedAt),
      leaseUntil: iso(state.leaseUntil),
      lastSuccessStartedAt: iso(state.lastSuccessStartedAt),
      followUp: state.followUp,
      followUpId: state.followUpId,
      followUpBy: state.followUpBy,
      runs: state.runs,
      lastOutcome: state.lastOutcome,
      // Error texts are already redacted by the pipeline; keep the entity small.
      lastError: state.lastError.slice(0, 1024),
      lastFinishedAt: iso(state.lastFinishedAt),
    };
    await this.ensureTable();
    try {
      if (etag === undefined) await this.table.createEntity(entity);
      else await this.table.updateEntity(entity, 'Replace', { etag });
    } catch (err) {
      const s = statusCode(err);
      if (s === 409 || s === 412) throw new ConflictError();
      throw err;
    }
  }
}

export function emptyState(target: string): TargetState {
  return {
    target,
    running: false,
    claimId: '',
    runStartedAt: undefined,
    leaseUntil: undefined,
    lastSuccessStartedAt: undefined,
    followUp: 'none',
    followUpId: '',
    followUpBy: '',
    runs: 0,
    lastOutcome: '',
    lastError: '',
    lastFinishedAt: undefined,
  };
}
