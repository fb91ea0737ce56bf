import type { Finding } from '../capability';

/** How one alert fared at one sink. */
export interface AlertDelivery {
  sink: string;
  type: string;
  subject: string;
  outcome: 'sent' | 'suppressed' | 'failed';
  error?: string;
}

/**
 * Sends findings to the configured sinks, de-duplicated per finding within `repeatHours` (unless the
 * finding changed). A failing sink never blocks the others, and `send` never throws.
 */
export interface Alerter {
  send(findings: Finding[]): Promise<AlertDelivery[]>;
}

/** Keeps findings in memory (unit tests of use cases). */
export class MemoryAlerter implements Alerter {
  readonly sent: Finding[] = [];
  async send(findings: Finding[]): Promise<AlertDelivery[]> {
    this.sent.push(...findings);
    return findings.map((f) => ({ sink: 'memory', type: f.type, subject: f.subject, outcome: 'sent' as const }));
  }
}
