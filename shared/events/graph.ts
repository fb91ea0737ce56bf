/**
 * Microsoft Graph change notifications as they reach Warden: webhook collections
 * (`{ value: [...] }`), lifecycle notifications, and Graph events through an Event Grid partner
 * topic (CloudEvents). Schemas are lenient about extra fields (Graph adds some over time) and strict
 * about sizes. Also: the validation handshake token and a constant-time clientState comparison.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** Longest validation token answered; Graph's are ~150 characters. */
export const MAX_VALIDATION_TOKEN_LENGTH = 1024;
/** Largest notification body read (Graph batches at most a few hundred small notifications). */
export const MAX_NOTIFICATION_BODY_BYTES = 1_000_000;

const memberDeltaSchema = z
  .object({
    '@odata.type': z.string().max(256).optional(),
    id: z.string().max(128),
    // Webhook payloads have been seen with "deleted"; delta queries use { reason: "deleted" }. Accept both.
    '@removed': z.union([z.string().max(64), z.object({ reason: z.string().max(64).optional() }).loose()]).optional(),
  })
  .loose();

export const changeNotificationSchema = z
  .object({
    id: z.string().max(512).optional(),
    subscriptionId: z.string().max(128),
    subscriptionExpirationDateTime: z.string().max(64).optional(),
    clientState: z.string().max(256).nullish(),
    changeType: z.string().max(64),
    resource: z.string().max(2048),
    tenantId: z.string().max(128).optional(),
    resourceData: z
      .object({
        '@odata.type': z.string().max(256).optional(),
        '@odata.id': z.string().max(2048).optional(),
        id: z.string().max(128).optional(),
        'members@delta': z.array(memberDeltaSchema).max(10_000).optional(),
      })
      .loose()
      .nullish(),
  })
  .loose();
export type ChangeNotification = z.infer<typeof changeNotificationSchema>;

export const changeNotificationCollectionSchema = z
  .object({
    value: z.array(changeNotificationSchema).max(1000),
    validationTokens: z.array(z.string()).optional(),
  })
  .loose();
export type ChangeNotificationCollection = z.infer<typeof changeNotificationCollectionSchema>;

export const LIFECYCLE_EVENTS = ['reauthorizationRequired', 'subscriptionRemoved', 'missed'] as const;
export type LifecycleEventName = (typeof LIFECYCLE_EVENTS)[number];

export const lifecycleNotificationSchema = z
  .object({
    subscriptionId: z.string().max(128),
    subscriptionExpirationDateTime: z.string().max(64).optional(),
    tenantId: z.string().max(128).optional(),
    clientState: z.string().max(256).nullish(),
    lifecycleEvent: z.string().max(64),
  })
  .loose();
export type LifecycleNotification = z.infer<typeof lifecycleNotificationSchema>;

export const lifecycleCollectionSchema = z.object({ value: z.array(lifecycleNotificationSchema).max(1000) }).loose();

/** `data` of a partner-topic `Microsoft.Graph.Group*` / `User*` CloudEvent: the notification without envelope. */
export const graphPartnerChangeDataSchema = z
  .object({
    changeType: z.string().max(64),
    clientState: z.string().max(256).nullish(),
    resource: z.string().max(2048),
    resourceData: changeNotificationSchema.shape.resourceData,
    subscriptionId: z.string().max(128).optional(),
    subscriptionExpirationDateTime: z.string().max(64).optional(),
    tenantId: z.string().max(128).optional(),
  })
  .loose();

/** `data` of a partner-topic lifecycle CloudEvent (`Microsoft.Graph.SubscriptionReauthorizationRequired`…). */
export const graphPartnerLifecycleDataSchema = z
  .object({
    subscriptionId: z.string().max(128),
    clientState: z.string().max(256).nullish(),
    lifecycleEvent: z.string().max(64).optional(),
    resource: z.string().max(2048).optional(),
  })
  .loose();

export type ValidationRequest = { kind: 'none' } | { kind: 'token'; token: string } | { kind: 'invalid'; message: string };

/**
 * The validation handshake: Graph POSTs `?validationToken=…` (form-encoded) when a subscription is
 * created and expects the decoded token back as `text/plain` within 10 s. Read from the URL alone,
 * so it is answered without parsing the body or loading anything.
 */
export function readValidationToken(url: string): ValidationRequest {
  let params: URLSearchParams;
  try {
    params = new URL(url).searchParams;
  } catch {
    return { kind: 'none' };
  }
  let token: string | null = null;
  for (const [k, v] of params) {
    if (k.toLowerCase() === 'validationtoken') {
      token = v;
      break;
    }
  }
  if (token === null) return { kind: 'none' };
  if (token.length === 0 || token.length > MAX_VALIDATION_TOKEN_LENGTH) {
    return { kind: 'invalid', message: `validationToken must be 1–${MAX_VALIDATION_TOKEN_LENGTH} characters` };
  }
  return { kind: 'token', token };
}

/**
 * Constant-time clientState check. Both sides are hashed first so the buffers are of equal length
 * and neither the length nor a prefix of the secret leaks through timing.
 */
export function clientStateMatches(expected: string | undefined, actual: unknown): boolean {
  if (!expected || typeof actual !== 'string' || actual.length === 0) return false;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(actual, 'utf8').digest();
  return timingSafeEqual(a, b);
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The group a notification is about (`resourceData.id`, else `Groups/{id}` in `resource`), lower case; undefined for anything else. */
export function groupIdOf(n: { resource: string; resourceData?: { id?: string | undefined; '@odata.type'?: string | undefined } | null | undefined }): string | undefined {
  const m = /^\/?groups(?:\('([^']+)'\)|\/([^/?]+))/i.exec(n.resource.trim());
  const fromResource = m ? (m[1] ?? m[2]) : undefined;
  if (!m) {
    const t = n.resourceData?.['@odata.type'];
    if (!t || !/group$/i.test(t)) return undefined;
  }
  const id = n.resourceData?.id ?? fromResource;
  return id && GUID.test(id) ? id.toLowerCase() : undefined;
}

/** Text of a zod error for a 400 answer: paths and messages, never the input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
