/**
 * Graph change-notification subscriptions through the real Graph client: the validation handshake
 * against local endpoints (correct, wrong echo, too slow), expiration limits, renew, reauthorize,
 * delete, expiry, change and lifecycle notifications, lost notifications and Event Grid partner topics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@microsoft/microsoft-graph-client';
import { GROUP_SUBSCRIPTION_QUOTA } from '../../emulator/graph';
import { startStandaloneGraph, type StandaloneGraph } from '../../emulator/graph/standalone';
import { graphError, tls } from './graph-helpers';

const ADA = '3a3a3a3a-0000-4000-8000-000000000001';
const BOB = '3a3a3a3a-0000-4000-8000-000000000002';
const G_TOP = '3c3c3c3c-0000-4000-8000-000000000001';
const G_NESTED = '3c3c3c3c-0000-4000-8000-000000000002';
const CLIENT_STATE = 'client-state-for-tests';
const MINUTE = 60000;

const section = {
  callerAppId: '3d3d3d3d-0000-4000-8000-000000000001',
  users: [
    { id: ADA, displayName: 'Ada', userPrincipalName: 'ada@contoso.example' },
    { id: BOB, displayName: 'Bob', userPrincipalName: 'bob@contoso.example' },
  ],
  groups: [
    { id: G_TOP, displayName: 'top', members: [G_NESTED] },
    { id: G_NESTED, displayName: 'nested', members: [] },
  ],
};

interface Received {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local notification endpoint: `/good*` validates correctly, `/wrong` echoes the raw token, `/slow` is late. */
class Endpoint {
  readonly received: Received[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.answer(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private answer(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.received.push({ path: url.pathname, query: url.searchParams, headers: req.headers, body });
    const token = url.searchParams.get('validationToken');
    if (token === null) {
      res.writeHead(202).end();
      return;
    }
    if (url.pathname === '/wrong') {
      // A classic bug: decodeURIComponent leaves the '+' that stand for spaces.
      const raw = /validationToken=([^&]*)/.exec(req.url ?? '')?.[1] ?? '';
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(decodeURIComponent(raw));
      return;
    }
    if (url.pathname === '/json') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(token));
      return;
    }
    const reply = (): void => void res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(token);
    if (url.pathname === '/slow') setTimeout(reply, 600);
    else reply();
  }

