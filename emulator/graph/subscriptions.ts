/**
 * Change-notification subscriptions (facts §3.4, §3.5): create with the real validation handshake,
 * list/get/renew/reauthorize/delete, expiry on the shared clock, and delivery of change and lifecycle
 * notifications — to webhooks through the Pusher, or to the EventBus for `EventGrid:` partner topics.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EmuClock } from '../core/clock';
import type { EventBus } from '../core/eventbus';
import type { DeliveryResult, Pusher } from '../core/push';
import type { Router } from '../core/router';
import type { EmuRequest, EmuResponse } from '../core/types';
import { badRequest, graphError, GraphHttpError, noContent, ok } from './odata';
import { wrap } from './paging';
import type { Directory, DirectoryChange } from './state';

/** Directory resources (users, groups) may live at most 41,760 minutes. */
export const MAX_DIRECTORY_EXPIRATION_MINUTES = 41760;
/** Subscriptions on groups allowed per application and tenant. */
export const GROUP_SUBSCRIPTION_QUOTA = 100;

export type LifecycleEvent = 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed';

export interface PartnerTopic {
  azureSubscriptionId: string;
  resourceGroup: string;
  partnerTopic: string;
  location: string;
}

export interface GraphSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  expirationDateTime: string;
  clientState: string | null;
  applicationId: string;
  creatorId: string;
  latestSupportedTlsVersion: string;
  /** Set when the notification URL is an Event Grid partner topic. */
  partner?: PartnerTopic;
  /** True after a `reauthorizationRequired` lifecycle event until reauthorized or renewed. */
  needsReauthorization: boolean;
}

/** A change notification the control dropped on purpose (what Warden never saw). */
export interface LostNotification {
  subscriptionId: string;
  resource: string;
  time: number;
}

const createSchema = z.object({
  changeType: z.string().min(1),
  notificationUrl: z.string().min(1),
  resource: z.string().min(1),
  expirationDateTime: z.string().min(1),
  clientState: z.string().max(128).nullable().optional(),
  lifecycleNotificationUrl: z.string().min(1).nullable().optional(),
  latestSupportedTlsVersion: z.string().optional(),
  includeResourceData: z.boolean().nullable().optional(),
});

const patchSchema = z.object({
  expirationDateTime: z.string().min(1).optional(),
  notificationUrl: z.string().min(1).optional(),
  lifecycleNotificationUrl: z.unknown().optional(),
});

type ParsedResource = { kind: 'groups' | 'users'; id?: string; sub?: 'members' | 'owners' };

function parseResource(resource: string): ParsedResource | undefined {
  const m = /^\/?(groups|users)(?:\/([^/]+)(?:\/(members|owners))?)?$/i.exec(resource.trim());
  if (!m) return undefined;
  const kind = m[1]?.toLowerCase() === 'groups' ? 'groups' : 'users';
  const out: ParsedResource = { kind };
  if (m[2]) out.id = m[2];
  if (m[3]) {
    if (kind !== 'groups') return undefined;
    out.sub = m[3].toLowerCase() === 'members' ? 'members' : 'owners';
  }
  return out;
}

function parsePartner(url: string): PartnerTopic | undefined {
  if (!/^EventGrid:\?/i.test(url)) return undefined;
  const q = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  const get = (k: string): string | undefined => {
    for (const [key, v] of q) if (key.toLowerCase() === k && v.trim() !== '') return v;
    return undefined;
  };
  const azureSubscriptionId = get('azuresubscriptionid');
  const resourceGroup = get('resourcegroup');
  const partnerTopic = get('partnertopic');
  const location = get('location');
  if (!azureSubscriptionId || !resourceGroup || !partnerTopic || !location) {
    throw badRequest(
      'An Event Grid notification URL must be EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…',
      'InvalidRequest',
    );
  }
  return { azureSubscriptionId, resourceGroup, partnerTopic, location };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

function checkWebhookUrl(raw: string, name: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest(`The ${name} '${raw}' is not a valid absolute URL.`, 'InvalidRequest');
  }
  // Graph requires HTTPS; plain http is accepted for loopback so a local host can be notified (SPEC, local mode).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw badRequest(`The ${name} must use HTTPS.`, 'InvalidRequest');
  }
}

