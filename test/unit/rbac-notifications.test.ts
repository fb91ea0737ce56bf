import { DAY_MS } from '../../shared/clock';
import { clientStateMatches, groupIdOf, readValidationToken } from '../../shared/events/graph';
import type { PolicyInput } from '../../shared/policy';
import { createLogger, memorySink } from '../../shared/logging';
import { DELTA_TARGET, NOTIFICATION_DELAY_MS } from '../../shared/rbac';
import { NestingMap } from '../../shared/rbac/nesting';
import { receiveGraphEvent, receiveNotifications, type NotificationDeps } from '../../shared/rbac/notifications';
import { addWorkspace, CLIENT_STATE, guid, makeWorld, notification, SUB } from './rbac-helpers';

const G = guid('aaaaaaaa', 1);
const NESTED = guid('aaaaaaaa', 2);
const UNRELATED = guid('aaaaaaaa', 9);
const U = (i: number): string => guid('bbbbbbbb', i);

const policy = (principals: 'group' | 'members' = 'members'): PolicyInput => ({
  mode: 'enforce',
  scopes: [`/subscriptions/${SUB}`],
  rbac: { bindings: [{ id: 'vision', group: G, role: 'AzureML Data Scientist', principals }] },
});

function world(principals: 'group' | 'members' = 'members') {
  const w = makeWorld(policy(principals));
  w.dir.addUser(U(1)).addUser(U(2)).addUser(U(3));
  w.dir.addGroup(NESTED, { members: [U(2)] });
  w.dir.addGroup(G, { members: [U(1), NESTED] });
  w.dir.addGroup(UNRELATED, { members: [U(3)] });
  return w;
}

describe('Graph event helpers', () => {
  it('reads the validation token from the URL, decoded, and refuses an empty or overlong one', () => {
    expect(readValidationToken('https://x/api/graph/notifications?validationToken=Validation%3A+Testing+client')).toEqual({ kind: 'token', token: 'Validation: Testing client' });
    expect(readValidationToken('https://x/api/graph/notifications')).toEqual({ kind: 'none' });
    expect(readValidationToken(`https://x/?validationToken=${'a'.repeat(1025)}`).kind).toBe('invalid');
    expect(readValidationToken('https://x/?validationToken=').kind).toBe('invalid');
  });

  it('compares clientState in constant time, refusing missing or different values', () => {
    expect(clientStateMatches('secret-value', 'secret-value')).toBe(true);
    expect(clientStateMatches('secret-value', 'secret-valuE')).toBe(false);
    expect(clientStateMatches('secret-value', 'secret')).toBe(false);
    expect(clientStateMatches('secret-value', undefined)).toBe(false);
    expect(clientStateMatches('secret-value', 42)).toBe(false);
    expect(clientStateMatches(undefined, 'anything')).toBe(false);
  });

  it('finds the group a notification is about', () => {
    expect(groupIdOf({ resource: `Groups/${G.toUpperCase()}`, resourceData: { id: G.toUpperCase() } })).toBe(G);
    expect(groupIdOf({ resource: `groups('${G}')` })).toBe(G);
    expect(groupIdOf({ resource: `Users/${U(1)}`, resourceData: { id: U(1), '@odata.type': '#Microsoft.Graph.User' } })).toBeUndefined();
    expect(groupIdOf({ resource: 'Groups/not-a-guid' })).toBeUndefined();
  });
});

