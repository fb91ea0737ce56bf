/**
 * Alerts (SPEC §5): findings from every capability and the work pipeline go to the Event Grid topic
 * (CloudEvents 1.0 with the app's identity), the chat webhook (Teams/Workflows Adaptive Card, or
 * Slack) and mail through Graph, de-duplicated per finding within `repeatHours`.
 */
import type { AzureClients } from '../azure/clients';
import type { Clock } from '../clock';
import type { Logger } from '../logging';
import type { Policy } from '../policy';
import type { Alerter } from '../ports/alerts';
import type { StateStore } from '../ports/state';
import { registerSecret } from '../redact';
import { DedupingAlerter, type AlerterOptions } from './alerter';
import { sinksFromPolicy, type AlertSink, type WebhookOptions } from './sinks';

export { ALERT_STATE_PARTITION, DedupingAlerter, type AlertMark, type AlerterDeps, type AlerterOptions } from './alerter';
export { ALERT_OUTBOX_PARTITION, AlertOutbox, backoffMs, decideEntry, OUTBOX_DEFAULTS, outboxKey, type OutboxDecision, type OutboxEntry, type OutboxPolicy } from './outbox';
export { findingHash, findingKey, stableStringify } from './fingerprint';
export {
  ALERT_SOURCE, alertTitle, toAdaptiveCardMessage, toCloudEvent, toMail, toSlackMessage,
  type AlertCloudEvent, type AlertData, type AlertMeta, type SendMailBody,
} from './format';
export {
  AlertSinkError, eventGridSink, mailRecipients, mailSink, sinksFromPolicy, webhookFormatFor, webhookSink,
  type AlertSink, type SinkName, type WebhookFormat, type WebhookOptions,
} from './sinks';

export interface CreateAlerterDeps {
  policy: Pick<Policy, 'alerts'>;
  clients: Pick<AzureClients, 'eventGrid' | 'graph'>;
  state: StateStore;
  clock: Clock;
  logger: Logger;
}

export interface CreateAlerterOptions extends AlerterOptions, WebhookOptions {
  /** Replaces the sinks the policy configures (tests of the de-duplication). */
  sinks?: readonly AlertSink[];
}

/**
 * The production alerter: the sinks the policy's `alerts` section configures, de-duplicated through
 * the StateStore.
 * @example const alerter = createAlerter({ policy, clients, state, clock: systemClock, logger });
 */
export function createAlerter(deps: CreateAlerterDeps, options: CreateAlerterOptions = {}): Alerter {
  // The webhook URL carries its own signature: mask it wherever it might surface.
  registerSecret(deps.policy.alerts.webhookUrl);
  const sinks = options.sinks ?? sinksFromPolicy(deps.policy.alerts, deps.clients, options);
  return new DedupingAlerter(
    { sinks, repeatHours: deps.policy.alerts.repeatHours, state: deps.state, clock: deps.clock, logger: deps.logger.child({ component: 'alerts' }) },
    options,
  );
}
