/**
 * The work pipeline's use case against Azurite (real queue and table SDK clients), with fake
 * reconcilers and in-memory alert/audit ports: coalescing, follow-ups, claims, error classes, sweep.
 */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { QueueClient, type QueueSendMessageOptions, type QueueSendMessageResponse } from '@azure/storage-queue';
import { ManualClock } from '../../shared/clock';
import { TerminalError, TransientError } from '../../shared/errors';
import { createLogger, memorySink } from '../../shared/logging';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { TargetStateStore, emptyState } from '../../shared/work/coalesce';
import { decodeWorkMessage, encodeWorkItem, newWorkItem, type WorkItem } from '../../shared/work/item';
import { createWorkPipeline, type Reconciler, type WorkPipelineDeps } from '../../shared/work/pipeline';

function storage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

const TARGET = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws1';

function setup(over: Partial<WorkPipelineDeps> = {}, reconciler?: Reconciler) {
  const id = randomBytes(5).toString('hex');
  const queue = new QueueClient(storage(), `work-${id}`);
  const table = TableClient.fromConnectionString(storage(), `work${id}`, { allowInsecureConnection: true });
  const calls: WorkItem[] = [];
  const alerter = new MemoryAlerter();
  const audit = new MemoryAuditLog();
  const sink = memorySink();
  const clock = new ManualClock('2026-01-01T00:00:00Z');
  const rec: Reconciler =
    reconciler ??
    (async (item) => {
      calls.push(item);
      return { summary: 'ok' };
    });
  const pipeline = createWorkPipeline({
    queue,
    table,
    reconcilers: { rbac: rec, workspaces: rec },
    alerter,
    audit: { log: audit, mode: 'enforce' },
    logger: createLogger(sink),
    clock,
    coalesceWindowMs: 5000,
    ...over,
  });
  const store = new TargetStateStore(table);
  return { queue, table, calls, alerter, audit, sink, clock, pipeline, store };
}

const meta = (dequeueCount = 1) => ({ dequeueCount, invocationId: 'inv-1' });

async function visibleItems(queue: QueueClient): Promise<WorkItem[]> {
  const peeked = await queue.peekMessages({ numberOfMessages: 32 });
  return peeked.peekedMessageItems.map((m) => {
    const d = decodeWorkMessage(Buffer.from(m.messageText, 'base64').toString('utf8'));
    if (!d.ok) throw new Error(d.error);
    return d.item;
  });
}

const request = { capability: 'workspaces' as const, target: TARGET, reason: 'workspace written', trigger: { kind: 'event' as const, id: 'e-1' } };

describe('enqueue', () => {
  it('queues base64 JSON messages that never expire, with ids and the enqueue time', async () => {
    const { pipeline, queue, clock } = setup();
    const items = await pipeline.enqueue([request, { ...request, target: `${TARGET}2` }]);
    expect(items).toHaveLength(2);
    expect(items[0]?.enqueuedAt).toBe(clock.now().toISOString());
    const peeked = await queue.peekMessages({ numberOfMessages: 5 });
    expect(peeked.peekedMessageItems.map((m) => m.messageText)).toEqual(items.map(encodeWorkItem));
    expect(peeked.peekedMessageItems[0]?.expiresOn?.getUTCFullYear()).toBe(9999);
  });

  it('keeps delayed work invisible until its time', async () => {
    const { pipeline, queue } = setup();
    await pipeline.enqueue([request], { delayMs: 30_000 });
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
    expect((await queue.peekMessages()).peekedMessageItems).toHaveLength(0);
  });
});

