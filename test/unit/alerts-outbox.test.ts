/**
 * The alert outbox: a delivery a sink failed is kept in the StateStore and retried by later calls
 * (with backoff) or by an explicit flush until it arrives, so a finding that comes up only once is
 * not lost; dropped only after the age limit, with an error in the log.
 */
import fc from 'fast-check';
import type { Finding } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLogger, memorySink } from '../../shared/logging';
import { MemoryStateStore, type StateStore } from '../../shared/ports/state';
import { forgetSecret, registerSecret } from '../../shared/redact';
import {
  ALERT_OUTBOX_PARTITION, ALERT_STATE_PARTITION, backoffMs, decideEntry, DedupingAlerter, OUTBOX_DEFAULTS,
  type AlerterOptions, type AlertSink, type OutboxEntry, type SinkName,
} from '../../shared/alerts';

const APP = '7e57a11e-0000-4000-8000-000000000311';

const rotated = (over: Partial<Finding> = {}): Finding => ({
  type: 'Warden.Credentials.Rotated',
  subject: APP,
  severity: 'info',
  summary: 'Rotated the client secret of app billing-api',
  details: { newKeyId: 'k-2', vault: 'kv1' },
  actions: ['Stored the new secret in Key Vault'],
  ...over,
});

const expiring = (): Finding => ({
  type: 'Warden.Credentials.Expiring',
  subject: `${APP}/passwordCredentials/k-1`,
  severity: 'warning',
  summary: 'A client secret expires in 12 days',
  details: { endDateTime: '2026-03-13T00:00:00Z' },
  actions: [],
});

interface FakeSink extends AlertSink {
  received: Array<{ finding: Finding; id: string; time: string }>;
  calls: number;
  down: boolean;
}

function fakeSink(name: SinkName): FakeSink {
  const sink: FakeSink = {
    name,
    received: [],
    calls: 0,
    down: false,
    accepts: () => true,
    async send(f, m) {
      sink.calls++;
      if (sink.down) throw new Error(`${name} answered 503`);
      sink.received.push({ finding: f, id: m.id, time: m.time.toISOString() });
    },
  };
  return sink;
}

function setup(opts: { state?: StateStore; repeatHours?: number; outbox?: AlerterOptions['outbox']; sinks?: SinkName[] } = {}) {
  const names = opts.sinks ?? ['eventGrid', 'webhook'];
  const sinks = Object.fromEntries(names.map((n) => [n, fakeSink(n)])) as Record<SinkName, FakeSink>;
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const log = memorySink();
  const state = opts.state ?? new MemoryStateStore();
  const make = (): DedupingAlerter =>
    new DedupingAlerter(
      { sinks: Object.values(sinks), repeatHours: opts.repeatHours ?? 24, state, clock, logger: createLogger(log) },
      { sinkTimeoutMs: 1000, ...(opts.outbox ? { outbox: opts.outbox } : {}) },
    );
  return { sinks, clock, log, state, alerter: make(), make };
}

async function outbox(state: StateStore): Promise<OutboxEntry[]> {
  return (await state.list<OutboxEntry>(ALERT_OUTBOX_PARTITION)).map((r) => r.value);
}

const outcomes = (ds: Array<{ sink: string; outcome: string }>): Record<string, string> => Object.fromEntries(ds.map((d) => [d.sink, d.outcome]));
const S = 1000;

