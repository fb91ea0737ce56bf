import { DAY_MS, ManualClock } from '../../shared/clock';
import { createFollowUps, followUpDelay } from '../../shared/compute/followup';
import { createLogger, memorySink } from '../../shared/logging';
import { ConcurrencyError, MemoryStateStore } from '../../shared/ports/state';
import type { WorkRequest } from '../../shared/work/item';

const TARGET = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/cc1';

function setup(options: Parameters<typeof createFollowUps>[1] = {}) {
  const state = new MemoryStateStore();
  const clock = new ManualClock('2026-03-01T02:00:00Z');
  const queued: Array<{ items: WorkRequest[]; delayMs: number | undefined }> = [];
  const sink = memorySink();
  const followUps = createFollowUps(
    {
      state,
      clock,
      logger: createLogger(sink),
      enqueue: async (items, o) => {
        queued.push({ items, delayMs: o?.delayMs });
      },
    },
    options,
  );
  return { state, clock, queued, sink, followUps };
}

describe('followUpDelay', () => {
  it.each([
    [1, 30_000],
    [2, 60_000],
    [3, 120_000],
    [5, 480_000],
    [6, 900_000],
    [50, 900_000],
  ])('attempt %i waits %i ms', (attempt, ms) => {
    expect(followUpDelay(attempt, { baseDelayMs: 30_000, maxDelayMs: 900_000 })).toBe(ms);
  });
});

describe('createFollowUps', () => {
  it('queues a delayed follow-up work item of the same capability and target', async () => {
    const { followUps, queued } = setup();
    const r = await followUps.schedule('compute', TARGET, 'still creating');
    expect(r).toEqual({ scheduled: true, attempt: 1, delayMs: 30_000 });
    expect(queued).toEqual([
      {
        delayMs: 30_000,
        items: [{ capability: 'compute', target: TARGET, reason: 'Re-check: still creating', trigger: { kind: 'followup', id: 'recheck-1' } }],
      },
    ]);
  });

  it('backs off on each further re-check of the same target (ids compare case-insensitively)', async () => {
    const { followUps, queued } = setup();
    await followUps.schedule('compute', TARGET, 'still creating');
    await followUps.schedule('compute', TARGET.toUpperCase(), 'still creating');
    await followUps.schedule('compute', TARGET, 'still creating');
    expect(queued.map((q) => q.delayMs)).toEqual([30_000, 60_000, 120_000]);
  });

  it('stops after maxAttempts and leaves the target to the sweep', async () => {
    const { followUps, queued, sink } = setup({ maxAttempts: 2 });
    await followUps.schedule('compute', TARGET, 'still creating');
    await followUps.schedule('compute', TARGET, 'still creating');
    const third = await followUps.schedule('compute', TARGET, 'still creating');
    expect(third.scheduled).toBe(false);
    expect(queued).toHaveLength(2);
    expect(sink.text()).toContain('leaving it to the next sweep');
  });

  it('starts a new episode when the last one began long ago', async () => {
    const { followUps, queued, clock } = setup({ maxAttempts: 1 });
    await followUps.schedule('compute', TARGET, 'still updating');
    clock.advance(DAY_MS + 1);
    const r = await followUps.schedule('compute', TARGET, 'still updating');
    expect(r).toMatchObject({ scheduled: true, attempt: 1 });
    expect(queued).toHaveLength(2);
  });

  it('counts per capability', async () => {
    const { followUps, queued } = setup({ maxAttempts: 1 });
    await followUps.schedule('compute', TARGET, 'x');
    await followUps.schedule('workspaces', TARGET, 'x');
    expect(queued).toHaveLength(2);
  });

  it('queues nothing when a concurrent reconcile counted the same re-check first', async () => {
    const { followUps, queued, state } = setup();
    jest.spyOn(state, 'put').mockRejectedValueOnce(new ConcurrencyError());
    const r = await followUps.schedule('compute', TARGET, 'still creating');
    expect(r.scheduled).toBe(false);
    expect(queued).toEqual([]);
  });

  it('fails loudly when the queue is unavailable (the reconcile is retried)', async () => {
    const state = new MemoryStateStore();
    const f = createFollowUps({
      state,
      clock: new ManualClock(),
      logger: createLogger(memorySink()),
      enqueue: async () => {
        throw new Error('queue down');
      },
    });
    await expect(f.schedule('compute', TARGET, 'x')).rejects.toThrow('queue down');
  });
});
