/**
 * The registered handlers of graphNotifications, graphLifecycle, graphEvents and graphSubscriptions,
 * called with real `HttpRequest` / `InvocationContext` objects and an RBAC module on in-memory ports.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit, type Timer } from '@azure/functions';
import { DELTA_TARGET } from '../../shared/rbac';
import { graphEventsOptions, graphLifecycleOptions, graphNotificationsOptions, graphSubscriptionsOptions, type RbacRuntime } from '../../shared/rbac/functions';
import { CLIENT_STATE, guid, makeWorld, notification, SUB, type World } from './rbac-helpers';

const G = guid('aaaaaaaa', 1);

function world(): World {
  const w = makeWorld({ mode: 'enforce', scopes: [`/subscriptions/${SUB}`], rbac: { bindings: [{ id: 'vision', group: G, role: 'Reader' }] } });
  w.dir.addGroup(G);
  return w;
}

function context(name: string): InvocationContext & { lines: string[] } {
  const lines: string[] = [];
  const ctx = new InvocationContext({ invocationId: 'inv-1', functionName: name, logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')) });
  return Object.assign(ctx, { lines });
}

const runtimeOf = (w: World): (() => Promise<RbacRuntime>) => async () => ({ rbac: w.module });
const noRuntime = async (): Promise<RbacRuntime> => {
  throw new Error('the runtime must not be loaded');
};

async function call(handler: unknown, req: HttpRequest, ctx: InvocationContext): Promise<HttpResponseInit> {
  return (handler as (r: HttpRequest, c: InvocationContext) => Promise<HttpResponseInit>)(req, ctx);
}

describe('graphNotifications', () => {
  it('is an anonymous POST route at graph/notifications', () => {
    const o = graphNotificationsOptions(noRuntime);
    expect(o).toMatchObject({ route: 'graph/notifications', authLevel: 'anonymous' });
    expect(o.methods).toContain('POST');
  });

  it('echoes the validation token as text/plain without loading the runtime or reading the body', async () => {
    const token = 'Validation: Testing client application reachability for subscription Request-Id: 1234';
    const req = new HttpRequest({
      method: 'POST',
      url: `https://warden.example.net/api/graph/notifications?${new URLSearchParams({ validationToken: token }).toString()}`,
      body: { string: 'not json at all' },
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
    const res = await call(graphNotificationsOptions(noRuntime).handler, req, context('graphNotifications'));
    expect(res.status).toBe(200);
    expect(new Headers(res.headers as Record<string, string>).get('content-type')).toMatch(/^text\/plain/);
    expect(res.body).toBe(token);
  });

  it('refuses an overlong validation token', async () => {
    const req = new HttpRequest({ method: 'POST', url: `https://w.example/api/graph/notifications?validationToken=${'x'.repeat(2000)}` });
    const res = await call(graphNotificationsOptions(noRuntime).handler, req, context('graphNotifications'));
    expect(res.status).toBe(400);
  });

  it('answers 202 after queueing a valid notification; 202 and nothing queued for a forged one', async () => {
    const w = world();
    const h = graphNotificationsOptions(runtimeOf(w)).handler;
    const forged = await call(h, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/notifications', body: { string: notification(G, 'forged-state') } }), context('graphNotifications'));
    expect(forged.status).toBe(202);
    expect(w.enqueued).toEqual([]);
    const ok = await call(h, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/notifications', body: { string: notification(G) } }), context('graphNotifications'));
    expect(ok.status).toBe(202);
    expect(w.enqueued.map((i) => i.target)).toEqual([G, DELTA_TARGET]);
  });

  it('answers malformed bodies with the 4xx error envelope and other methods with 405', async () => {
    const w = world();
    const h = graphNotificationsOptions(runtimeOf(w)).handler;
    const bad = await call(h, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/notifications', body: { string: '{"value": 3}' } }), context('graphNotifications'));
    expect(bad.status).toBe(400);
    expect(bad.jsonBody).toMatchObject({ error: { code: 'InvalidNotification' } });
    const get = await call(h, new HttpRequest({ method: 'GET', url: 'https://w.example/api/graph/notifications' }), context('graphNotifications'));
    expect(get.status).toBe(405);
  });

  it('answers 5xx (Graph retries) when queueing fails, with the invocation id', async () => {
    const w = world();
    const failing = async (): Promise<RbacRuntime> => ({
      rbac: {
        ...w.module,
        receiveNotifications: async () => {
          throw new Error('queue unavailable');
        },
      },
    });
    const res = await call(graphNotificationsOptions(failing).handler, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/notifications', body: { string: notification(G) } }), context('graphNotifications'));
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(JSON.stringify(res.jsonBody)).toContain('inv-1');
  });
});

describe('graphLifecycle', () => {
  it('answers the handshake too, and handles lifecycle events', async () => {
    const w = world();
    const o = graphLifecycleOptions(runtimeOf(w));
    expect(o.route).toBe('graph/lifecycle');
    const hs = await call(o.handler, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/lifecycle?validationToken=abc' }), context('graphLifecycle'));
    expect([hs.status, hs.body]).toEqual([200, 'abc']);
    const { id } = await w.module.ensureSubscription();
    const body = JSON.stringify({ value: [{ subscriptionId: id, clientState: CLIENT_STATE, lifecycleEvent: 'reauthorizationRequired' }] });
    const res = await call(o.handler, new HttpRequest({ method: 'POST', url: 'https://w.example/api/graph/lifecycle', body: { string: body } }), context('graphLifecycle'));
    expect(res.status).toBe(202);
    expect(w.dir.calls).toContain(`reauthorizeSubscription ${id ?? ''}`);
  });
});

describe('graphEvents', () => {
  it('queues work for a partner-topic group event and completes on a malformed one', async () => {
    const w = world();
    const { handler } = graphEventsOptions(runtimeOf(w));
    const event = {
      id: 'e1',
      type: 'Microsoft.Graph.GroupUpdated',
      source: '/tenants/t/applications/a',
      subject: `Groups/${G}`,
      specversion: '1.0',
      time: '2026-03-01T00:00:00Z',
      data: { changeType: 'updated', clientState: CLIENT_STATE, resource: `Groups/${G}`, resourceData: { id: G } },
    };
    await handler(event as never, context('graphEvents'));
    expect(w.enqueued.map((i) => i.target)).toEqual([G, DELTA_TARGET]);
    await expect(handler({ garbage: true } as never, context('graphEvents'))).resolves.toBeUndefined();
  });

  it('fails the invocation when queueing fails, so Event Grid redelivers', async () => {
    const w = world();
    const failing = async (): Promise<RbacRuntime> => ({ rbac: { ...w.module, receiveGraphEvent: async () => Promise.reject(new Error('queue down')) } });
    const ctx = context('graphEvents');
    await expect(graphEventsOptions(failing).handler({} as never, ctx)).rejects.toThrow('queue down');
  });
});

describe('graphSubscriptions', () => {
  it('runs hourly and keeps the subscription', async () => {
    const w = world();
    const o = graphSubscriptionsOptions(runtimeOf(w));
    expect(o.schedule).toBe('0 0 * * * *');
    const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
    await o.handler(timer, context('graphSubscriptions'));
    expect(w.dir.subscriptions.size).toBe(1);
  });
});
