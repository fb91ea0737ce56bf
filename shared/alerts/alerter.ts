/**
 * The alerter: redacts each finding, de-duplicates it per sink within `repeatHours` (state in the
 * StateStore, claimed with ETags so two instances do not both send), and sends it to every configured
 * sink at once. A failing or slow sink is logged and reported for itself; it never blocks the other
 * sinks, and `send` never throws, so alerting can never fail a reconcile. A failed delivery goes to the
 * outbox (`outbox.ts`) and is retried by later calls until it arrives: the finding may never come up
 * again (a rotation, a fix made in the same run), so waiting for it to recur would lose it.
 */
import type { Finding } from '../capability';
import type { Clock } from '../clock';
import { mapSettled } from '../concurrency';
import type { Logger } from '../logging';
import type { AlertDelivery, Alerter, OutboxFlushReport } from '../ports/alerts';
import { ConcurrencyError, type StateStore } from '../ports/state';
import { redact, redactValue } from '../redact';
import { uuidV5 } from '../uuid';
import { findingHash, findingKey } from './fingerprint';
import type { AlertMeta } from './format';
import { AlertOutbox, decideEntry, OUTBOX_DEFAULTS, outboxKey, type OutboxEntry, type OutboxPolicy } from './outbox';
import type { AlertSink, SinkName } from './sinks';

/** StateStore partition of the de-duplication marks. */
export const ALERT_STATE_PARTITION = 'alerts';

/** What is remembered per (type, subject): the content hash and when each sink last received it. */
export interface AlertMark {
  type: string;
  subject: string;
  hash: string;
  /** Sink name → ISO time it last received this hash. */
  sent: Partial<Record<SinkName, string>>;
}

export interface AlerterOptions {
  /** Longest a sink may take for one alert before it counts as failed. */
  sinkTimeoutMs?: number;
  /** Findings alerted in parallel. */
  concurrency?: number;
  /** Backoff, age limit and per-call bound of the retries of failed deliveries. */
  outbox?: Partial<OutboxPolicy & { batch: number }>;
}

export interface AlerterDeps {
  sinks: readonly AlertSink[];
  /** 0 sends every time. */
  repeatHours: number;
  state: StateStore;
  clock: Clock;
  logger: Logger;
}

interface Claim {
  toSend: AlertSink[];
  suppressed: AlertSink[];
  /** True when the marks were written (so failed sinks must be released again). */
  stored: boolean;
}

interface OutboxRow {
  rowKey: string;
  etag: string;
  entry: OutboxEntry;
}

type RetryOutcome = 'delivered' | 'failed' | 'dropped' | 'skipped';

/** One pass over the outbox: its report, and the entries known to wait still (by row key). */
interface FlushResult {
  report: OutboxFlushReport;
  pending: Set<string>;
}

const MAX_RACES = 5;

export class DedupingAlerter implements Alerter {
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly outboxPolicy: OutboxPolicy & { batch: number };
  private readonly outbox: AlertOutbox;
  constructor(
    private readonly deps: AlerterDeps,
    options: AlerterOptions = {},
  ) {
    this.timeoutMs = options.sinkTimeoutMs ?? 15_000;
    this.concurrency = options.concurrency ?? 4;
    this.outboxPolicy = { ...OUTBOX_DEFAULTS, ...options.outbox };
    this.outbox = new AlertOutbox(deps.state, this.outboxPolicy);
  }

  async flushOutbox(): Promise<OutboxFlushReport> {
    return (await this.flush(true)).report;
  }

