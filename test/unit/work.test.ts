/**
 * Pure parts of the work pipeline: the coalescing decision (by table), work item encoding, host.json
 * reading with app-setting overrides, and the development storage connection string.
 */
import fc from 'fast-check';
import { decide, emptyState, targetKey, type TargetState } from '../../shared/work/coalesce';
import { loadHostConfig, parseTimeSpan } from '../../shared/work/hostConfig';
import { decodeWorkMessage, encodeWorkItem, newWorkItem, type WorkItem } from '../../shared/work/item';
import { resolveStorageConnectionString } from '../../shared/work/storage';
import { join } from 'node:path';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const WINDOW = 5000;

function state(over: Partial<TargetState>): TargetState {
  return { ...emptyState('/subscriptions/s/resourceGroups/rg'), ...over };
}

describe('decide (coalescing)', () => {
  const msg = (over: Partial<{ id: string; enqueuedAt: number; isFollowUp: boolean }> = {}) => ({ id: 'm1', enqueuedAt: T0, isFollowUp: false, ...over });
  const running = { running: true, claimId: 'other', runStartedAt: T0 + 1000, leaseUntil: T0 + 60_000 };

  it.each([
    ['no state yet: claim', undefined, msg(), T0 + 10, { kind: 'claim', takeover: false }],
    ['queued before the running reconcile started: covered', state(running), msg(), T0 + 2000, { kind: 'covered', by: 'running' }],
    ['queued before the last successful start: covered', state({ lastSuccessStartedAt: T0 + 1 }), msg(), T0 + 60_000, { kind: 'covered', by: 'succeeded' }],
    ['queued after the running reconcile started: request one follow-up', state(running), msg({ enqueuedAt: T0 + 1500 }), T0 + 2000, { kind: 'requestFollowUp' }],
    ['follow-up already requested: nothing more', state({ ...running, followUp: 'requested' }), msg({ enqueuedAt: T0 + 1500 }), T0 + 2000, { kind: 'alreadyRequested' }],
    ['stale claim (lease passed): take over', state({ ...running, leaseUntil: T0 + 1500 }), msg({ enqueuedAt: T0 + 1200 }), T0 + 2000, { kind: 'claim', takeover: true }],
    ['own claim redelivered after a crash: take over at once', state({ ...running, claimId: 'm1', lastSuccessStartedAt: T0 - 10 }), msg({ enqueuedAt: T0 }), T0 + 2000, { kind: 'claim', takeover: true }],
    ['reconciled moments ago: defer to one follow-up at the end of the window', state({ lastSuccessStartedAt: T0 }), msg({ enqueuedAt: T0 + 100 }), T0 + 1000, { kind: 'defer', delayMs: 4000 }],
    ['reconciled moments ago and a follow-up is queued: nothing more', state({ lastSuccessStartedAt: T0, followUp: 'queued', followUpId: 'f' }), msg({ enqueuedAt: T0 + 100 }), T0 + 1000, { kind: 'alreadyRequested' }],
    ['the promiser of a queued follow-up is back (it died before queueing): queue it again', state({ lastSuccessStartedAt: T0, followUp: 'queued', followUpId: 'f', followUpBy: 'm1' }), msg({ enqueuedAt: T0 + 100 }), T0 + 1000, { kind: 'defer', delayMs: 4000 }],
    ['a follow-up itself runs even inside the window', state({ lastSuccessStartedAt: T0, followUp: 'queued', followUpId: 'm1' }), msg({ enqueuedAt: T0 + 100, isFollowUp: true }), T0 + 1000, { kind: 'claim', takeover: false }],
    ['window over: claim', state({ lastSuccessStartedAt: T0 }), msg({ enqueuedAt: T0 + 100 }), T0 + WINDOW + 1, { kind: 'claim', takeover: false }],
    ['the last run failed: its start covers nothing', state({ runStartedAt: T0 + 10, lastOutcome: 'failed' }), msg({ enqueuedAt: T0 }), T0 + 20, { kind: 'claim', takeover: false }],
  ])('%s', (_name, st, m, now, expected) => {
    expect(decide(st, m, now, WINDOW)).toEqual(expected);
  });

  it('never completes a message without a reconcile that started after it was queued, or a promised follow-up', () => {
    // Property: "covered" needs a run start at or after enqueuedAt; every other non-claim outcome promises a follow-up.
    fc.assert(
      fc.property(
        fc.record({
          running: fc.boolean(),
          claimOther: fc.boolean(),
          runStart: fc.integer({ min: 0, max: 10_000 }),
          lease: fc.integer({ min: 0, max: 20_000 }),
          lastSuccess: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
          followUp: fc.constantFrom('none', 'requested', 'queued'),
          enq: fc.integer({ min: 0, max: 10_000 }),
          now: fc.integer({ min: 0, max: 20_000 }),
          isFollowUp: fc.boolean(),
        }),
        (r) => {
          const st = state({
            running: r.running,
            claimId: r.claimOther ? 'other' : 'm1',
            runStartedAt: r.running ? r.runStart : undefined,
            leaseUntil: r.running ? r.lease : undefined,
            lastSuccessStartedAt: r.lastSuccess,
            followUp: r.followUp,
          });
          const d = decide(st, { id: 'm1', enqueuedAt: r.enq, isFollowUp: r.isFollowUp }, r.now, WINDOW);
          if (d.kind === 'covered') {
            const start = d.by === 'running' ? st.runStartedAt : st.lastSuccessStartedAt;
            expect(start).toBeDefined();
            expect(start as number).toBeGreaterThanOrEqual(r.enq);
          }
          if (d.kind === 'alreadyRequested') expect(st.followUp).not.toBe('none');
          if (r.running && !r.claimOther) expect(d).toEqual({ kind: 'claim', takeover: true });
        },
      ),
    );
  });

  it('keys targets case-insensitively (ARM ids) with a row-key-safe hash', () => {
    expect(targetKey('/subscriptions/S/resourceGroups/RG')).toBe(targetKey('/subscriptions/s/resourcegroups/rg'));
    expect(targetKey('/a/b?#')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('work items', () => {
  const item: WorkItem = newWorkItem(
    { capability: 'rbac', target: 'g-1', reason: 'group changed', trigger: { kind: 'notification', id: 'n-1' } },
    new Date(T0),
  );

  it('encodes as base64 JSON, as the Functions host expects by default', () => {
    const text = encodeWorkItem(item);
    expect(text).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(Buffer.from(text, 'base64').toString('utf8'))).toEqual(item);
    expect(item.enqueuedAt).toBe('2026-01-01T00:00:00.000Z');
  });

  it('accepts what the host hands over: the parsed object or JSON text', () => {
    expect(decodeWorkMessage(item)).toEqual({ ok: true, item });
    expect(decodeWorkMessage(JSON.stringify(item))).toEqual({ ok: true, item });
  });

  it('rejects unparsable messages with a reason instead of throwing', () => {
    expect(decodeWorkMessage('not json')).toEqual({ ok: false, error: 'the message is not JSON' });
    const bad = decodeWorkMessage({ ...item, capability: 'dns' });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/^capability:/);
    expect(decodeWorkMessage(42).ok).toBe(false);
  });
});

describe('host.json', () => {
  const root = join(__dirname, '..', '..');

  it('reads the project host.json: maxDequeueCount 5, base64, visibility timeout as backoff', () => {
    const c = loadHostConfig({ appRoot: root, env: {} });
    expect(c.queues).toMatchObject({ maxDequeueCount: 5, messageEncoding: 'base64', batchSize: 16, visibilityTimeoutMs: 5000, maxPollingIntervalMs: 2000 });
    expect(c.routePrefix).toBe('api');
    expect(c.functionTimeoutMs).toBe(600_000);
  });

  it('lets AzureFunctionsJobHost__ app settings override single values, like the host', () => {
    const c = loadHostConfig({
      appRoot: root,
      env: { AzureFunctionsJobHost__extensions__queues__maxDequeueCount: '2', AZUREFUNCTIONSJOBHOST__EXTENSIONS__QUEUES__VISIBILITYTIMEOUT: '00:00:01' },
    });
    expect(c.queues.maxDequeueCount).toBe(2);
    expect(c.queues.visibilityTimeoutMs).toBe(1000);
  });

  it('uses the host defaults without a host.json and names a bad value', () => {
    const c = loadHostConfig({ appRoot: join(root, 'test', 'unit'), env: {} });
    expect(c.queues).toMatchObject({ maxDequeueCount: 5, batchSize: 16, visibilityTimeoutMs: 0, maxPollingIntervalMs: 60_000 });
    expect(() => loadHostConfig({ appRoot: root, env: { AzureFunctionsJobHost__extensions__queues__batchSize: '64' } })).toThrow(/extensions\.queues\.batchSize/);
  });

  it('parses TimeSpans', () => {
    expect(parseTimeSpan('00:00:05')).toBe(5000);
    expect(parseTimeSpan('1.02:03:04.5')).toBe(((26 * 60 + 3) * 60 + 4) * 1000 + 500);
    expect(parseTimeSpan('-1')).toBeUndefined();
    expect(() => parseTimeSpan('5s')).toThrow('not a TimeSpan');
  });
});

describe('storage connection string', () => {
  it('maps UseDevelopmentStorage=true to Azurite, with port overrides', () => {
    const c = resolveStorageConnectionString('UseDevelopmentStorage=true', { WARDEN_AZURITE_QUEUE_PORT: '20001' });
    expect(c).toContain('QueueEndpoint=http://127.0.0.1:20001/devstoreaccount1');
    expect(c).toContain('TableEndpoint=http://127.0.0.1:10002/devstoreaccount1');
    expect(resolveStorageConnectionString('UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://box')).toContain('BlobEndpoint=http://box:10000/');
    expect(resolveStorageConnectionString('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k')).toBe('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k');
  });
});
