/** Alert payload builders, fingerprints, and the de-duplicating alerter on in-memory ports. */
import { EventGridDeserializer } from '@azure/eventgrid';
import fc from 'fast-check';
import type { Finding } from '../../shared/capability';
import { ManualClock } from '../../shared/clock';
import { createLogger, memorySink } from '../../shared/logging';
import { ConcurrencyError, MemoryStateStore, type StateStore } from '../../shared/ports/state';
import { forgetSecret, registerSecret } from '../../shared/redact';
import {
  ALERT_STATE_PARTITION, DedupingAlerter, findingHash, findingKey, mailRecipients, stableStringify,
  toAdaptiveCardMessage, toCloudEvent, toMail, toSlackMessage, webhookFormatFor, type AlertSink, type SinkName,
} from '../../shared/alerts';
import { adaptiveCardMessageProblems } from '../../emulator/eventgrid';

const WS = '/subscriptions/8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1';

const finding = (over: Partial<Finding> = {}): Finding => ({
  type: 'Warden.Compute.IdentityMissing',
  subject: `${WS}/computes/cc1`,
  severity: 'critical',
  summary: 'Compute cc1 runs without a managed identity',
  details: { computeType: 'AmlCompute', identity: 'None', nested: { a: 1 } },
  actions: ['Assigned a system-assigned identity'],
  ...over,
});

const meta = { id: '0b0e4a44-8f8e-4c55-9c0e-0d5d3b3b6a01', time: new Date('2026-01-02T03:04:05Z') };

describe('payload builders', () => {
  it('builds a CloudEvent 1.0 the Event Grid consumer SDK accepts', async () => {
    const ce = toCloudEvent(finding(), meta);
    expect(ce).toEqual({
      specversion: '1.0',
      id: meta.id,
      source: '/warden',
      type: 'Warden.Compute.IdentityMissing',
      subject: `${WS}/computes/cc1`,
      time: '2026-01-02T03:04:05.000Z',
      datacontenttype: 'application/json',
      data: {
        severity: 'critical',
        summary: 'Compute cc1 runs without a managed identity',
        details: { computeType: 'AmlCompute', identity: 'None', nested: { a: 1 } },
        actions: ['Assigned a system-assigned identity'],
      },
    });
    const [parsed] = await new EventGridDeserializer().deserializeCloudEvents(JSON.stringify(ce));
    expect(parsed?.type).toBe('Warden.Compute.IdentityMissing');
    expect(parsed?.source).toBe('/warden');
  });

  it.each(['info', 'warning', 'critical'] as const)('builds a valid Teams Adaptive Card message for %s findings', (severity) => {
    const msg = toAdaptiveCardMessage(finding({ severity }), meta);
    expect(adaptiveCardMessageProblems(msg)).toEqual([]);
    const text = JSON.stringify(msg);
    expect(text).toContain('Compute cc1 runs without a managed identity');
    expect(text).toContain(`${WS}/computes/cc1`);
    expect(text).toContain(severity === 'info' ? 'Info' : severity === 'warning' ? 'Warning' : 'Critical');
  });

  it('keeps the card valid with no details and no actions', () => {
    expect(adaptiveCardMessageProblems(toAdaptiveCardMessage(finding({ details: {}, actions: [] }), meta))).toEqual([]);
  });

  it('builds a Slack message with a fallback text and escaped mrkdwn', () => {
    const msg = toSlackMessage(finding({ summary: 'a <b> & c' }), meta) as { text: string; blocks: Array<{ type: string; text?: { text: string } }> };
    expect(msg.text).toContain('a <b> & c');
    expect(msg.blocks[0]?.type).toBe('header');
    expect(msg.blocks[1]?.text?.text).toBe('a &lt;b&gt; &amp; c');
  });

  it('builds a Graph sendMail body with text content and importance from severity', () => {
    const body = toMail(finding(), meta, ['ops@contoso.example', 'owner@contoso.example']);
    expect(body.saveToSentItems).toBe(false);
    expect(body.message.toRecipients).toEqual([
      { emailAddress: { address: 'ops@contoso.example' } },
      { emailAddress: { address: 'owner@contoso.example' } },
    ]);
    expect(body.message.body.contentType).toBe('Text');
    expect(body.message.body.content).toContain(`${WS}/computes/cc1`);
    expect(body.message.subject).toBe('[Warden] Critical: Compute cc1 runs without a managed identity');
    expect(body.message.importance).toBe('high');
    expect(toMail(finding({ severity: 'info' }), meta, ['a@b.example']).message.importance).toBe('low');
  });

  it('picks the Slack format for Slack URLs whatever the policy says', () => {
    expect(webhookFormatFor('https://hooks.slack.com/services/T/B/x', 'teams')).toBe('slack');
    expect(webhookFormatFor('https://prod-1.westeurope.logic.azure.com/workflows/x', 'teams')).toBe('teams');
    expect(webhookFormatFor('https://chat.example/hook', 'slack')).toBe('slack');
  });

  it('merges mail recipients case-insensitively and drops what is not an address', () => {
    expect(mailRecipients(['Ops@contoso.example'], ['ops@contoso.example', 'owner@contoso.example', 'not-an-address', ''])).toEqual([
      'Ops@contoso.example',
      'owner@contoso.example',
    ]);
  });
});

