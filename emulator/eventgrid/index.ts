/**
 * The emulator's inbound endpoints that are not resource APIs: an Event Grid custom topic (HTTPS,
 * service `eventgrid`), chat webhooks (HTTPS, service `webhook`) and the managed-identity token
 * endpoint (plain HTTP, service `msi`).
 */
export { createEventGridTopicService, type EventGridControl, type ReceivedTopicEvent, type TopicSchema } from './topic';
export { createWebhookService, type ReceivedWebhook, type WebhookControl } from './webhook';
export { createMsiService, stableGuid, type MsiIdentity, type MsiService } from './msi';
export { adaptiveCardMessageProblems, isAdaptiveCardMessage } from './adaptive-card';