describe('enqueue with a delay: folding into work still invisible', () => {
  const other = { ...request, target: `${TARGET}2` };
  const count = async (queue: QueueClient): Promise<number> => (await queue.getProperties()).approximateMessagesCount ?? -1;

  it('queues one message per target while it is invisible, stamped with the time it becomes visible', async () => {
    const { pipeline, queue, clock } = setup();
    const [a] = await pipeline.enqueue([request], { delayMs: 1000 });
    expect(a?.enqueuedAt).toBe(new Date(clock.now().getTime() + 1000).toISOString());
    clock.advance(100);
    const again = await pipeline.enqueue([{ ...request, target: TARGET.toUpperCase(), reason: 'again' }, other, other], { delayMs: 1000 });
    expect(again[0]?.id).toBe(a?.id);
    expect(again[1]?.id).not.toBe(a?.id);
    expect(again[2]?.id).toBe(again[1]?.id);
    // Concurrent requests see the item being sent and wait for it instead of sending their own.
    const burst = await Promise.all(Array.from({ length: 20 }, () => pipeline.enqueue([request], { delayMs: 1000 })));
    expect(new Set(burst.map((b) => b[0]?.id))).toEqual(new Set([a?.id]));
    expect(await count(queue)).toBe(2);
  });

  it('queues again once the earlier message is visible (it may have started)', async () => {
    const { pipeline, queue } = setup();
    const [a] = await pipeline.enqueue([request], { delayMs: 1000 });
    const deadline = Date.now() + 5000;
    while ((await queue.peekMessages()).peekedMessageItems.length === 0) {
      if (Date.now() > deadline) throw new Error('the delayed message never became visible');
      await new Promise((r) => setTimeout(r, 50));
    }
    const [b] = await pipeline.enqueue([request], { delayMs: 1000 });
    expect(b?.id).not.toBe(a?.id);
    expect(await count(queue)).toBe(2);
  });

  it('never folds an immediate request, nor one due before the invisible item', async () => {
    const { pipeline, queue } = setup();
    const [late] = await pipeline.enqueue([request], { delayMs: 30_000 });
    const [now] = await pipeline.enqueue([request]);
    const [soon] = await pipeline.enqueue([request], { delayMs: 1000 });
    expect(new Set([late?.id, now?.id, soon?.id]).size).toBe(3);
    // A later long-delayed request is covered by the sooner one.
    const [later] = await pipeline.enqueue([request], { delayMs: 30_000 });
    expect(later?.id).toBe(soon?.id);
    expect(await count(queue)).toBe(3);
  });

  it('a request folded into an item whose send failed is queued after all', async () => {
    const id = randomBytes(5).toString('hex');
    class FlakyQueue extends QueueClient {
      failures = 0;
      override async sendMessage(text: string, options?: QueueSendMessageOptions): Promise<QueueSendMessageResponse> {
        if (this.failures > 0) {
          this.failures--;
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('The storage account is unavailable');
        }
        return super.sendMessage(text, options);
      }
    }
    const queue = new FlakyQueue(storage(), `work-${id}`);
    const { pipeline } = setup({ queue });
    await queue.createIfNotExists();
    queue.failures = 1;
    const [first, second] = await Promise.allSettled([pipeline.enqueue([request], { delayMs: 1000 }), pipeline.enqueue([request], { delayMs: 1000 })]);
    expect(first.status).toBe('rejected');
    expect(second.status).toBe('fulfilled');
    expect((await queue.getProperties()).approximateMessagesCount).toBe(1);
  });

  it('coalescing does not count a folded request as covered by a reconcile that started before it', async () => {
    const { pipeline, clock } = setup();
    const [a] = await pipeline.enqueue([request], { delayMs: 1000 });
    // Another message for the target runs a reconcile 200 ms later (before the request below)…
    clock.advance(200);
    const [now] = await pipeline.enqueue([request]);
    expect(await pipeline.handle(now, meta())).toMatchObject({ status: 'reconciled' });
    // …then a change arrives and is folded into `a`, which has not started.
    clock.advance(300);
    const [folded] = await pipeline.enqueue([request], { delayMs: 1000 });
    expect(folded?.id).toBe(a?.id);
    clock.advance(600);
    // `a` must lead to a reconcile after the change, not be "covered" by the earlier one.
    expect((await pipeline.handle(a, meta())).status).toBe('deferred');
  });
});