function graphOffset(iso: string): string {
  return iso.replace(/Z$/, '+00:00');
}

export interface SubscriptionsOptions {
  dir: Directory;
  clock: EmuClock;
  pusher: Pusher;
  events: EventBus;
  tenantId: string;
  callerAppId: string;
}

export class Subscriptions {
  private readonly subs = new Map<string, GraphSubscription>();
  /** How long a validation handshake may take (Graph: 10 s). */
  validationTimeoutMs = 10000;
  /** Delay before each change notification is delivered. */
  notificationDelayMs = 0;
  private dropCount = 0;
  readonly lost: LostNotification[] = [];

  constructor(private readonly o: SubscriptionsOptions) {
    o.dir.onChange((c) => this.notify(c));
  }

  /** Live subscriptions (expired ones are gone, as in Graph). */
  list(): GraphSubscription[] {
    this.purge();
    return [...this.subs.values()];
  }

  get(id: string): GraphSubscription | undefined {
    this.purge();
    return this.subs.get(id.toLowerCase());
  }

  dropNextNotifications(n: number): void {
    this.dropCount += n;
  }

  /** Removes a subscription without telling anyone (as when Graph expires or drops it). */
  drop(id: string): boolean {
    return this.subs.delete(id.toLowerCase());
  }

  /** The topic (CloudEvent source) Graph partner events carry: `/tenants/{tenantId}/applications/{appId}`. */
  partnerSource(): string {
    return `/tenants/${this.o.tenantId}/applications/${this.o.callerAppId}`;
  }