describe('receiveNotifications', () => {
  it('a wrong clientState changes nothing and reads nothing (202, no retry)', async () => {
    const w = world();
    const before = { state: w.state.calls.length, dir: w.dir.calls.length };
    for (const cs of ['wrong-client-state-value', null]) {
      const r = await w.module.receiveNotifications(notification(G, cs));
      expect(r).toMatchObject({ status: 202, accepted: 0, rejected: 1, enqueued: [] });
    }
    expect(w.enqueued).toEqual([]);
    expect(w.state.calls.length).toBe(before.state);
    expect(w.dir.calls.length).toBe(before.dir);
    expect(w.sink.records.filter((r) => r.level === 'warn')).toHaveLength(2);
    expect(w.sink.text()).not.toContain(CLIENT_STATE);
  });

  it('valid items of a mixed batch are processed', async () => {
    const w = world();
    const good = JSON.parse(notification(G)) as { value: unknown[] };
    const bad = JSON.parse(notification(G, 'forged-client-state')) as { value: unknown[] };
    const r = await w.module.receiveNotifications(JSON.stringify({ value: [...bad.value, ...good.value] }));
    expect(r).toMatchObject({ status: 202, accepted: 1, rejected: 1, enqueued: [G] });
  });

  it('a bound group queues its reconcile and a delta catch-up, with the notification as trigger', async () => {
    const w = world();
    await w.module.receiveNotifications(notification(G));
    expect(w.enqueued).toEqual([
      { capability: 'rbac', target: G, reason: `Group ${G} changed (Graph notification)`, trigger: { kind: 'notification', id: `n-${G.slice(0, 8)}` } },
      { capability: 'rbac', target: DELTA_TARGET, reason: expect.stringMatching(/Catch up/), trigger: { kind: 'notification', id: `n-${G.slice(0, 8)}` } },
    ]);
  });

  it('queues that work invisible for NOTIFICATION_DELAY_MS, so the work pipeline can fold a burst into it', async () => {
    const w = world();
    const calls: Array<{ targets: string[]; options: { delayMs?: number } | undefined }> = [];
    const d: NotificationDeps = {
      settings: { clientState: CLIENT_STATE },
      bound: () => [G],
      nesting: new NestingMap({ state: w.state, directory: w.dir, clock: w.clock, ttlMs: DAY_MS, memoryTtlMs: 30_000, concurrency: 2 }),
      enqueue: async (items, options) => {
        calls.push({ targets: items.map((i) => i.target), options });
      },
      directory: w.dir,
      state: w.state,
      ensureSubscription: () => Promise.reject(new Error('not used')),
    };
    const log = createLogger(memorySink());
    await receiveNotifications(notification(G), d, log);
    await receiveGraphEvent(
      { id: 'evt-1', type: 'Microsoft.Graph.GroupUpdated', source: '/tenants/t', subject: `Groups/${G}`, time: '2026-03-01T00:00:00Z', specversion: '1.0', data: { changeType: 'updated', clientState: CLIENT_STATE, resource: `Groups/${G}`, subscriptionId: 's', tenantId: 't' } },
      d,
      log,
    );
    expect(NOTIFICATION_DELAY_MS).toBe(1000);
    expect(calls).toEqual([
      { targets: [G, DELTA_TARGET], options: { delayMs: NOTIFICATION_DELAY_MS } },
      { targets: [G, DELTA_TARGET], options: { delayMs: NOTIFICATION_DELAY_MS } },
    ]);
  });

  it('notifications for unrelated groups cause no work', async () => {
    const w = world();
    await w.reconcile(G);
    w.enqueued.length = 0;
    const r = await w.module.receiveNotifications(notification(UNRELATED));
    expect(r).toMatchObject({ status: 202, accepted: 1, enqueued: [] });
    expect(w.enqueued).toEqual([]);
  });

  it('a group nested in a bound group maps to the bound group once a reconcile has seen the nesting', async () => {
    const w = world();
    expect((await w.module.receiveNotifications(notification(NESTED))).enqueued).toEqual([]);
    addWorkspace(w, 'rg-ml', 'ws');
    await w.reconcile(G);
    const r = await w.module.receiveNotifications(notification(NESTED));
    expect(r.enqueued).toEqual([G]);
  });

  it('answers malformed input with 400 and oversized input with 413', async () => {
    const w = world();
    expect((await w.module.receiveNotifications('{not json')).status).toBe(400);
    expect((await w.module.receiveNotifications(JSON.stringify({ value: [{ nope: 1 }] }))).status).toBe(400);
    expect((await w.module.receiveNotifications(JSON.stringify({ value: [] }))).status).toBe(202);
    expect((await w.module.receiveNotifications('x'.repeat(1_000_001))).status).toBe(413);
    expect(w.enqueued).toEqual([]);
  });
});

