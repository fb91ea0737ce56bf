/**
 * Storage-queue triggers on the host runner against Azurite, with the real host's semantics:
 * base64 decoding, JSON handed over parsed, trigger metadata, retries after the visibility timeout,
 * poison after maxDequeueCount, and no message lost when the host restarts mid-burst.
 */
import { QueueClient } from '@azure/storage-queue';
import { startHost, type Host, type StartHostOptions } from '../../host/host';
import { APP_ROOT, base64Json, captureLogs, FIXTURE_MODULE, testStorage, uniqueQueue, waitFor } from './helpers';
import { seen } from './fixtures/functions';

const FAST_QUEUES = { extensions: { queues: { maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:01', maxDequeueCount: 3, batchSize: 16 } } };

function hostFor(queue: string, extra: Partial<StartHostOptions> = {}): Promise<Host> {
  return startHost({
    port: 0,
    env: { AzureWebJobsStorage: testStorage(), FIXTURE_ECHO_QUEUE: queue },
    appRoot: APP_ROOT,
    localSettings: false,
    functionsModule: FIXTURE_MODULE,
    functions: ['echoQueue'],
    hostJson: FAST_QUEUES,
    exportEnv: false,
    logSink: () => undefined,
    ...extra,
  });
}

const seenOn = (pred: (input: unknown) => boolean): typeof seen => seen.filter((s) => s.fn === 'echoQueue' && pred(s.input));
const hasTag = (tag: string) => (input: unknown): boolean => typeof input === 'object' && input !== null && (input as { tag?: unknown }).tag === tag;

async function queueLength(q: QueueClient): Promise<number> {
  const props = await q.getProperties();
  return props.approximateMessagesCount ?? 0;
}

describe('storage queue triggers', () => {
  it('processes a message: base64 decoded, JSON parsed, trigger metadata like the host, then deleted', async () => {
    const name = uniqueQueue('echo');
    const host = await hostFor(name);
    const q = new QueueClient(testStorage(), name);
    try {
      const sent = await q.sendMessage(base64Json({ tag: 'one', n: 1 }));
      await q.sendMessage(Buffer.from('plain words').toString('base64'));
      const got = await waitFor('the JSON message', () => seenOn(hasTag('one'))[0]);
      expect(got.input).toEqual({ tag: 'one', n: 1 });
      expect(got.realContext).toBe(true);
      expect(got.triggerMetadata).toMatchObject({ dequeueCount: 1, id: sent.messageId, queueTrigger: '{"tag":"one","n":1}' });
      for (const k of ['insertionTime', 'expirationTime', 'nextVisibleTime', 'popReceipt']) expect(typeof got.triggerMetadata?.[k]).toBe('string');
      const text = await waitFor('the text message', () => seenOn((i) => i === 'plain words')[0]);
      expect(text.input).toBe('plain words');
      await waitFor('the queue to be empty', async () => (await queueLength(q)) === 0);
    } finally {
      await host.stop({ drainMs: 2000 });
    }
  });

  it('retries a failing message after the visibility timeout and moves it to <queue>-poison after maxDequeueCount tries', async () => {
    const name = uniqueQueue('fail');
    const logs = captureLogs();
    const host = await hostFor(name, { logSink: logs });
    const q = new QueueClient(testStorage(), name);
    const poison = new QueueClient(testStorage(), `${name}-poison`);
    try {
      const payload = base64Json({ tag: 'doomed', fail: true });
      await q.sendMessage(payload);
      const poisoned = await waitFor('the poison message', async () => {
        if (!(await poison.exists())) return undefined;
        return (await poison.peekMessages()).peekedMessageItems[0];
      });
      // The host copies the message as it was (still base64).
      expect(poisoned.messageText).toBe(payload);
      const tries = seenOn(hasTag('doomed'));
      expect(tries.map((t) => t.triggerMetadata?.dequeueCount)).toEqual([1, 2, 3]);
      expect(await queueLength(q)).toBe(0);
      expect(logs.text()).toMatch(/failed \(try 1 of 3\)/);
      expect(logs.text()).toMatch(/moved to '.*-poison'/);
    } finally {
      await host.stop({ drainMs: 2000 });
    }
  });

  it('sends a message that is not base64 straight to poison without invoking the function', async () => {
    const name = uniqueQueue('raw');
    const host = await hostFor(name);
    const q = new QueueClient(testStorage(), name);
    const poison = new QueueClient(testStorage(), `${name}-poison`);
    try {
      await q.sendMessage('{"not":"base64"}');
      const poisoned = await waitFor('the poison message', async () => (await poison.exists()) && (await poison.peekMessages()).peekedMessageItems[0]);
      expect(poisoned.messageText).toBe('{"not":"base64"}');
      expect(seenOn((i) => typeof i === 'object' && i !== null && 'not' in i)).toHaveLength(0);
    } finally {
      await host.stop({ drainMs: 2000 });
    }
  });

  it('loses no message when the host stops mid-burst with messages in flight and a new host takes over', async () => {
    const name = uniqueQueue('restart');
    const q = new QueueClient(testStorage(), name);
    await q.create();
    const total = 40;
    await Promise.all(Array.from({ length: total }, (_, n) => q.sendMessage(base64Json({ tag: `r-${name}`, n, slowMs: 300 }))));
    const logs = captureLogs();
    // Short lease so the messages abandoned by the stopped host come back quickly.
    const first = await hostFor(name, { messageLeaseMs: 2000, logSink: logs });
    await waitFor('some messages to be processed', () => seenOn(hasTag(`r-${name}`)).length >= 5);
    await first.stop({ drainMs: 50 });
    expect(logs.text()).toMatch(/still running; they reappear after their lease/);
    const doneByFirst = new Set(seenOn(hasTag(`r-${name}`)).map((s) => (s.input as { n: number }).n));
    expect(doneByFirst.size).toBeLessThan(total);

    const second = await hostFor(name, { messageLeaseMs: 2000 });
    try {
      await waitFor(
        'every message to be processed',
        () => new Set(seenOn(hasTag(`r-${name}`)).map((s) => (s.input as { n: number }).n)).size === total,
        20_000,
      );
      await waitFor('the queue to be empty', async () => (await queueLength(q)) === 0, 10_000);
    } finally {
      await second.stop({ drainMs: 2000 });
    }
  });
});