describe('handle', () => {
  it('claims and reconciles a fresh target, then completes messages queued before that reconcile started', async () => {
    const { pipeline, calls, clock, store } = setup();
    const [early] = await pipeline.enqueue([request]);
    clock.advance(10);
    const [first] = await pipeline.enqueue([request]);
    clock.advance(10);
    expect(await pipeline.handle(first, meta())).toMatchObject({ status: 'reconciled', detail: 'ok' });
    expect(calls).toHaveLength(1);
    expect(await pipeline.handle(early, meta())).toMatchObject({ status: 'covered' });
    expect(calls).toHaveLength(1);
    const st = await store.read('workspaces', TARGET);
    expect(st?.state).toMatchObject({ running: false, runs: 1, lastOutcome: 'succeeded', lastSuccessStartedAt: clock.now().getTime() });
  });

  it('folds work that arrives during a reconcile into exactly one follow-up, queued when it finishes', async () => {
    let release: () => void = () => undefined;
    const started: WorkItem[] = [];
    const blocking: Reconciler = (item) => {
      started.push(item);
      return new Promise((r) => {
        release = () => r({ summary: 'done' });
      });
    };
    const { pipeline, clock, queue } = setup({ coalesceWindowMs: 0 }, blocking);
    const [a] = await pipeline.enqueue([request]);
    clock.advance(5);
    const running = pipeline.handle(a, meta());
    while (started.length === 0) await new Promise((r) => setTimeout(r, 5));
    clock.advance(5);
    const [b, c] = await pipeline.enqueue([request, request]);
    expect(await pipeline.handle(b, meta())).toMatchObject({ status: 'deferred' });
    expect(await pipeline.handle(c, meta())).toMatchObject({ status: 'coalesced' });
    // Nothing queued yet: the claimant queues the follow-up when it finishes.
    expect((await visibleItems(queue)).filter((i) => i.trigger.kind === 'followup')).toHaveLength(0);
    release();
    await expect(running).resolves.toMatchObject({ status: 'reconciled' });
    const followUps = (await visibleItems(queue)).filter((i) => i.trigger.kind === 'followup');
    expect(followUps).toHaveLength(1);
    expect(followUps[0]).toMatchObject({ capability: 'workspaces', target: TARGET, trigger: { kind: 'followup', id: a?.id } });
    // The follow-up runs the one extra reconcile.
    clock.advance(5);
    const p = pipeline.handle(followUps[0], meta());
    while (started.length < 2) await new Promise((r) => setTimeout(r, 5));
    release();
    await expect(p).resolves.toMatchObject({ status: 'reconciled' });
  });

  it('defers work for a target reconciled moments ago to one follow-up at the end of the window', async () => {
    const { pipeline, clock, queue, calls, store } = setup();
    const [a] = await pipeline.enqueue([request]);
    await pipeline.handle(a, meta());
    clock.advance(1000);
    const [b, c] = await pipeline.enqueue([request, request]);
    expect(await pipeline.handle(b, meta())).toMatchObject({ status: 'deferred', detail: 'one follow-up reconcile in 4 s' });
    expect(await pipeline.handle(c, meta())).toMatchObject({ status: 'coalesced' });
    expect(calls).toHaveLength(1);
    // a, b and c (the host deletes them, not the pipeline) plus the one invisible follow-up.
    expect((await queue.getProperties()).approximateMessagesCount).toBe(4);
    expect((await visibleItems(queue)).filter((i) => i.trigger.kind === 'followup')).toHaveLength(0);
    const st = await store.read('workspaces', TARGET);
    expect(st?.state.followUp).toBe('queued');
  });

  it('takes over a claim whose lease ran out (a crashed host) and a redelivered own claim', async () => {
    const { pipeline, clock, store, calls, sink } = setup({ leaseMs: 1000 });
    const [a] = await pipeline.enqueue([request]);
    clock.advance(10);
    await store.write('workspaces', { ...emptyState(TARGET), running: true, claimId: 'dead-host', runStartedAt: clock.now().getTime(), leaseUntil: clock.now().getTime() + 1000 }, undefined);
    clock.advance(500);
    const [b] = await pipeline.enqueue([request]);
    expect(await pipeline.handle(b, meta())).toMatchObject({ status: 'deferred' });
    clock.advance(1000);
    expect(await pipeline.handle(a, meta())).toMatchObject({ status: 'reconciled' });
    expect(sink.text()).toContain('Took over the target');

    const cur = await store.read('workspaces', TARGET);
    if (!cur) throw new Error('no state');
    clock.advance(10_000);
    const [c] = await pipeline.enqueue([request]);
    clock.advance(10);
    await store.write('workspaces', { ...cur.state, running: true, claimId: c?.id ?? '', runStartedAt: clock.now().getTime(), leaseUntil: clock.now().getTime() + 60_000 }, cur.etag);
    expect(await pipeline.handle(c, meta(2))).toMatchObject({ status: 'reconciled' });
    expect(calls).toHaveLength(2);
  });

  it('records and alerts a terminal failure and completes the message', async () => {
    const { pipeline, alerter, audit, store } = setup({}, async () => {
      throw new TerminalError('AuthorizationFailed', 'Warden may not read this workspace');
    });
    const [a] = await pipeline.enqueue([request]);
    await expect(pipeline.handle(a, meta())).resolves.toMatchObject({ status: 'failed', detail: 'Warden may not read this workspace' });
    expect(alerter.sent).toEqual([
      expect.objectContaining({ type: 'Warden.Work.Failed', subject: TARGET, severity: 'critical', details: expect.objectContaining({ errorClass: 'terminal', workItemId: a?.id }) }),
    ]);
    expect(audit.records).toEqual([
      expect.objectContaining({ capability: 'workspaces', target: TARGET, action: 'reconcile', outcome: 'failed', error: { code: 'AuthorizationFailed', message: 'Warden may not read this workspace' }, trigger: request.trigger }),
    ]);
    expect((await store.read('workspaces', TARGET))?.state).toMatchObject({ running: false, lastOutcome: 'failed' });
  });

  it('throws transient failures for the host to retry, alerting only on the last try', async () => {
    const { pipeline, alerter, calls } = setup({ maxDequeueCount: 3 }, async (item) => {
      calls.push(item);
      throw new TransientError('ServiceUnavailable', 'ARM answered 503');
    });
    const [a] = await pipeline.enqueue([request]);
    await expect(pipeline.handle(a, meta(1))).rejects.toThrow('ARM answered 503');
    await expect(pipeline.handle(a, meta(2))).rejects.toThrow('ARM answered 503');
    expect(alerter.sent).toHaveLength(0);
    // The retry of a failed message runs again: its own failed run covers nothing.
    expect(calls).toHaveLength(2);
    await expect(pipeline.handle(a, meta(3))).rejects.toThrow('ARM answered 503');
    expect(alerter.sent).toEqual([expect.objectContaining({ type: 'Warden.Work.Failed', summary: expect.stringContaining('failed 3 times; the message moves to warden-work-poison') })]);
  });

  it('retries a reconcile that reports retryable change failures', async () => {
    const { pipeline } = setup({}, async () => ({ retryable: true, summary: '1 change failed' }));
    const [a] = await pipeline.enqueue([request]);
    await expect(pipeline.handle(a, meta())).rejects.toMatchObject({ name: 'TransientError', code: 'ReconcileIncomplete' });
  });

  it('records and alerts an unparsable message instead of retrying it forever', async () => {
    const { pipeline, alerter, audit } = setup();
    await expect(pipeline.handle('{"capability":"dns"}', { ...meta(), messageId: 'msg-9' })).resolves.toMatchObject({ status: 'invalid' });
    expect(alerter.sent[0]).toMatchObject({ type: 'Warden.Work.Failed', subject: 'msg-9' });
    expect(audit.records[0]).toMatchObject({ capability: 'work', target: 'msg-9', outcome: 'failed' });
  });

  it('treats a capability without a reconciler as terminal', async () => {
    const { pipeline, alerter } = setup();
    const [a] = await pipeline.enqueue([{ ...request, capability: 'credentials', target: 'app-1' }]);
    await expect(pipeline.handle(a, meta())).resolves.toMatchObject({ status: 'failed' });
    expect(alerter.sent[0]?.summary).toContain('No reconciler');
  });

  it('renews the claim while a long reconcile runs, so other messages do not take the target over', async () => {
    let release: () => void = () => undefined;
    let entered = false;
    const { pipeline, store } = setup({ leaseMs: 300, clock: { now: () => new Date() } }, () => {
      entered = true;
      return new Promise((r) => {
        release = () => r({});
      });
    });
    const [a] = await pipeline.enqueue([request]);
    const p = pipeline.handle(a, meta());
    while (!entered) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 700));
    const [b] = await pipeline.enqueue([request]);
    expect(await pipeline.handle(b, meta())).toMatchObject({ status: 'deferred', detail: expect.stringContaining('running reconcile') });
    expect((await store.read('workspaces', TARGET))?.state.leaseUntil).toBeGreaterThan(Date.now());
    release();
    await p;
  });
});