describe('outbox policy', () => {
  it('backs off exponentially from the base delay, capped', () => {
    const p = { baseDelayMs: 30 * S, maxDelayMs: 3600 * S };
    expect([1, 2, 3, 4, 7, 8, 50].map((n) => backoffMs(n, p))).toEqual([30 * S, 60 * S, 120 * S, 240 * S, 1920 * S, 3600 * S, 3600 * S]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (n) => {
        expect(backoffMs(n + 1, p)).toBeGreaterThanOrEqual(backoffMs(n, p));
        expect(backoffMs(n, p)).toBeLessThanOrEqual(p.maxDelayMs);
      }),
    );
  });

  it('decides expired before leased before waiting', () => {
    const now = Date.parse('2026-03-08T00:00:00Z');
    const base: OutboxEntry = {
      sink: 'webhook', finding: rotated(), key: 'k', hash: 'h', alertId: 'a', time: '2026-03-07T00:00:00Z',
      createdAt: '2026-03-07T00:00:00Z', attempts: 1, nextAttemptAt: '2026-03-08T00:00:01Z',
    };
    const week = OUTBOX_DEFAULTS.maxAgeMs;
    const table: Array<[Partial<OutboxEntry>, boolean, string]> = [
      [{}, false, 'waiting'],
      [{}, true, 'due'],
      [{ nextAttemptAt: '2026-03-08T00:00:00Z' }, false, 'due'],
      [{ leaseUntil: '2026-03-08T00:00:05Z' }, true, 'leased'],
      [{ leaseUntil: '2026-03-07T23:59:59Z' }, true, 'due'],
      [{ createdAt: '2026-03-01T00:00:00Z', leaseUntil: '2026-03-08T00:00:05Z' }, false, 'expired'],
      [{ createdAt: '2026-03-01T00:00:01Z' }, true, 'due'],
    ];
    for (const [over, ignoreBackoff, want] of table) expect([over, ignoreBackoff, decideEntry({ ...base, ...over }, now, week, ignoreBackoff)]).toEqual([over, ignoreBackoff, want]);
  });
});