  notifications(path: string): Array<{ value: Array<Record<string, unknown>> }> {
    return this.received
      .filter((r) => r.path === path && !r.query.has('validationToken'))
      .map((r) => JSON.parse(r.body) as { value: Array<Record<string, unknown>> });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

let g: StandaloneGraph;
let client: Client;
const endpoint = new Endpoint();

function inMinutes(n: number): string {
  return new Date(g.ctx.clock.now() + n * MINUTE).toISOString();
}

async function subscribe(extra: Record<string, unknown> = {}): Promise<Record<string, unknown> & { id: string }> {
  return client.api('/subscriptions').post({
    changeType: 'updated',
    notificationUrl: `${endpoint.url}/good`,
    resource: '/groups',
    expirationDateTime: inMinutes(60),
    clientState: CLIENT_STATE,
    ...extra,
  });
}

beforeAll(async () => {
  await endpoint.start();
  g = await startStandaloneGraph({ tls: tls(), section });
  g.pusher.retryDelayMs = 10;
  client = Client.initWithMiddleware({ authProvider: { getAccessToken: async () => 'token' }, baseUrl: g.url, customHosts: new Set(['127.0.0.1']) });
});

afterAll(async () => {
  await g.close();
  await endpoint.stop();
});

afterEach(async () => {
  await g.pusher.drain();
  for (const s of g.control.subscriptions()) g.control.dropSubscription(s.id);
});

describe('create and the validation handshake', () => {
  it('validates both URLs with a form-encoded token and answers 201', async () => {
    const mark = endpoint.received.length;
    const sub = await subscribe({ lifecycleNotificationUrl: `${endpoint.url}/good-lifecycle?code=abc` });
    expect(sub).toMatchObject({
      resource: '/groups',
      changeType: 'updated',
      clientState: CLIENT_STATE,
      applicationId: section.callerAppId,
      latestSupportedTlsVersion: 'v1_2',
      lifecycleNotificationUrl: `${endpoint.url}/good-lifecycle?code=abc`,
    });
    const handshakes = endpoint.received.slice(mark);
    expect(handshakes.map((h) => h.path)).toEqual(['/good', '/good-lifecycle']);
    expect(handshakes[0]?.headers['content-type']).toMatch(/^text\/plain/);
    expect(handshakes[0]?.query.get('validationToken')).toMatch(/^Validation: Testing client application reachability/);
    // The notification URL's own query string is preserved.
    expect(handshakes[1]?.query.get('code')).toBe('abc');
    expect(g.control.subscriptions().map((s) => s.id)).toEqual([sub.id]);
  });

  it('refuses an endpoint that echoes the token wrongly, answers JSON, or is too slow', async () => {
    const wrong = await graphError(subscribe({ notificationUrl: `${endpoint.url}/wrong` }));
    expect(wrong.statusCode).toBe(400);
    expect(wrong.code).toBe('ValidationError');
    expect(wrong.message).toMatch(/^Subscription validation request failed\./);

    const json = await graphError(subscribe({ notificationUrl: `${endpoint.url}/json` }));
    expect(json.code).toBe('ValidationError');

    g.control.validationTimeoutMs = 200;
    try {
      const slow = await graphError(subscribe({ notificationUrl: `${endpoint.url}/slow` }));
      expect(slow.statusCode).toBe(400);
      expect(slow.code).toBe('InvalidRequest');
      expect(slow.message).toBe('Subscription validation request timed out.');
    } finally {
      g.control.validationTimeoutMs = 10000;
    }
    const dead = await graphError(subscribe({ notificationUrl: 'http://127.0.0.1:1/closed' }));
    expect(dead.code).toBe('ValidationError');
    expect(g.control.subscriptions()).toEqual([]);
  });

  it('refuses expirations beyond 41,760 minutes or in the past, and non-HTTPS public URLs', async () => {
    const tooLong = await graphError(subscribe({ expirationDateTime: inMinutes(41761) }));
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.message).toMatch(/41760 minutes/);
    const past = await graphError(subscribe({ expirationDateTime: inMinutes(-1) }));
    expect(past.statusCode).toBe(400);
    const http = await graphError(subscribe({ notificationUrl: 'http://func.example/api/graph' }));
    expect(http.statusCode).toBe(400);
    const created = await graphError(subscribe({ changeType: 'created' }));
    expect(created.statusCode).toBe(400);
    const ok = await subscribe({ expirationDateTime: inMinutes(41759) });
    expect(ok.id).toBeDefined();
  });
});

describe('renew, reauthorize, delete, expiry', () => {
  it('renews with PATCH, reauthorizes, deletes', async () => {
    const sub = await subscribe();
    const renewed = await client.api(`/subscriptions/${sub.id}`).patch({ expirationDateTime: inMinutes(40000) });
    expect(Date.parse(renewed.expirationDateTime)).toBeGreaterThan(g.ctx.clock.now() + 39999 * MINUTE);
    const tooFar = await graphError(client.api(`/subscriptions/${sub.id}`).patch({ expirationDateTime: inMinutes(50000) }));
    expect(tooFar.statusCode).toBe(400);
    expect((await client.api(`/subscriptions/${sub.id}`).get()).expirationDateTime).toBe(renewed.expirationDateTime);

    const reauthorized: unknown = await client.api(`/subscriptions/${sub.id}/reauthorize`).post({});
    expect(reauthorized).toBeUndefined();

    const list = await client.api('/subscriptions').get();
    expect(list.value.map((s: { id: string }) => s.id)).toEqual([sub.id]);
    await client.api(`/subscriptions/${sub.id}`).delete();
    const gone = await graphError(client.api(`/subscriptions/${sub.id}`).get());
    expect(gone.statusCode).toBe(404);
  });

  it('lets an expired subscription disappear on the shared clock', async () => {
    const sub = await subscribe({ expirationDateTime: inMinutes(30) });
    g.ctx.clock.advance(31 * MINUTE);
    try {
      expect((await client.api('/subscriptions').get()).value).toEqual([]);
      expect((await graphError(client.api(`/subscriptions/${sub.id}/reauthorize`).post({}))).statusCode).toBe(404);
    } finally {
      g.ctx.clock.advance(-31 * MINUTE);
    }
  });

  it('sends reauthorizationRequired to the lifecycle URL with the clientState', async () => {
    const sub = await subscribe({ lifecycleNotificationUrl: `${endpoint.url}/good-lifecycle` });
    expect(g.control.sendLifecycle(sub.id, 'reauthorizationRequired')).toBe(true);
    await g.pusher.drain();
    const [note] = endpoint.notifications('/good-lifecycle').slice(-1);
    expect(note?.value[0]).toMatchObject({ subscriptionId: sub.id, clientState: CLIENT_STATE, lifecycleEvent: 'reauthorizationRequired' });
    expect(g.control.subscriptions()[0]?.needsReauthorization).toBe(true);
    await client.api(`/subscriptions/${sub.id}/reauthorize`).post({});
    expect(g.control.subscriptions()[0]?.needsReauthorization).toBe(false);
  });

  it('stops notifying a subscription the control drops silently', async () => {
    const sub = await subscribe({ notificationUrl: `${endpoint.url}/good-dropped` });
    expect(g.control.dropSubscription(sub.id)).toBe(true);
    g.control.addMember(G_TOP, BOB);
    g.control.removeMember(G_TOP, BOB);
    await g.pusher.drain();
    expect(endpoint.notifications('/good-dropped')).toEqual([]);
  });
});

describe('change notifications', () => {
  it('delivers membership changes with the clientState, and a nested change under the nested group id', async () => {
    const all = await subscribe({ notificationUrl: `${endpoint.url}/good-all` });
    await subscribe({ notificationUrl: `${endpoint.url}/good-top`, resource: `/groups/${G_TOP}` });

    g.control.addMember(G_TOP, ADA);
    g.control.removeMember(G_TOP, ADA);
    g.control.addMember(G_NESTED, BOB);
    await g.pusher.drain();

    const items = endpoint.notifications('/good-all').flatMap((n) => n.value);
    expect(items).toHaveLength(3);
    expect(items[0]).toMatchObject({
      subscriptionId: all.id,
      clientState: CLIENT_STATE,
      changeType: 'updated',
      resource: `Groups/${G_TOP}`,
      tenantId: g.tenantId,
      resourceData: { '@odata.type': '#Microsoft.Graph.Group', '@odata.id': `Groups/${G_TOP}`, id: G_TOP, organizationId: g.tenantId, 'members@delta': [{ id: ADA }] },
    });
    expect(items[1]?.resourceData).toMatchObject({ 'members@delta': [{ id: ADA, '@removed': 'deleted' }] });
    expect(items[2]?.resource).toBe(`Groups/${G_NESTED}`);

    // The subscription on the top group hears only about the top group itself.
    const top = endpoint.notifications('/good-top').flatMap((n) => n.value);
    expect(top.map((i) => i.resource)).toEqual([`Groups/${G_TOP}`, `Groups/${G_TOP}`]);
    g.control.removeMember(G_NESTED, BOB);
  });

  it('notifies /users subscriptions when an account is disabled', async () => {
    await subscribe({ notificationUrl: `${endpoint.url}/good-users`, resource: `/users/${BOB}` });
    g.control.setAccountEnabled(ADA, false);
    g.control.setAccountEnabled(BOB, false);
    await g.pusher.drain();
    const items = endpoint.notifications('/good-users').flatMap((n) => n.value);
    expect(items.map((i) => i.resource)).toEqual([`Users/${BOB}`]);
    expect(items[0]?.resourceData).toMatchObject({ '@odata.type': '#Microsoft.Graph.User', id: BOB });
    g.control.setAccountEnabled(ADA, true);
    g.control.setAccountEnabled(BOB, true);
  });

  it('loses notifications on purpose, and delays them on request', async () => {
    await subscribe({ notificationUrl: `${endpoint.url}/good-lossy` });
    g.control.dropNextNotifications(1);
    g.control.addMember(G_TOP, BOB);
    g.control.removeMember(G_TOP, BOB);
    await g.pusher.drain();
    const items = endpoint.notifications('/good-lossy').flatMap((n) => n.value);
    expect(items).toHaveLength(1);
    expect(items[0]?.resourceData).toMatchObject({ 'members@delta': [{ id: BOB, '@removed': 'deleted' }] });
    expect(g.control.lostNotifications().slice(-1)[0]?.resource).toBe(`Groups/${G_TOP}`);

    g.control.notificationDelayMs = 150;
    try {
      const started = Date.now();
      g.control.addMember(G_TOP, BOB);
      await g.pusher.drain();
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(endpoint.notifications('/good-lossy')).toHaveLength(2);
    } finally {
      g.control.notificationDelayMs = 0;
      g.control.removeMember(G_TOP, BOB);
    }
  });
});

describe('Event Grid partner topics', () => {
  const partnerUrl = 'EventGrid:?azuresubscriptionid=00000000-1111-4222-8333-444444444444&resourcegroup=rg-warden&partnertopic=warden-graph&location=westeurope';

  it('skips the handshake and publishes CloudEvents to the EventBus', async () => {
    const mark = endpoint.received.length;
    const sub = await subscribe({ notificationUrl: partnerUrl, lifecycleNotificationUrl: partnerUrl });
    expect(endpoint.received.length).toBe(mark);
    g.events.subscribe({ name: 'graph-events', topic: g.control.partnerTopicSource(), endpoint: `${endpoint.url}/eg`, schema: 'CloudEventSchemaV1_0' });
    try {
      g.control.addMember(G_TOP, ADA);
      expect(g.control.sendLifecycle(sub.id, 'reauthorizationRequired')).toBe(true);
      await g.pusher.drain();
      const delivered = endpoint.received.filter((r) => r.path === '/eg');
      expect(delivered.map((d) => d.headers['aeg-event-type'])).toEqual(['Notification', 'Notification']);
      const [change, lifecycle] = delivered.map((d) => JSON.parse(d.body) as Record<string, unknown>);
      expect(change).toMatchObject({
        specversion: '1.0',
        type: 'Microsoft.Graph.GroupUpdated',
        source: `/tenants/${g.tenantId}/applications/${section.callerAppId}`,
        subject: `Groups/${G_TOP}`,
        data: {
          changeType: 'updated',
          clientState: CLIENT_STATE,
          resource: `Groups/${G_TOP}`,
          subscriptionId: sub.id,
          tenantId: g.tenantId,
          resourceData: { '@odata.type': '#Microsoft.Graph.Group', id: G_TOP, organizationId: g.tenantId },
        },
      });
      expect(lifecycle).toMatchObject({ type: 'Microsoft.Graph.SubscriptionReauthorizationRequired', data: { lifecycleEvent: 'reauthorizationRequired', subscriptionId: sub.id } });
    } finally {
      g.events.unsubscribe('graph-events');
      g.control.removeMember(G_TOP, ADA);
    }
  });

  it('refuses a malformed EventGrid: URL and enforces the group subscription quota with 403', async () => {
    const malformed = await graphError(subscribe({ notificationUrl: 'EventGrid:?partnertopic=x' }));
    expect(malformed.statusCode).toBe(400);
    for (let i = 0; i < GROUP_SUBSCRIPTION_QUOTA; i++) await subscribe({ notificationUrl: partnerUrl });
    const over = await graphError(subscribe({ notificationUrl: partnerUrl }));
    expect(over.statusCode).toBe(403);
  });
});