describe('sweep', () => {
  it('queues every target of every capability and reports a failing lister after queueing the rest', async () => {
    const { pipeline, queue } = setup({
      targets: {
        rbac: async () => ['g-1', 'g-2', 'g-1'],
        compute: async () => {
          throw new TransientError('ServiceUnavailable', 'ARM is down');
        },
      },
    });
    await expect(pipeline.sweep({ kind: 'schedule', id: 'inv-s' })).rejects.toThrow(AggregateError);
    const items = await visibleItems(queue);
    expect(items.map((i) => [i.capability, i.target, i.reason, i.trigger.kind]).sort()).toEqual([
      ['rbac', 'g-1', 'sweep', 'schedule'],
      ['rbac', 'g-2', 'sweep', 'schedule'],
    ]);
  });

  it('reports what it queued', async () => {
    const { pipeline } = setup({ targets: { rbac: async () => ['g-1'], workspaces: async () => [TARGET, `${TARGET}2`] } });
    await expect(pipeline.sweep({ kind: 'schedule' })).resolves.toEqual({ queued: { rbac: 1, workspaces: 2 } });
  });

  it('retries the queued alerts each time, even when a lister fails, and warns about those still waiting', async () => {
    const { pipeline, alerter, sink } = setup({ targets: { rbac: async () => { throw new TransientError('ServiceUnavailable', 'Graph is down'); } } });
    alerter.flushOutbox = async () => {
      alerter.flushes++;
      return { delivered: 1, failed: 2, dropped: 0, pending: 2 };
    };
    await expect(pipeline.sweep({ kind: 'schedule' })).rejects.toThrow(AggregateError);
    expect(alerter.flushes).toBe(1);
    expect(sink.records.find((r) => r.message === 'Alerts still waiting for their sinks after the sweep')).toMatchObject({ level: 'warn', fields: { pending: 2, failed: 2 } });
  });
});

describe('newWorkItem', () => {
  it('gives each item a unique id', () => {
    const a = newWorkItem(request, new Date());
    const b = newWorkItem(request, new Date());
    expect(a.id).not.toBe(b.id);
  });
});