  /** Sends a lifecycle notification; false when the subscription is unknown or has nowhere to send it. */
  sendLifecycle(id: string, event: LifecycleEvent): boolean {
    const sub = this.get(id);
    if (!sub) return false;
    const target = sub.lifecycleNotificationUrl;
    if (event === 'reauthorizationRequired') sub.needsReauthorization = true;
    if (event === 'subscriptionRemoved') this.subs.delete(sub.id.toLowerCase());
    const item = {
      subscriptionId: sub.id,
      subscriptionExpirationDateTime: sub.expirationDateTime,
      tenantId: this.o.tenantId,
      clientState: sub.clientState,
      lifecycleEvent: event,
    };
    if (target && /^EventGrid:/i.test(target)) {
      const type = { reauthorizationRequired: 'SubscriptionReauthorizationRequired', subscriptionRemoved: 'SubscriptionRemoved', missed: 'SubscriptionMissed' }[event];
      this.o.events.publish([
        this.o.events.event({
          topic: this.partnerSource(),
          subject: `Subscriptions/${sub.id}`,
          eventType: `Microsoft.Graph.${type}`,
          data: { ...item, resource: sub.resource, organizationId: this.o.tenantId },
        }),
      ]);
      return true;
    }
    if (!target) return false;
    this.o.pusher.push({
      kind: 'graph.lifecycle',
      url: target,
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ value: [item] }),
    });
    return true;
  }

  addRoutes(router: Router): void {
    router.add('POST', '/v1.0/subscriptions', 'graph.subscriptions.create', wrap((req) => this.create(req)));
    router.add('GET', '/v1.0/subscriptions', 'graph.subscriptions.list', (req) =>
      ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#subscriptions`, value: this.list().map((s) => this.json(s)) }),
    );
    router.add('GET', '/v1.0/subscriptions/:id', 'graph.subscriptions.get', (req) => {
      const sub = this.get(req.params.id ?? '');
      return sub ? ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#subscriptions/$entity`, ...this.json(sub) }) : this.missing(req);
    });
    router.add('PATCH', '/v1.0/subscriptions/:id', 'graph.subscriptions.update', wrap((req) => this.update(req)));
    router.add('DELETE', '/v1.0/subscriptions/:id', 'graph.subscriptions.delete', (req) => {
      const sub = this.get(req.params.id ?? '');
      if (!sub) return this.missing(req);
      this.subs.delete(sub.id.toLowerCase());
      return noContent(req);
    });
    router.add('POST', '/v1.0/subscriptions/:id/reauthorize', 'graph.subscriptions.reauthorize', (req) => {
      const sub = this.get(req.params.id ?? '');
      if (!sub) return this.missing(req);
      sub.needsReauthorization = false;
      return noContent(req);
    });
  }

  private missing(req: EmuRequest): EmuResponse {
    return graphError(req, 404, 'ResourceNotFound', 'The object was not found.');
  }

  private json(s: GraphSubscription): Record<string, unknown> {
    return {
      id: s.id,
      resource: s.resource,
      applicationId: s.applicationId,
      changeType: s.changeType,
      clientState: s.clientState,
      notificationUrl: s.notificationUrl,
      notificationQueryOptions: null,
      lifecycleNotificationUrl: s.lifecycleNotificationUrl,
      expirationDateTime: s.expirationDateTime,
      creatorId: s.creatorId,
      includeResourceData: null,
      latestSupportedTlsVersion: s.latestSupportedTlsVersion,
      encryptionCertificate: null,
      encryptionCertificateId: null,
      notificationUrlAppId: null,
    };
  }

  private checkExpiration(raw: string): string {
    const t = Date.parse(raw);
    if (Number.isNaN(t)) throw badRequest(`Invalid value '${raw}' for expirationDateTime.`, 'InvalidRequest');
    const now = this.o.clock.now();
    if (t <= now) throw badRequest('Subscription expiration date time cannot be in the past.', 'ExtensionError');
    if (t > now + MAX_DIRECTORY_EXPIRATION_MINUTES * 60000) {
      throw badRequest(`Subscription expiration can only be ${MAX_DIRECTORY_EXPIRATION_MINUTES} minutes in the future.`, 'ExtensionError');
    }
    return new Date(t).toISOString();
  }

  private async create(req: EmuRequest): Promise<EmuResponse> {
    this.purge();
    const parsed = createSchema.safeParse(req.body);
    if (!parsed.success) {
      throw badRequest(`Invalid subscription: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 'InvalidRequest');
    }
    const b = parsed.data;
    const resource = parseResource(b.resource);
    if (!resource) throw badRequest(`Resource '${b.resource}' is not supported for change notifications by this emulator.`, 'InvalidRequest');
    if (resource.id) {
      const exists = resource.kind === 'groups' ? this.o.dir.group(resource.id) : this.o.dir.user(resource.id);
      if (!exists) throw new GraphHttpError(404, 'ResourceNotFound', `Resource '${resource.id}' does not exist.`);
    }
    const changeTypes = b.changeType.split(',').map((c) => c.trim().toLowerCase());
    for (const c of changeTypes) {
      if (c !== 'updated' && c !== 'deleted') {
        throw badRequest(`ChangeType '${c}' is not supported for resource '${b.resource}'; users and groups support updated and deleted.`, 'InvalidRequest');
      }
    }
    if (b.includeResourceData) throw badRequest('Rich notifications (includeResourceData) are not supported for this resource.', 'InvalidRequest');
    const expirationDateTime = this.checkExpiration(b.expirationDateTime);
    if (resource.kind === 'groups' && [...this.subs.values()].filter((s) => parseResource(s.resource)?.kind === 'groups').length >= GROUP_SUBSCRIPTION_QUOTA) {
      throw new GraphHttpError(
        403,
        'ExtensionError',
        `Operation: Create; Exception: [Status Code: Forbidden; Reason: The application has reached its limit of ${GROUP_SUBSCRIPTION_QUOTA} subscriptions for groups in this tenant.]`,
      );
    }
    const partner = parsePartner(b.notificationUrl);
    if (!partner) checkWebhookUrl(b.notificationUrl, 'notificationUrl');
    const lifecycleUrl = b.lifecycleNotificationUrl ?? null;
    if (lifecycleUrl) {
      if (/^EventGrid:/i.test(lifecycleUrl)) parsePartner(lifecycleUrl);
      else checkWebhookUrl(lifecycleUrl, 'lifecycleNotificationUrl');
    }
    if (!partner) await this.validate(b.notificationUrl);
    if (lifecycleUrl && !/^EventGrid:/i.test(lifecycleUrl) && lifecycleUrl !== b.notificationUrl) await this.validate(lifecycleUrl);
    const sp = [...this.o.dir.servicePrincipals.values()].find((s) => s.appId.toLowerCase() === this.o.callerAppId.toLowerCase());
    const sub: GraphSubscription = {
      id: randomUUID(),
      resource: b.resource,
      changeType: changeTypes.join(','),
      notificationUrl: b.notificationUrl,
      lifecycleNotificationUrl: lifecycleUrl,
      expirationDateTime,
      clientState: b.clientState ?? null,
      applicationId: this.o.callerAppId,
      creatorId: sp?.id ?? this.o.callerAppId,
      latestSupportedTlsVersion: b.latestSupportedTlsVersion ?? 'v1_2',
      needsReauthorization: false,
      ...(partner ? { partner } : {}),
    };
    this.subs.set(sub.id.toLowerCase(), sub);
    return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#subscriptions/$entity`, ...this.json(sub) }, 201);
  }

  private async update(req: EmuRequest): Promise<EmuResponse> {
    const sub = this.get(req.params.id ?? '');
    if (!sub) return this.missing(req);
    const parsed = patchSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw badRequest('Invalid subscription update.', 'InvalidRequest');
    if (parsed.data.lifecycleNotificationUrl !== undefined) {
      throw badRequest('lifecycleNotificationUrl can only be set when the subscription is created.', 'InvalidRequest');
    }
    const expiration = parsed.data.expirationDateTime !== undefined ? this.checkExpiration(parsed.data.expirationDateTime) : undefined;
    const url = parsed.data.notificationUrl;
    if (url !== undefined && url !== sub.notificationUrl) {
      const partner = parsePartner(url);
      if (!partner) {
        checkWebhookUrl(url, 'notificationUrl');
        await this.validate(url);
      }
      sub.notificationUrl = url;
      if (partner) sub.partner = partner;
      else delete sub.partner;
    }
    if (expiration) sub.expirationDateTime = expiration;
    // Renewing also reauthorizes (facts §3.4).
    sub.needsReauthorization = false;
    return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#subscriptions/$entity`, ...this.json(sub) });
  }

  /** The handshake: POST `url?validationToken=…`, expect 200 + text/plain + the decoded token, in time. */
  private async validate(url: string): Promise<void> {
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    // Graph form-encodes the token (spaces as '+'): only a real URL parser gets it back exactly.
    const target = `${url}${url.includes('?') ? '&' : '?'}${new URLSearchParams({ validationToken: token }).toString()}`;
    const headers = { 'Content-Type': 'text/plain; charset=utf-8' };
    const started = this.o.clock.now();
    let status = 0;
    let text = '';
    let contentType = '';
    let error: string | undefined;
    let timedOut = false;
    const signal = AbortSignal.timeout(this.validationTimeoutMs);
    try {
      const res = await fetch(target, { method: 'POST', headers, body: '', signal });
      status = res.status;
      contentType = res.headers.get('content-type') ?? '';
      text = await res.text();
    } catch (err) {
      timedOut = signal.aborted;
      error = err instanceof Error ? err.message : String(err);
    }
    const result: DeliveryResult = {
      kind: 'graph.validation',
      url: target,
      headers,
      body: '',
      status,
      attempts: 1,
      time: started,
      responseText: text,
      ...(error !== undefined ? { error } : {}),
    };
    this.o.pusher.log.push(result);
    if (timedOut) throw badRequest('Subscription validation request timed out.', 'InvalidRequest');
    const fail = (why: string): GraphHttpError => badRequest(`Subscription validation request failed. ${why}`, 'ValidationError');
    if (status !== 200) throw fail('Notification endpoint must respond with 200 OK to validation request.');
    if (!contentType.toLowerCase().startsWith('text/plain')) throw fail('Response must have the Content-Type text/plain.');
    if (text !== token) throw fail('Response must exactly match validationToken query parameter.');
  }

  private purge(): void {
    const now = this.o.clock.now();
    for (const [k, s] of this.subs) if (Date.parse(s.expirationDateTime) <= now) this.subs.delete(k);
  }

  private matches(sub: GraphSubscription, c: DirectoryChange): boolean {
    if (!sub.changeType.split(',').includes(c.changeType)) return false;
    const r = parseResource(sub.resource);
    if (!r) return false;
    if (c.resource === 'group') {
      if (r.kind !== 'groups') return false;
      if (!r.id) return true;
      if (r.id.toLowerCase() !== c.id.toLowerCase()) return false;
      return r.sub === undefined || (r.sub === 'members' && (c.membersDelta !== undefined || c.changeType === 'deleted'));
    }
    return r.kind === 'users' && (!r.id || r.id.toLowerCase() === c.id.toLowerCase() || this.o.dir.user(r.id)?.id.toLowerCase() === c.id.toLowerCase());
  }

  private notify(c: DirectoryChange): void {
    for (const sub of this.list()) {
      if (!this.matches(sub, c)) continue;
      const label = c.resource === 'group' ? 'Groups' : 'Users';
      const resource = `${label}/${c.id}`;
      if (this.dropCount > 0) {
        this.dropCount--;
        this.lost.push({ subscriptionId: sub.id, resource, time: this.o.clock.now() });
        continue;
      }
      const odataType = c.resource === 'group' ? '#Microsoft.Graph.Group' : '#Microsoft.Graph.User';
      if (sub.partner) {
        const type = `${c.resource === 'group' ? 'Group' : 'User'}${c.changeType === 'deleted' ? 'Deleted' : 'Updated'}`;
        const eventTime = new Date(this.o.clock.now()).toISOString();
        this.o.events.publish([
          this.o.events.event({
            topic: this.partnerSource(),
            subject: resource,
            eventType: `Microsoft.Graph.${type}`,
            eventTime,
            data: {
              changeType: c.changeType,
              clientState: sub.clientState,
              resource,
              resourceData: { '@odata.type': odataType, '@odata.id': resource, id: c.id, organizationId: this.o.tenantId, eventTime, sequenceNumber: c.seq },
              subscriptionExpirationDateTime: graphOffset(sub.expirationDateTime),
              subscriptionId: sub.id,
              tenantId: this.o.tenantId,
            },
          }),
        ]);
        continue;
      }
      const resourceData: Record<string, unknown> = { '@odata.type': odataType, '@odata.id': resource, id: c.id, organizationId: this.o.tenantId };
      if (c.resource === 'group' && c.membersDelta) {
        // Webhook payloads carry the string form of @removed (facts Addenda); delta uses the object form.
        resourceData['members@delta'] = c.membersDelta.map((m) => (m.removed ? { id: m.id, '@removed': 'deleted' } : { id: m.id }));
      }
      const item: Record<string, unknown> = {
        id: randomBytes(9).toString('base64url'),
        subscriptionId: sub.id,
        subscriptionExpirationDateTime: graphOffset(sub.expirationDateTime),
        changeType: c.changeType,
        resource,
        tenantId: this.o.tenantId,
        resourceData,
      };
      if (sub.clientState !== null) item.clientState = sub.clientState;
      this.o.pusher.push({
        kind: 'graph.notification',
        url: sub.notificationUrl,
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ value: [item] }),
        ...(this.notificationDelayMs > 0 ? { delayMs: this.notificationDelayMs } : {}),
      });
    }
  }
}