describe('DedupingAlerter outbox', () => {
  it('keeps a one-off alert a sink failed, and delivers it on a later call once its backoff is over', async () => {
    const { sinks, clock, state, alerter, log } = setup();
    sinks.webhook.down = true;
    expect(outcomes(await alerter.send([rotated()]))).toEqual({ eventGrid: 'sent', webhook: 'failed' });
    expect(await outbox(state)).toEqual([
      expect.objectContaining({ sink: 'webhook', finding: rotated(), attempts: 1, createdAt: '2026-03-01T00:00:00.000Z', nextAttemptAt: '2026-03-01T00:00:30.000Z', lastError: 'webhook answered 503' }),
    ]);

    // The sink is back, but the rotation never comes up again: other findings' calls carry it.
    sinks.webhook.down = false;
    clock.advance(10 * S);
    await alerter.send([expiring()]);
    expect(sinks.webhook.received.map((r) => r.finding.type)).toEqual(['Warden.Credentials.Expiring']);
    clock.advance(20 * S);
    expect(outcomes(await alerter.send([expiring()]))).toEqual({ eventGrid: 'suppressed', webhook: 'suppressed' });
    expect(sinks.webhook.received.map((r) => r.finding.type)).toEqual(['Warden.Credentials.Expiring', 'Warden.Credentials.Rotated']);
    // The same event as the first attempt: the receiver can tell a retry from a new alert.
    const original = sinks.eventGrid.received.find((r) => r.finding.type === 'Warden.Credentials.Rotated');
    expect(sinks.webhook.received[1]).toEqual({ finding: rotated(), id: original?.id, time: original?.time });
    expect(await outbox(state)).toEqual([]);
    expect(log.records.some((r) => r.level === 'info' && r.message === 'Sent queued alert to webhook')).toBe(true);
  });

  it('flushOutbox retries at once, whatever the backoff, and reports what it did', async () => {
    const { sinks, state, alerter } = setup();
    sinks.webhook.down = true;
    sinks.eventGrid.down = true;
    await alerter.send([rotated()]);
    expect(await alerter.flushOutbox()).toEqual({ delivered: 0, failed: 2, dropped: 0, pending: 2 });
    sinks.webhook.down = false;
    sinks.eventGrid.down = false;
    expect(await alerter.flushOutbox()).toEqual({ delivered: 2, failed: 0, dropped: 0, pending: 0 });
    expect(sinks.webhook.received).toHaveLength(1);
    expect(sinks.eventGrid.received).toHaveLength(1);
    expect(await outbox(state)).toEqual([]);
    expect(await alerter.flushOutbox()).toEqual({ delivered: 0, failed: 0, dropped: 0, pending: 0 });
  });

  it('backs off further with each failure, and tries a dead sink once per pass', async () => {
    const { sinks, clock, state, alerter } = setup({ sinks: ['webhook'] });
    sinks.webhook.down = true;
    await alerter.send([rotated(), rotated({ subject: 'other-app' })]);
    expect(sinks.webhook.calls).toBe(2);
    clock.advance(30 * S);
    expect(await alerter.send([])).toEqual([]);
    // Both were due; the first retry failed, so the pass did not knock on the dead sink again.
    expect(sinks.webhook.calls).toBe(3);
    const entries = await outbox(state);
    expect(entries.map((e) => e.attempts).sort()).toEqual([1, 2]);
    expect(entries.find((e) => e.attempts === 2)?.nextAttemptAt).toBe('2026-03-01T00:01:30.000Z');
    // The one the pass skipped is still due; the one retried waits its doubled backoff.
    clock.advance(1 * S);
    await alerter.send([]);
    expect(sinks.webhook.calls).toBe(4);
    expect((await outbox(state)).map((e) => e.attempts)).toEqual([2, 2]);
    clock.advance(1 * S);
    await alerter.send([]);
    expect(sinks.webhook.calls).toBe(4);
  });

  it('drops an alert only after the age limit, with an error naming it', async () => {
    const { sinks, clock, state, alerter, log } = setup({ sinks: ['webhook'] });
    sinks.webhook.down = true;
    await alerter.send([rotated()]);
    clock.advance(7 * 24 * 3600 * S - 1);
    expect(await alerter.flushOutbox()).toMatchObject({ dropped: 0, pending: 1 });
    expect(await outbox(state)).toHaveLength(1);
    clock.advance(1);
    expect(await alerter.flushOutbox()).toEqual({ delivered: 0, failed: 0, dropped: 1, pending: 0 });
    expect(await outbox(state)).toEqual([]);
    const err = log.records.find((r) => r.level === 'error' && r.message.startsWith('Dropping an alert that never reached webhook'));
    expect(err?.fields).toMatchObject({ sink: 'webhook', alertType: 'Warden.Credentials.Rotated', subject: APP, attempts: 2, lastError: 'webhook answered 503' });
  });

  it('retries at most `batch` alerts per call, oldest first', async () => {
    const { sinks, clock, state, alerter } = setup({ sinks: ['webhook'], outbox: { batch: 2 } });
    sinks.webhook.down = true;
    for (let i = 0; i < 5; i++) {
      await alerter.send([rotated({ subject: `app-${i}` })]);
      clock.advance(S);
    }
    sinks.webhook.down = false;
    expect(await alerter.flushOutbox()).toEqual({ delivered: 2, failed: 0, dropped: 0, pending: 3 });
    expect(sinks.webhook.received.map((r) => r.finding.subject)).toEqual(['app-0', 'app-1']);
    expect(await outbox(state)).toHaveLength(3);
  });

  it('does not send a recurring finding twice: a fresh delivery clears its queued copy', async () => {
    const { sinks, clock, state, alerter } = setup();
    sinks.webhook.down = true;
    await alerter.send([expiring()]);
    sinks.webhook.down = false;
    // The next reconcile finds it again (the failed sink's mark was released): sent afresh.
    expect(outcomes(await alerter.send([expiring()]))).toEqual({ eventGrid: 'suppressed', webhook: 'sent' });
    expect(await outbox(state)).toEqual([]);
    clock.advance(3600 * S);
    await alerter.flushOutbox();
    expect(sinks.webhook.received).toHaveLength(1);
  });

  it('records a late delivery in the de-duplication mark, so the finding recurring is suppressed', async () => {
    const { sinks, state, alerter } = setup();
    sinks.webhook.down = true;
    await alerter.send([expiring()]);
    sinks.webhook.down = false;
    await alerter.flushOutbox();
    expect(outcomes(await alerter.send([expiring()]))).toEqual({ eventGrid: 'suppressed', webhook: 'suppressed' });
    expect(sinks.webhook.received).toHaveLength(1);
    expect((await state.list(ALERT_STATE_PARTITION))).toHaveLength(1);
  });

  it('lets only one of two instances retry the same queued alert', async () => {
    const { sinks, alerter, make } = setup({ sinks: ['webhook'] });
    sinks.webhook.down = true;
    await alerter.send([rotated()]);
    sinks.webhook.down = false;
    const other = make();
    const [a, b] = await Promise.all([alerter.flushOutbox(), other.flushOutbox()]);
    expect(a.delivered + b.delivered).toBe(1);
    expect(sinks.webhook.received).toHaveLength(1);
  });

  it('keeps the retry of an instance that died mid-attempt for after its lease', async () => {
    const { sinks, clock, state, alerter } = setup({ sinks: ['webhook'] });
    sinks.webhook.down = true;
    await alerter.send([rotated()]);
    const [row] = await state.list<OutboxEntry>(ALERT_OUTBOX_PARTITION);
    if (!row) throw new Error('nothing queued');
    await state.put(ALERT_OUTBOX_PARTITION, row.key, { ...row.value, leaseUntil: new Date(clock.now().getTime() + 10 * S).toISOString() });
    sinks.webhook.down = false;
    expect(await alerter.flushOutbox()).toEqual({ delivered: 0, failed: 0, dropped: 0, pending: 1 });
    clock.advance(10 * S);
    expect(await alerter.flushOutbox()).toEqual({ delivered: 1, failed: 0, dropped: 0, pending: 0 });
  });

  it('drops, loudly, a queued alert whose sink is no longer configured', async () => {
    const state = new MemoryStateStore();
    const first = setup({ state, sinks: ['eventGrid', 'webhook'] });
    first.sinks.webhook.down = true;
    await first.alerter.send([rotated()]);
    const later = setup({ state, sinks: ['eventGrid'] });
    expect(await later.alerter.flushOutbox()).toEqual({ delivered: 0, failed: 0, dropped: 1, pending: 0 });
    expect(later.log.records.some((r) => r.level === 'error' && r.message.includes('no longer takes it'))).toBe(true);
  });

  it('stores only the redacted finding', async () => {
    const secret = 'zz7-Outbox-Secret-Value-9';
    registerSecret(secret);
    try {
      const { sinks, state, alerter } = setup();
      sinks.webhook.down = true;
      await alerter.send([rotated({ summary: `leaked ${secret}`, details: { secretText: secret } })]);
      const stored = JSON.stringify(await state.list(ALERT_OUTBOX_PARTITION));
      expect(stored).toContain('[REDACTED]');
      expect(stored).not.toContain(secret);
    } finally {
      forgetSecret(secret);
    }
  });

  it('still delivers to working sinks and never throws when the outbox store is down', async () => {
    const inner = new MemoryStateStore();
    const broken: StateStore = {
      get: (p, k) => inner.get(p, k),
      put: (p, k, v, o) => (p === ALERT_OUTBOX_PARTITION ? Promise.reject(new Error('storage unavailable')) : inner.put(p, k, v, o)),
      delete: (p, k) => inner.delete(p, k),
      list: (p) => (p === ALERT_OUTBOX_PARTITION ? Promise.reject(new Error('storage unavailable')) : inner.list(p)),
    };
    const { sinks, log, alerter } = setup({ state: broken });
    sinks.webhook.down = true;
    expect(outcomes(await alerter.send([rotated()]))).toEqual({ eventGrid: 'sent', webhook: 'failed' });
    await expect(alerter.flushOutbox()).resolves.toEqual({ delivered: 0, failed: 0, dropped: 0, pending: 0 });
    expect(log.records.some((r) => r.level === 'error' && r.message.startsWith('Could not queue the failed alert for webhook'))).toBe(true);
    // The old fallback still holds: the released mark lets the finding, should it recur, be sent again.
    sinks.webhook.down = false;
    expect(outcomes(await alerter.send([rotated()]))).toEqual({ eventGrid: 'suppressed', webhook: 'sent' });
  });
});
