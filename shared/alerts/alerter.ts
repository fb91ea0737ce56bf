/**
 * The alerter: redacts each finding, de-duplicates it per sink within `repeatHours` (state in the
 * StateStore, claimed with ETags so two instances do not both send), and sends it to every configured
 * sink at once. A failing or slow sink is logged and reported for itself; it never blocks the other
 * sinks, and `send` never throws, so alerting can never fail a reconcile.
 */
import type { Finding } from '../capability';
import type { Clock } from '../clock';
import { mapSettled } from '../concurrency';
import type { Logger } from '../logging';
import type { AlertDelivery, Alerter } from '../ports/alerts';
import { ConcurrencyError, type StateStore } from '../ports/state';
import { redact, redactValue } from '../redact';
import { uuidV5 } from '../uuid';
import { findingHash, findingKey } from './fingerprint';
import type { AlertMeta } from './format';
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

const MAX_RACES = 5;

export class DedupingAlerter implements Alerter {
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  constructor(
    private readonly deps: AlerterDeps,
    options: AlerterOptions = {},
  ) {
    this.timeoutMs = options.sinkTimeoutMs ?? 15_000;
    this.concurrency = options.concurrency ?? 4;
  }

  async send(findings: Finding[]): Promise<AlertDelivery[]> {
    if (this.deps.sinks.length === 0 || findings.length === 0) return [];
    // The same finding twice in one batch is one alert.
    const unique = new Map<string, Finding>();
    for (const f of findings) {
      const safe = redactValue(f);
      unique.set(`${findingKey(safe)}:${findingHash(safe)}`, safe);
    }
    const results = await mapSettled([...unique.values()], this.concurrency, (f) => this.sendOne(f));
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

  private async sendOne(f: Finding): Promise<AlertDelivery[]> {
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
}