  async send(findings: Finding[]): Promise<AlertDelivery[]> {
    if (this.deps.sinks.length === 0) return [];
    // Earlier failed deliveries that are due go first: delivered now, they mark their finding as sent,
    // so the same finding in this batch is not sent twice.
    const { pending } = await this.flush(false);
    if (findings.length === 0) return [];
    // The same finding twice in one batch is one alert.
    const unique = new Map<string, Finding>();
    for (const f of findings) {
      const safe = redactValue(f);
      unique.set(`${findingKey(safe)}:${findingHash(safe)}`, safe);
    }
    const results = await mapSettled([...unique.values()], this.concurrency, (f) => this.sendOne(f, pending));
    const out: AlertDelivery[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') out.push(...r.value);
      else {
        // sendOne catches everything it expects; this is a bug guard so `send` still never throws.
        const f = [...unique.values()][i] as Finding;
        this.deps.logger.error('Alerting failed unexpectedly', { type: f.type, subject: f.subject, error: r.reason });
        out.push({ sink: 'alerter', type: f.type, subject: f.subject, outcome: 'failed', error: redact(String(r.reason)) });
      }
    });
    return out;
  }

  private async sendOne(f: Finding, pending: ReadonlySet<string>): Promise<AlertDelivery[]> {
    const sinks = this.deps.sinks.filter((s) => s.accepts(f));
    if (sinks.length === 0) return [];
    const key = findingKey(f);
    const hash = findingHash(f);
    const now = this.deps.clock.now();
    const claim = await this.claim(f, key, hash, sinks, now);
    const meta: AlertMeta = { id: uuidV5(`${key}|${hash}|${now.toISOString()}`), time: now };
    const log = this.deps.logger.child({ alertType: f.type, subject: f.subject, severity: f.severity });

    const deliveries: AlertDelivery[] = claim.suppressed.map((s) => ({ sink: s.name, type: f.type, subject: f.subject, outcome: 'suppressed' as const }));
    const sent = await Promise.allSettled(claim.toSend.map((s) => this.deliver(s, f, meta)));
    const failed: SinkName[] = [];
    sent.forEach((r, i) => {
      const sink = claim.toSend[i] as AlertSink;
      if (r.status === 'fulfilled') {
        log.info(`Sent alert to ${sink.name}`, { sink: sink.name, alertId: meta.id });
        deliveries.push({ sink: sink.name, type: f.type, subject: f.subject, outcome: 'sent' });
      } else {
        const message = redact(r.reason instanceof Error ? r.reason.message : String(r.reason));
        log.warn(`Alert sink ${sink.name} failed`, { sink: sink.name, alertId: meta.id, error: message });
        failed.push(sink.name);
        deliveries.push({ sink: sink.name, type: f.type, subject: f.subject, outcome: 'failed', error: message });
      }
    });
    if (claim.suppressed.length > 0) log.debug('Suppressed repeated alert', { sinks: claim.suppressed.map((s) => s.name) });
    if (failed.length > 0 && claim.stored) await this.release(key, hash, failed, now.toISOString());
    const errors = new Map(deliveries.filter((d) => d.outcome === 'failed').map((d) => [d.sink, d.error ?? 'failed']));
    await Promise.all([
      ...failed.map((sink) => this.enqueueFailure(f, sink, key, hash, meta, errors.get(sink) ?? 'failed', now)),
      // Delivered afresh: a queued copy of the same alert for that sink is done with.
      ...deliveries
        .filter((d) => d.outcome === 'sent' && pending.has(outboxKey(d.sink as SinkName, key, hash)))
        .map((d) => this.removeQueued(outboxKey(d.sink as SinkName, key, hash), log)),
    ]);
    // In the configured sink order, whatever finished first.
    const order = sinks.map((s) => s.name as string);
    return deliveries.sort((a, b) => order.indexOf(a.sink) - order.indexOf(b.sink));
  }

  private async deliver(sink: AlertSink, f: Finding, meta: AlertMeta): Promise<void> {
    const ctrl = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctrl.abort();
        reject(new Error(`${sink.name} did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      // The race guards clients that ignore the abort signal (the sink may finish in the background).
      await Promise.race([sink.send(f, meta, ctrl.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Decides per sink whether this finding is due and marks the due sinks as sent, in one conditional
   * write. Losing a race re-reads and decides again; storage trouble sends without de-duplication
   * (a repeated alert is better than a lost one).
   */
  private async claim(f: Finding, key: string, hash: string, sinks: AlertSink[], now: Date): Promise<Claim> {
    if (this.deps.repeatHours <= 0) return { toSend: sinks, suppressed: [], stored: false };
    const windowMs = this.deps.repeatHours * 3600_000;
    try {
      for (let race = 0; race < MAX_RACES; race++) {
        const cur = await this.deps.state.get<AlertMark>(ALERT_STATE_PARTITION, key);
        const same = cur?.value.hash === hash ? cur.value.sent : {};
        const due = (s: AlertSink): boolean => {
          const at = same[s.name];
          if (at === undefined) return true;
          const t = Date.parse(at);
          return Number.isNaN(t) || now.getTime() - t >= windowMs || t > now.getTime() + windowMs;
        };
        const toSend = sinks.filter(due);
        const suppressed = sinks.filter((s) => !due(s));
        if (toSend.length === 0) return { toSend, suppressed, stored: false };
        const sent: AlertMark['sent'] = { ...same };
        for (const s of toSend) sent[s.name] = now.toISOString();
        const mark: AlertMark = { type: f.type, subject: f.subject, hash, sent };
        try {
          await this.deps.state.put(ALERT_STATE_PARTITION, key, mark, cur ? { etag: cur.etag } : { create: true });
          return { toSend, suppressed, stored: true };
        } catch (err) {
          if (!(err instanceof ConcurrencyError)) throw err;
        }
      }
      this.deps.logger.warn('Alert de-duplication lost too many races; sending anyway', { alertType: f.type, subject: f.subject });
    } catch (err) {
      this.deps.logger.warn('Alert de-duplication state unavailable; sending without it', { alertType: f.type, subject: f.subject, error: err });
    }
    return { toSend: sinks, suppressed: [], stored: false };
  }

  /** Forgets the marks of sinks that failed, so the next reconcile tries them again. */
  private async release(key: string, hash: string, failed: SinkName[], claimedAt: string): Promise<void> {
    try {
      for (let race = 0; race < MAX_RACES; race++) {
        const cur = await this.deps.state.get<AlertMark>(ALERT_STATE_PARTITION, key);
        if (!cur || cur.value.hash !== hash) return;
        const sent = { ...cur.value.sent };
        let changed = false;
        for (const s of failed) {
          if (sent[s] === claimedAt) {
            delete sent[s];
            changed = true;
          }
        }
        if (!changed) return;
        try {
          await this.deps.state.put(ALERT_STATE_PARTITION, key, { ...cur.value, sent }, { etag: cur.etag });
          return;
        } catch (err) {
          if (!(err instanceof ConcurrencyError)) throw err;
        }
      }
    } catch (err) {
      this.deps.logger.warn('Could not release the alert marks of failed sinks', { error: err, sinks: failed });
    }
  }

  /** Keeps a failed delivery for retry; if even that fails, the release above is the fallback. */
  private async enqueueFailure(f: Finding, sink: SinkName, key: string, hash: string, meta: AlertMeta, error: string, now: Date): Promise<void> {
    try {
      const e = await this.outbox.recordFailure({ sink, finding: f, key, hash, alertId: meta.id, time: meta.time.toISOString(), lastError: error }, now);
      this.deps.logger.info(`Alert for ${sink} queued for retry`, { sink, alertType: f.type, subject: f.subject, attempts: e.attempts, nextAttemptAt: e.nextAttemptAt });
    } catch (err) {
      this.deps.logger.error(`Could not queue the failed alert for ${sink}; it is sent again only if the finding comes up again`, {
        sink, alertType: f.type, subject: f.subject, error: err,
      });
    }
  }

  private async removeQueued(rowKey: string, log: Logger): Promise<void> {
    try {
      await this.outbox.remove(rowKey);
    } catch (err) {
      log.warn('Could not remove a delivered alert from the outbox; it may be sent once more', { error: err });
    }
  }

  /**
   * One pass over the outbox: drops what is too old (logged as an error), retries what is due (all
   * of it with `ignoreBackoff`), oldest first, at most `batch` entries. A sink that fails once is not
   * tried again in the same pass. Never throws.
   */
  private async flush(ignoreBackoff: boolean): Promise<FlushResult> {
    const report: OutboxFlushReport = { delivered: 0, failed: 0, dropped: 0, pending: 0 };
    const pending = new Set<string>();
    const log = this.deps.logger;
    let rows: OutboxRow[];
    try {
      rows = await this.outbox.list();
    } catch (err) {
      log.warn('Alert outbox unavailable; queued alerts wait for a later try', { error: err });
      return { report, pending };
    }
    if (rows.length === 0) return { report, pending };
    const nowMs = this.deps.clock.now().getTime();
    const expired: OutboxRow[] = [];
    const due: OutboxRow[] = [];
    for (const r of rows) {
      pending.add(r.rowKey);
      const d = decideEntry(r.entry, nowMs, this.outboxPolicy.maxAgeMs, ignoreBackoff);
      if (d === 'expired') expired.push(r);
      else if (d === 'due') due.push(r);
    }
    due.sort((a, b) => a.entry.nextAttemptAt.localeCompare(b.entry.nextAttemptAt));
    const dropNow = expired.slice(0, this.outboxPolicy.batch);
    const tryNow = due.slice(0, Math.max(0, this.outboxPolicy.batch - dropNow.length));
    for (const r of dropNow) {
      if (await this.drop(r, `it was not delivered within ${Math.round(this.outboxPolicy.maxAgeMs / 3600_000)} hours`)) {
        report.dropped++;
        pending.delete(r.rowKey);
      }
    }
    // Per sink, one alert probes it first; only if the sink takes it do the rest follow, in parallel.
    const bySink = new Map<SinkName, OutboxRow[]>();
    for (const r of tryNow) bySink.set(r.entry.sink, [...(bySink.get(r.entry.sink) ?? []), r]);
    const broken = new Set<SinkName>();
    const tally = (r: OutboxRow, outcome: RetryOutcome): void => {
      if (outcome === 'delivered' || outcome === 'dropped') pending.delete(r.rowKey);
      if (outcome === 'delivered') report.delivered++;
      else if (outcome === 'dropped') report.dropped++;
      else if (outcome === 'failed') report.failed++;
    };
    const attempt = async (r: OutboxRow): Promise<void> => {
      try {
        tally(r, await this.retry(r, broken));
      } catch (err) {
        log.warn('Retrying a queued alert failed unexpectedly', { sink: r.entry.sink, alertType: r.entry.finding.type, subject: r.entry.finding.subject, error: err });
      }
    };
    await Promise.all(
      [...bySink.values()].map(async ([probe, ...rest]) => {
        if (probe) await attempt(probe);
        await mapSettled(rest, this.concurrency, attempt);
      }),
    );
    report.pending = pending.size;
    if (report.delivered + report.failed + report.dropped > 0) log.info('Retried queued alerts', { ...report });
    return { report, pending };
  }

  private async retry(r: OutboxRow, broken: Set<SinkName>): Promise<RetryOutcome> {
    const { entry } = r;
    const f = entry.finding;
    const sink = this.deps.sinks.find((s) => s.name === entry.sink);
    if (!sink || !sink.accepts(f)) return (await this.drop(r, `the ${entry.sink} sink no longer takes it (alert settings changed)`)) ? 'dropped' : 'skipped';
    if (broken.has(sink.name)) return 'skipped';
    const now = this.deps.clock.now();
    // The lease outlasts the sink timeout, so another instance does not retry it while this one waits.
    const claimed = await this.outbox.claim(r.rowKey, r.etag, entry, now, this.timeoutMs + 5000);
    if (!claimed) return 'skipped';
    const log = this.deps.logger.child({ alertType: f.type, subject: f.subject, severity: f.severity, sink: sink.name, alertId: entry.alertId });
    try {
      await this.deliver(sink, f, { id: entry.alertId, time: new Date(entry.time) });
    } catch (err) {
      broken.add(sink.name);
      const message = redact(err instanceof Error ? err.message : String(err));
      log.warn(`Alert sink ${sink.name} failed again; the alert stays queued`, { error: message, attempts: claimed.entry.attempts, nextAttemptAt: claimed.entry.nextAttemptAt });
      try {
        await this.outbox.release(r.rowKey, claimed.etag, claimed.entry, message);
      } catch (releaseErr) {
        log.warn('Could not record the failed retry; the alert is retried when its lease ends', { error: releaseErr });
      }
      return 'failed';
    }
    log.info(`Sent queued alert to ${sink.name}`, { attempts: claimed.entry.attempts, firstFailedAt: entry.createdAt });
    await this.removeQueued(r.rowKey, log);
    await this.markSent(entry, sink.name, now.toISOString());
    return 'delivered';
  }

  /** Gives up on a queued alert, loudly. False when it could not be removed (it is tried again later). */
  private async drop(r: OutboxRow, why: string): Promise<boolean> {
    const { entry } = r;
    this.deps.logger.error(`Dropping an alert that never reached ${entry.sink}: ${why}`, {
      sink: entry.sink, alertType: entry.finding.type, subject: entry.finding.subject, severity: entry.finding.severity, summary: entry.finding.summary,
      alertId: entry.alertId, attempts: entry.attempts, firstFailedAt: entry.createdAt, lastError: entry.lastError,
    });
    try {
      await this.outbox.remove(r.rowKey);
      return true;
    } catch (err) {
      this.deps.logger.warn('Could not remove the dropped alert from the outbox', { sink: entry.sink, error: err });
      return false;
    }
  }

  /**
   * Records a late delivery in the de-duplication mark (unless the finding has changed since), so
   * the same finding coming up again inside the window is not sent twice.
   */
  private async markSent(entry: OutboxEntry, sink: SinkName, at: string): Promise<void> {
    if (this.deps.repeatHours <= 0) return;
    try {
      for (let race = 0; race < MAX_RACES; race++) {
        const cur = await this.deps.state.get<AlertMark>(ALERT_STATE_PARTITION, entry.key);
        if (cur && cur.value.hash !== entry.hash) return;
        const mark: AlertMark = { type: entry.finding.type, subject: entry.finding.subject, hash: entry.hash, sent: { ...cur?.value.sent, [sink]: at } };
        try {
          await this.deps.state.put(ALERT_STATE_PARTITION, entry.key, mark, cur ? { etag: cur.etag } : { create: true });
          return;
        } catch (err) {
          if (!(err instanceof ConcurrencyError)) throw err;
        }
      }
    } catch (err) {
      this.deps.logger.warn('Could not mark a queued alert as sent; the finding may be sent once more', { sink, error: err });
    }
  }
}
