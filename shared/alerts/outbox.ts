/**
 * The alert outbox: a delivery that failed at a sink is kept in the StateStore until it arrives, so an
 * alert about something that happens once (a rotation, a fix made in the same run) is not lost when a
 * sink is down at that moment. One entry per sink and alert content (type, subject, hash); each is
 * retried with exponential backoff and removed only once delivered or, after `maxAgeMs`, with an error
 * in the log. Entries are claimed with ETags, so two instances do not retry the same one at once.
 */
import type { Finding } from '../capability';
import { ConcurrencyError, type StateStore } from '../ports/state';
import type { SinkName } from './sinks';

/** StateStore partition of alerts waiting for a sink. */
export const ALERT_OUTBOX_PARTITION = 'alerts-outbox';

export interface OutboxEntry {
  sink: SinkName;
  /** The finding as the sink must receive it (already redacted). */
  finding: Finding;
  /** `findingKey` and `findingHash` of the finding (the de-duplication mark it belongs to). */
  key: string;
  hash: string;
  /** The alert id and time of the first attempt, so every retry is the same event for the receiver. */
  alertId: string;
  time: string;
  /** When the first delivery failed; the entry is dropped (logged as an error) `maxAgeMs` after it. */
  createdAt: string;
  /** Failed deliveries so far. */
  attempts: number;
  nextAttemptAt: string;
  /** While an attempt is in flight: until when it belongs to the instance that claimed it. */
  leaseUntil?: string;
  lastError?: string;
}

export interface OutboxPolicy {
  /** Wait after the first failure; doubles with each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  maxAgeMs: number;
}

export const OUTBOX_DEFAULTS: Readonly<OutboxPolicy & { batch: number }> = {
  baseDelayMs: 30_000,
  maxDelayMs: 3600_000,
  maxAgeMs: 7 * 24 * 3600_000,
  batch: 50,
};

const MAX_RACES = 5;

/** Row key of the entry for one sink and one alert content. */
export function outboxKey(sink: SinkName, key: string, hash: string): string {
  return `${sink}|${key}|${hash}`;
}

/** Wait before the next try after `attempts` failures: base · 2^(attempts−1), capped. */
export function backoffMs(attempts: number, policy: Pick<OutboxPolicy, 'baseDelayMs' | 'maxDelayMs'>): number {
  const exp = Math.min(Math.max(attempts, 1) - 1, 30);
  return Math.min(policy.baseDelayMs * 2 ** exp, policy.maxDelayMs);
}

/** What the flush does with an entry now. */
export type OutboxDecision = 'expired' | 'leased' | 'waiting' | 'due';

/** Pure: expired first (it is dropped even while leased), then an attempt in flight, then backoff. */
export function decideEntry(e: OutboxEntry, now: number, maxAgeMs: number, ignoreBackoff: boolean): OutboxDecision {
  const created = Date.parse(e.createdAt);
  if (!Number.isNaN(created) && now - created >= maxAgeMs) return 'expired';
  const lease = e.leaseUntil === undefined ? NaN : Date.parse(e.leaseUntil);
  if (!Number.isNaN(lease) && lease > now) return 'leased';
  const next = Date.parse(e.nextAttemptAt);
  if (!ignoreBackoff && !Number.isNaN(next) && next > now) return 'waiting';
  return 'due';
}

/** The StateStore side of the outbox; every method may throw what the store throws. */
export class AlertOutbox {
  constructor(
    private readonly state: StateStore,
    private readonly policy: OutboxPolicy,
  ) {}

  /**
   * Records a failed delivery: a new entry, or one more failure of the same alert (its first
   * failure time is kept, so the age limit counts from then).
   */
  async recordFailure(input: Omit<OutboxEntry, 'createdAt' | 'attempts' | 'nextAttemptAt' | 'leaseUntil'>, now: Date): Promise<OutboxEntry> {
    const rowKey = outboxKey(input.sink, input.key, input.hash);
    for (let race = 0; race < MAX_RACES; race++) {
      const cur = await this.state.get<OutboxEntry>(ALERT_OUTBOX_PARTITION, rowKey);
      const attempts = (cur?.value.attempts ?? 0) + 1;
      const entry: OutboxEntry = {
        ...input,
        ...(cur ? { alertId: cur.value.alertId, time: cur.value.time } : {}),
        createdAt: cur?.value.createdAt ?? now.toISOString(),
        attempts,
        nextAttemptAt: new Date(now.getTime() + backoffMs(attempts, this.policy)).toISOString(),
      };
      try {
        await this.state.put(ALERT_OUTBOX_PARTITION, rowKey, entry, cur ? { etag: cur.etag } : { create: true });
        return entry;
      } catch (err) {
        if (!(err instanceof ConcurrencyError)) throw err;
      }
    }
    throw new ConcurrencyError('The alert outbox entry kept changing');
  }

  async list(): Promise<Array<{ rowKey: string; etag: string; entry: OutboxEntry }>> {
    const rows = await this.state.list<OutboxEntry>(ALERT_OUTBOX_PARTITION);
    return rows.map((r) => ({ rowKey: r.key, etag: r.etag, entry: r.value }));
  }

  /**
   * Takes an entry for one attempt: counts it, pushes its next try out by the backoff (in case this
   * instance dies mid-attempt) and leases it. Undefined when another instance changed it first.
   */
  async claim(rowKey: string, etag: string, entry: OutboxEntry, now: Date, leaseMs: number): Promise<{ etag: string; entry: OutboxEntry } | undefined> {
    const attempts = entry.attempts + 1;
    const next: OutboxEntry = {
      ...entry,
      attempts,
      nextAttemptAt: new Date(now.getTime() + backoffMs(attempts, this.policy)).toISOString(),
      leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
    };
    try {
      return { etag: await this.state.put(ALERT_OUTBOX_PARTITION, rowKey, next, { etag }), entry: next };
    } catch (err) {
      if (err instanceof ConcurrencyError) return undefined;
      throw err;
    }
  }

  /** After a failed attempt: ends the lease and keeps the (redacted) reason. */
  async release(rowKey: string, etag: string, entry: OutboxEntry, error: string): Promise<void> {
    const { leaseUntil: _lease, ...rest } = entry;
    try {
      await this.state.put(ALERT_OUTBOX_PARTITION, rowKey, { ...rest, lastError: error }, { etag });
    } catch (err) {
      // Someone recorded a newer failure of the same alert meanwhile: theirs stands.
      if (!(err instanceof ConcurrencyError)) throw err;
    }
  }

  /** Removes a delivered (or expired) entry. */
  async remove(rowKey: string): Promise<void> {
    await this.state.delete(ALERT_OUTBOX_PARTITION, rowKey);
  }
}
