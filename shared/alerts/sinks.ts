/**
 * The three alert sinks behind one small port. Each takes a redacted finding, builds its payload with
 * the pure builders in `format.ts`, and sends it; a failure is thrown and the alerter records it for
 * that sink alone. Sinks never log the webhook URL (it carries a signature) or a payload.
 */
import type { AzureClients } from '../azure/clients';
import type { Finding } from '../capability';
import type { AlertsPolicy } from '../policy';
import { redact } from '../redact';
import { toAdaptiveCardMessage, toCloudEvent, toMail, toSlackMessage, type AlertMeta } from './format';

export type SinkName = 'eventGrid' | 'webhook' | 'mail';

/** One place an alert goes. `send` throws when the alert did not arrive. */
export interface AlertSink {
  readonly name: SinkName;
  /** False when this sink has nobody to send this finding to (e.g. mail with no recipients). */
  accepts(finding: Finding): boolean;
  send(finding: Finding, meta: AlertMeta, signal: AbortSignal): Promise<void>;
}

/** A sink failure with a message that is safe to log and to return. */
export class AlertSinkError extends Error {
  constructor(
    readonly sink: SinkName,
    message: string,
    readonly status?: number,
  ) {
    super(redact(message));
    this.name = 'AlertSinkError';
  }
}

/** Publishes CloudEvents 1.0 to an Event Grid topic with the app's identity (EventGrid Data Sender). */
export function eventGridSink(clients: Pick<AzureClients, 'eventGrid'>, topicUrl: string): AlertSink {
  return {
    name: 'eventGrid',
    accepts: () => true,
    async send(finding, meta, signal) {
      const client = await clients.eventGrid(topicUrl);
      const ce = toCloudEvent(finding, meta);
      await client.send(
        [{ id: ce.id, source: ce.source, type: ce.type, subject: ce.subject, time: meta.time, datacontenttype: ce.datacontenttype, data: ce.data }],
        { abortSignal: signal },
      );
    },
  };
}

export type WebhookFormat = 'teams' | 'slack';

/**
 * Slack incoming webhooks live on `hooks.slack.com` and refuse Teams cards, so such a URL always gets
 * Slack's format; any other URL gets the policy's `webhookFormat` (default Teams/Workflows).
 */
export function webhookFormatFor(url: string, configured: WebhookFormat): WebhookFormat {
  try {
    const host = new URL(url).hostname.toLowerCase();
    if (host === 'hooks.slack.com' || host.endsWith('.slack.com')) return 'slack';
  } catch {
    return configured;
  }
  return configured;
}

export interface WebhookOptions {
  fetch?: typeof fetch;
  /** One retry after a 429/5xx/network failure, waiting Retry-After up to this many ms. */
  maxRetryDelayMs?: number;
}

function retryDelayMs(res: Response | undefined, cap: number): number {
  const ra = res?.headers.get('retry-after');
  const seconds = ra === null || ra === undefined ? NaN : Number(ra);
  const wanted = Number.isFinite(seconds) ? seconds * 1000 : 200;
  return Math.max(0, Math.min(wanted, cap));
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('aborted'));
    }, { once: true });
  });
}

/**
 * Posts to a chat webhook: Teams Workflows (Adaptive Card message, answers 202) or Slack-compatible
 * incoming webhooks (answers 200). Teams accepts any body and fails later, so the card is built to the
 * documented shape here rather than trusted to the receiver's answer.
 */
export function webhookSink(url: string, format: WebhookFormat, options: WebhookOptions = {}): AlertSink {
  const doFetch = options.fetch ?? fetch;
  const cap = options.maxRetryDelayMs ?? 2000;
  const fmt = webhookFormatFor(url, format);
  return {
    name: 'webhook',
    accepts: () => true,
    async send(finding, meta, signal) {
      const body = JSON.stringify(fmt === 'slack' ? toSlackMessage(finding, meta) : toAdaptiveCardMessage(finding, meta));
      let lastError = 'no attempt';
      for (let attempt = 0; attempt < 2; attempt++) {
        let res: Response | undefined;
        try {
          res = await doFetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, signal, redirect: 'error' });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) return;
          lastError = `The ${fmt} webhook answered ${res.status}`;
          if (res.status !== 429 && res.status < 500) throw new AlertSinkError('webhook', lastError, res.status);
        } catch (err) {
          if (err instanceof AlertSinkError || signal.aborted) throw err instanceof AlertSinkError ? err : new AlertSinkError('webhook', `The ${fmt} webhook did not answer in time`);
          // fetch puts the URL nowhere in its message, but its cause may name the host: keep only the code.
          const code = (err as { cause?: { code?: unknown } }).cause?.code;
          lastError = `The ${fmt} webhook could not be reached${typeof code === 'string' ? ` (${code})` : ''}`;
        }
        if (attempt === 0) await wait(retryDelayMs(res, cap), signal).catch(() => undefined);
        if (signal.aborted) break;
      }
      throw new AlertSinkError('webhook', lastError);
    },
  };
}

/** Lower-cased, de-duplicated addresses that look like mail addresses. */
export function mailRecipients(policyTo: readonly string[], owners: readonly string[] | undefined): string[] {
  const out = new Map<string, string>();
  for (const a of [...policyTo, ...(owners ?? [])]) {
    const t = a.trim();
    if (/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(t) && !out.has(t.toLowerCase())) out.set(t.toLowerCase(), t);
  }
  return [...out.values()];
}

/**
 * Mail through Graph `POST /users/{from}/sendMail` (application permission Mail.Send) to the policy's
 * addresses and, with `notifyOwners`, to the finding's `notify` addresses (e.g. an app's owners).
 */
export function mailSink(clients: Pick<AzureClients, 'graph'>, mail: NonNullable<AlertsPolicy['mail']>): AlertSink {
  const recipients = (f: Finding): string[] => mailRecipients(mail.to, mail.notifyOwners ? f.notify : undefined);
  return {
    name: 'mail',
    accepts: (f) => recipients(f).length > 0,
    async send(finding, meta, signal) {
      const graph = await clients.graph();
      await graph
        .api(`/users/${encodeURIComponent(mail.from)}/sendMail`)
        .option('signal', signal)
        .post(toMail(finding, meta, recipients(finding)));
    },
  };
}

/** The sinks the policy configures, in a fixed order. */
export function sinksFromPolicy(alerts: AlertsPolicy, clients: Pick<AzureClients, 'eventGrid' | 'graph'>, options: WebhookOptions = {}): AlertSink[] {
  const sinks: AlertSink[] = [];
  if (alerts.eventGridTopic) sinks.push(eventGridSink(clients, alerts.eventGridTopic));
  if (alerts.webhookUrl) sinks.push(webhookSink(alerts.webhookUrl, alerts.webhookFormat, options));
  if (alerts.mail) sinks.push(mailSink(clients, alerts.mail));
  return sinks;
}