describe('fingerprints', () => {
  it('stableStringify is independent of key order at every level', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(stableStringify(reversed)).toBe(stableStringify(obj));
      }),
    );
  });

  it('identifies a finding by type and case-insensitive subject, and changes hash with details or severity', () => {
    expect(findingKey(finding())).toBe(findingKey(finding({ subject: finding().subject.toUpperCase() })));
    expect(findingKey(finding())).not.toBe(findingKey(finding({ type: 'Warden.Compute.LocalAuthEnabled' })));
    expect(findingHash(finding())).toBe(findingHash(finding({ details: { nested: { a: 1 }, identity: 'None', computeType: 'AmlCompute' }, summary: 'reworded' })));
    expect(findingHash(finding())).not.toBe(findingHash(finding({ details: { identity: 'UserAssigned' } })));
    expect(findingHash(finding())).not.toBe(findingHash(finding({ severity: 'warning' })));
  });
});

interface FakeSink extends AlertSink {
  received: Array<{ finding: Finding; id: string }>;
  failWith?: Error;
  delayMs?: number;
}

function fakeSink(name: SinkName, opts: { accepts?: (f: Finding) => boolean } = {}): FakeSink {
  const sink: FakeSink = {
    name,
    received: [],
    accepts: opts.accepts ?? (() => true),
    async send(f, m, signal) {
      if (sink.delayMs) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, sink.delayMs);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            reject(new Error('aborted'));
          });
        });
      }
      if (sink.failWith) throw sink.failWith;
      sink.received.push({ finding: f, id: m.id });
    },
  };
  return sink;
}

function setup(opts: { repeatHours?: number; state?: StateStore; timeoutMs?: number } = {}) {
  const sinks = { eventGrid: fakeSink('eventGrid'), webhook: fakeSink('webhook'), mail: fakeSink('mail') };
  const clock = new ManualClock('2026-03-01T00:00:00Z');
  const log = memorySink();
  const state = opts.state ?? new MemoryStateStore();
  const alerter = new DedupingAlerter(
    { sinks: Object.values(sinks), repeatHours: opts.repeatHours ?? 24, state, clock, logger: createLogger(log) },
    { sinkTimeoutMs: opts.timeoutMs ?? 2000 },
  );
  return { sinks, clock, log, state, alerter };
}

const outcomes = (ds: Array<{ sink: string; outcome: string }>): Record<string, string> => Object.fromEntries(ds.map((d) => [d.sink, d.outcome]));