describe('delta catch-up', () => {
  it('catches up a lost notification on the next catch-up', async () => {
    const w = world();
    const ws = addWorkspace(w, 'rg-ml', 'ws');
    await w.sweep();
    await w.drain();
    w.enqueued.length = 0;
    w.dir.addMember(NESTED, U(3));
    // The notification for this change never arrives; the next catch-up finds it.
    const result = await w.module.catchUp();
    expect(result.changedGroups).toEqual([NESTED]);
    expect(result.enqueued).toEqual([G]);
    await w.drain();
    expect(w.ra.at(ws).map((a) => a.principalId)).toContain(U(3));
    expect((await w.module.catchUp()).enqueued).toEqual([]);
  });

  it('the first catch-up only starts cursors; a group nested later rebuilds the map and restarts its chunk', async () => {
    const w = world();
    const first = await w.module.catchUp();
    expect(first).toMatchObject({ watched: 2, cursorsStarted: 1, enqueued: [] });
    const LATE = guid('aaaaaaaa', 5);
    w.dir.addGroup(LATE, { members: [U(3)] });
    w.dir.addMember(G, LATE);
    const seen = await w.module.catchUp();
    expect(seen.enqueued).toEqual([G]);
    const rebuilt = await w.module.catchUp();
    expect(rebuilt).toMatchObject({ watched: 3, cursorsStarted: 1, enqueued: [G] });
    expect(await w.state.inner.list('rbac-delta')).toHaveLength(1);
    expect((await w.module.receiveNotifications(notification(LATE))).enqueued).toEqual([G]);
  });

  it('starts a new cursor (and reconciles everything it covers) when the token expired', async () => {
    const w = world();
    await w.module.catchUp();
    w.dir.resetDeltaTokens();
    const r = await w.module.catchUp();
    expect(r.cursorsStarted).toBe(1);
    expect(r.enqueued).toEqual([G]);
    expect(w.sink.text()).toMatch(/cursor expired/);
  });

  it('keeps one cursor per chunk of at most 50 watched groups', async () => {
    const groups = Array.from({ length: 55 }, (_, i) => guid('cccccccc', i + 1));
    const w = makeWorld({
      mode: 'enforce',
      scopes: [`/subscriptions/${SUB}`],
      rbac: { bindings: groups.map((g, i) => ({ id: `b${i}`, group: g, role: 'Reader' })) },
    });
    for (const g of groups) w.dir.addGroup(g);
    const first = await w.module.catchUp();
    expect(first.cursorsStarted).toBe(2);
    expect(await w.state.inner.list('rbac-delta')).toHaveLength(2);
    const second = await w.module.catchUp();
    expect(second).toMatchObject({ cursorsStarted: 0, enqueued: [] });
  });
});

describe('ensureSubscription', () => {
  it('creates one /groups subscription, leaves it, renews it before expiry and recreates it when gone', async () => {
    const w = world();
    const created = await w.module.ensureSubscription();
    expect(created.action).toBe('created');
    const sub = [...w.dir.subscriptions.values()][0];
    expect(sub).toMatchObject({
      resource: '/groups',
      changeType: 'updated',
      notificationUrl: 'https://warden.example.net/api/graph/notifications',
      lifecycleNotificationUrl: 'https://warden.example.net/api/graph/lifecycle',
      clientState: CLIENT_STATE,
    });
    const minutes = (Date.parse(sub?.expirationDateTime ?? '') - w.clock.now().getTime()) / 60_000;
    expect(minutes).toBeGreaterThan(40_000);
    expect(minutes).toBeLessThan(41_760);
    expect(w.enqueued.map((i) => i.target)).toEqual([DELTA_TARGET]);

    expect((await w.module.ensureSubscription()).action).toBe('unchanged');
    w.clock.advance(26 * DAY_MS);
    const renewed = await w.module.ensureSubscription();
    expect(renewed.action).toBe('renewed');
    expect(renewed.id).toBe(created.id);
    expect(Date.parse(renewed.expirationDateTime ?? '') - w.clock.now().getTime()).toBeGreaterThan(27 * DAY_MS);

    w.dir.dropSubscription(created.id ?? '');
    const recreated = await w.module.ensureSubscription();
    expect(recreated.action).toBe('recreated');
    expect(w.dir.subscriptions.size).toBe(1);
  });

  it('recreates the subscription when WARDEN_CLIENT_STATE is rotated, and deletes the old one', async () => {
    const w = world();
    const first = await w.module.ensureSubscription();
    const rotated = makeWorld(policy(), { env: { WARDEN_CLIENT_STATE: 'rotated-client-state-9f2e' }, clock: w.clock, share: { dir: w.dir, state: w.state } });
    const again = await rotated.module.ensureSubscription();
    expect(again.action).toBe('recreated');
    expect(again.id).not.toBe(first.id);
    expect([...w.dir.subscriptions.values()].map((s) => s.clientState)).toEqual(['rotated-client-state-9f2e']);
    expect((await rotated.module.ensureSubscription()).action).toBe('unchanged');
  });

  it('manages nothing without a public URL', async () => {
    const w = makeWorld(policy(), { env: { WARDEN_PUBLIC_URL: '', WARDEN_CLIENT_STATE: '' } });
    expect((await w.module.ensureSubscription()).action).toBe('disabled');
    expect(w.dir.calls).toEqual([]);
  });
});

