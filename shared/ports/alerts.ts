import type { Finding } from '../capability';

/** How one alert fared at one sink. */
export interface AlertDelivery {
  sink: string;
  type: string;
  subject: string;
  outcome: 'sent' | 'suppressed' | 'failed';
  error?: string;
}

/** What one pass over the outbox of failed deliveries did. */
export interface OutboxFlushReport {
  /** Queued alerts that reached their sink now. */
  delivered: number;
  /** Queued alerts whose sink failed again (they stay queued). */
  failed: number;
  /** Queued alerts given up on (too old, or their sink is gone), each logged as an error. */
  dropped: number;
  /** Alerts still queued after the pass. */
  pending: number;
}

/**
 * Sends findings to the configured sinks, de-duplicated per finding within `repeatHours` (unless the
 * finding changed). A failing sink never blocks the others, and `send` never throws. A delivery that
 * failed is kept and retried (with backoff) on later calls until it arrives, so a finding that comes
 * up only once is not lost to a sink that was down at the time.
 */
export interface Alerter {
  send(findings: Finding[]): Promise<AlertDelivery[]>;
  /**
   * Retries the queued failed deliveries now, whatever their backoff (bounded per call); for a
   * periodic caller such as the sweep. Never throws.
   */
  flushOutbox(): Promise<OutboxFlushReport>;
}

/** Keeps findings in memory (unit tests of use cases). */
export class MemoryAlerter implements Alerter {
  readonly sent: Finding[] = [];
  /** How often {@link flushOutbox} was called. */
  flushes = 0;
  async send(findings: Finding[]): Promise<AlertDelivery[]> {
    this.sent.push(...findings);
    return findings.map((f) => ({ sink: 'memory', type: f.type, subject: f.subject, outcome: 'sent' as const }));
  }
  async flushOutbox(): Promise<OutboxFlushReport> {
    this.flushes++;
    return { delivered: 0, failed: 0, dropped: 0, pending: 0 };
  }
}