describe('DedupingAlerter', () => {
  it('sends a finding to every sink once within repeatHours, and again after the window', async () => {
    const { sinks, clock, alerter } = setup({ repeatHours: 24 });
    expect(outcomes(await alerter.send([finding()]))).toEqual({ eventGrid: 'sent', webhook: 'sent', mail: 'sent' });
    clock.advance(23 * 3600_000);
    expect(outcomes(await alerter.send([finding()]))).toEqual({ eventGrid: 'suppressed', webhook: 'suppressed', mail: 'suppressed' });
    expect(sinks.webhook.received).toHaveLength(1);
    clock.advance(3600_000);
    expect(outcomes(await alerter.send([finding()]))).toEqual({ eventGrid: 'sent', webhook: 'sent', mail: 'sent' });
    expect(sinks.webhook.received).toHaveLength(2);
    // Each sending is a distinct event: a new CloudEvent id.
    expect(sinks.eventGrid.received[0]?.id).not.toBe(sinks.eventGrid.received[1]?.id);
  });

  it('sends a changed finding at once, and the same finding twice in one batch once', async () => {
    const { sinks, alerter } = setup();
    await alerter.send([finding(), finding()]);
    expect(sinks.mail.received).toHaveLength(1);
    await alerter.send([finding({ details: { identity: 'None', computeType: 'ComputeInstance' } })]);
    expect(sinks.mail.received).toHaveLength(2);
    await alerter.send([finding({ severity: 'warning', details: { identity: 'None', computeType: 'ComputeInstance' } })]);
    expect(sinks.mail.received).toHaveLength(3);
  });

  it('treats a different subject as a different finding', async () => {
    const { sinks, alerter } = setup();
    await alerter.send([finding(), finding({ subject: `${WS}/computes/cc2` })]);
    expect(sinks.webhook.received).toHaveLength(2);
  });

  it('sends every time when repeatHours is 0', async () => {
    const { sinks, alerter, state } = setup({ repeatHours: 0 });
    await alerter.send([finding()]);
    await alerter.send([finding()]);
    expect(sinks.eventGrid.received).toHaveLength(2);
    expect(await state.list(ALERT_STATE_PARTITION)).toEqual([]);
  });

  it('logs a dead sink, still delivers to the others, and retries only the dead one next time', async () => {
    const { sinks, alerter, log } = setup();
    sinks.webhook.failWith = new Error('The teams webhook answered 500');
    const first = await alerter.send([finding()]);
    expect(outcomes(first)).toEqual({ eventGrid: 'sent', webhook: 'failed', mail: 'sent' });
    expect(first.find((d) => d.sink === 'webhook')?.error).toBe('The teams webhook answered 500');
    expect(sinks.eventGrid.received).toHaveLength(1);
    expect(sinks.mail.received).toHaveLength(1);
    expect(log.records.some((r) => r.level === 'warn' && r.message === 'Alert sink webhook failed')).toBe(true);

    delete sinks.webhook.failWith;
    expect(outcomes(await alerter.send([finding()]))).toEqual({ eventGrid: 'suppressed', webhook: 'sent', mail: 'suppressed' });
    expect(sinks.webhook.received).toHaveLength(1);
  });

  it('gives up on a sink that hangs, without holding the others', async () => {
    const { sinks, alerter } = setup({ timeoutMs: 100 });
    sinks.mail.delayMs = 10_000;
    const started = Date.now();
    const res = await alerter.send([finding()]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(outcomes(res)).toEqual({ eventGrid: 'sent', webhook: 'sent', mail: 'failed' });
    expect(res.find((d) => d.sink === 'mail')?.error).toMatch(/did not answer within 100 ms/);
  });

  it('skips sinks that do not accept a finding (mail with nobody to send to)', async () => {
    const clock = new ManualClock();
    const eg = fakeSink('eventGrid');
    const mail = fakeSink('mail', { accepts: () => false });
    const alerter = new DedupingAlerter({ sinks: [eg, mail], repeatHours: 1, state: new MemoryStateStore(), clock, logger: createLogger(() => undefined) });
    expect(outcomes(await alerter.send([finding()]))).toEqual({ eventGrid: 'sent' });
  });

  it('sends without de-duplication when the state store is down, and never throws', async () => {
    const broken: StateStore = {
      get: () => Promise.reject(new Error('storage unavailable')),
      put: () => Promise.reject(new Error('storage unavailable')),
      delete: () => Promise.reject(new Error('storage unavailable')),
      list: () => Promise.reject(new Error('storage unavailable')),
    };
    const { sinks, alerter, log } = setup({ state: broken });
    await expect(alerter.send([finding()])).resolves.toHaveLength(3);
    await expect(alerter.send([finding()])).resolves.toHaveLength(3);
    expect(sinks.eventGrid.received).toHaveLength(2);
    expect(log.text()).toContain('de-duplication state unavailable');
  });

  it('lets exactly one of two instances racing on the same finding send it', async () => {
    const state = new MemoryStateStore();
    const a = setup({ state });
    const b = setup({ state });
    await Promise.all([a.alerter.send([finding()]), b.alerter.send([finding()])]);
    expect(a.sinks.eventGrid.received.length + b.sinks.eventGrid.received.length).toBe(1);
  });

  it('retries the claim after losing an ETag race', async () => {
    const inner = new MemoryStateStore();
    let losses = 1;
    const racy: StateStore = {
      get: (p, k) => inner.get(p, k),
      put: async (p, k, v, o) => {
        if (losses-- > 0) throw new ConcurrencyError();
        return inner.put(p, k, v, o);
      },
      delete: (p, k) => inner.delete(p, k),
      list: (p) => inner.list(p),
    };
    const { sinks, alerter } = setup({ state: racy });
    await alerter.send([finding()]);
    await alerter.send([finding()]);
    expect(sinks.eventGrid.received).toHaveLength(1);
  });

  it('never hands a registered secret to a sink or a log', async () => {
    const secret = 'xq9-Very-Secret-Value-42';
    registerSecret(secret);
    try {
      const { sinks, alerter, log } = setup();
      sinks.webhook.failWith = new Error(`webhook refused token ${secret}`);
      const res = await alerter.send([finding({ summary: `leaked ${secret}`, details: { secretText: secret } })]);
      expect(JSON.stringify(sinks.eventGrid.received)).not.toContain(secret);
      expect(JSON.stringify(sinks.mail.received)).toContain('[REDACTED]');
      expect(JSON.stringify(res)).not.toContain(secret);
      expect(log.text()).not.toContain(secret);
    } finally {
      forgetSecret(secret);
    }
  });
});