describe('receiveLifecycle', () => {
  const body = (subscriptionId: string, lifecycleEvent: string, clientState: string = CLIENT_STATE): string =>
    JSON.stringify({ value: [{ subscriptionId, subscriptionExpirationDateTime: '2026-03-20T00:00:00Z', tenantId: 't', clientState, lifecycleEvent }] });

  it('reauthorizes on reauthorizationRequired; recreates when Graph no longer has it', async () => {
    const w = world();
    const { id } = await w.module.ensureSubscription();
    const r = await w.module.receiveLifecycle(body(id ?? '', 'reauthorizationRequired'));
    expect(r.handled).toEqual([{ subscriptionId: id, event: 'reauthorizationRequired', action: 'reauthorized' }]);
    w.dir.dropSubscription(id ?? '');
    const again = await w.module.receiveLifecycle(body(id ?? '', 'reauthorizationRequired'));
    expect(again.handled[0]?.action).toBe('recreated');
    expect(w.dir.subscriptions.size).toBe(1);
  });

  it('recreates on subscriptionRemoved and catches up on missed', async () => {
    const w = world();
    const { id } = await w.module.ensureSubscription();
    w.enqueued.length = 0;
    w.dir.dropSubscription(id ?? '');
    expect((await w.module.receiveLifecycle(body(id ?? '', 'subscriptionRemoved'))).handled[0]?.action).toBe('recreated');
    expect((await w.module.receiveLifecycle(body(id ?? '', 'missed'))).handled[0]?.action).toBe('caughtUp');
    expect(w.enqueued.map((i) => i.target)).toEqual([DELTA_TARGET, DELTA_TARGET]);
  });

  it('ignores lifecycle events with a wrong clientState', async () => {
    const w = world();
    const { id } = await w.module.ensureSubscription();
    const calls = w.dir.calls.length;
    const r = await w.module.receiveLifecycle(body(id ?? '', 'subscriptionRemoved', 'forged'));
    expect(r).toMatchObject({ status: 202, rejected: 1, handled: [] });
    expect(w.dir.calls.length).toBe(calls);
  });
});

describe('receiveGraphEvent (Event Grid partner topic)', () => {
  const cloudEvent = (type: string, data: Record<string, unknown>, subject = `Groups/${G}`) => ({
    id: 'evt-1',
    type,
    source: '/tenants/t/applications/a',
    subject,
    time: '2026-03-01T00:00:00Z',
    specversion: '1.0',
    datacontenttype: 'application/json',
    data,
  });
  const change = (groupId: string, clientState = CLIENT_STATE) => ({
    changeType: 'updated',
    clientState,
    resource: `Groups/${groupId}`,
    resourceData: { '@odata.type': '#Microsoft.Graph.Group', '@odata.id': `Groups/${groupId}`, id: groupId, organizationId: 't' },
    subscriptionId: 's',
    tenantId: 't',
  });

  it('maps a group change to work, like the webhook', async () => {
    const w = world();
    const r = await w.module.receiveGraphEvent(cloudEvent('Microsoft.Graph.GroupUpdated', change(G)));
    expect(r).toEqual({ action: 'queued', enqueued: [G] });
    expect(w.enqueued.map((i) => [i.target, i.trigger.kind])).toEqual([[G, 'event'], [DELTA_TARGET, 'event']]);
  });

  it('rejects a wrong clientState and ignores unrelated groups and user events', async () => {
    const w = world();
    expect((await w.module.receiveGraphEvent(cloudEvent('Microsoft.Graph.GroupUpdated', change(G, 'forged')))).action).toBe('rejected');
    expect((await w.module.receiveGraphEvent(cloudEvent('Microsoft.Graph.GroupUpdated', change(UNRELATED)))).action).toBe('ignored');
    expect((await w.module.receiveGraphEvent(cloudEvent('Microsoft.Graph.UserUpdated', {}))).action).toBe('ignored');
    expect(w.enqueued).toEqual([]);
  });

  it('reauthorizes the subscription named by a lifecycle event', async () => {
    const w = world();
    const { id } = await w.module.ensureSubscription();
    const r = await w.module.receiveGraphEvent(
      cloudEvent('microsoft.graph.subscriptionReauthorizationRequired', { subscriptionId: id, clientState: CLIENT_STATE, lifecycleEvent: 'reauthorizationRequired' }, `Subscriptions/${id ?? ''}`),
    );
    expect(r).toEqual({ action: 'lifecycle', enqueued: [], detail: 'reauthorized' });
    expect(w.dir.calls).toContain(`reauthorizeSubscription ${id ?? ''}`);
  });

  it('refuses a malformed event with an InputError', async () => {
    const w = world();
    await expect(w.module.receiveGraphEvent({ nope: true })).rejects.toMatchObject({ name: 'InputError' });
    await expect(w.module.receiveGraphEvent(cloudEvent('Microsoft.Graph.GroupUpdated', { bad: 1 }))).rejects.toMatchObject({ name: 'InputError' });
  });
});
