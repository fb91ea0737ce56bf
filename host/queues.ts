/**
 * Storage-queue triggers with the Functions host's semantics (Storage Queues extension 5.x):
 * - polls with exponential backoff up to `maxPollingInterval` while the queue is empty;
 * - fetches `batchSize` messages and the next batch once only `newBatchThreshold` still run;
 * - decodes base64 (`messageEncoding`); a message that is not base64 goes straight to poison;
 *   JSON object/array text reaches the handler parsed, anything else as a string;
 * - keeps a running message invisible by renewing its lease, deletes it on success, and on failure
 *   makes it visible again after `visibilityTimeout`; on the try that reaches `maxDequeueCount` (or a
 *   message seen more often than that, e.g. after crashes) it is copied to `<queue>-poison` and deleted;
 * - `context.triggerMetadata` carries `queueTrigger`, `dequeueCount`, `id`, `insertionTime`,
 *   `expirationTime`, `nextVisibleTime` and `popReceipt`, as the host provides them.
 */
import { QueueClient, type DequeuedMessageItem } from '@azure/storage-queue';
import type { QueuesConfig } from '../shared/work/hostConfig';
import type { RegisteredFunction } from '../shared/registration';
import type { Invoker } from './invoke';
import type { HostLogger } from './log';

type QueueFunction = Extract<RegisteredFunction, { kind: 'storageQueue' }>;

export interface QueueListenerOptions {
  fn: QueueFunction;
  queueName: string;
  connectionString: string;
  config: QueuesConfig;
  /** How long a fetched message stays invisible between lease renewals (the host uses 10 minutes). */
  leaseMs: number;
  invoker: Invoker;
  log: HostLogger;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (what .NET's Convert.FromBase64String accepts, without whitespace). */
export function decodeBase64Strict(text: string): string | undefined {
  if (text.length % 4 !== 0 || !BASE64_RE.test(text)) return undefined;
  return Buffer.from(text, 'base64').toString('utf8');
}

/** The host hands JSON text to the worker as JSON, so the handler sees an object; other text stays a string. */
export function queueInput(text: string): unknown {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

export class QueueListener {
  private readonly queue: QueueClient;
  private readonly poisonQueue: QueueClient;
  private stopping = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly running = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  /** Messages whose invocation outlived a stop: left alone to reappear after their lease. */
  private abandoned = false;
  private poisonReady: Promise<unknown> | undefined;

  constructor(private readonly opts: QueueListenerOptions) {
    const retryOptions = { maxTries: 4, retryDelayInMs: 200, maxRetryDelayInMs: 2000 };
    this.queue = new QueueClient(opts.connectionString, opts.queueName, { retryOptions });
    this.poisonQueue = new QueueClient(opts.connectionString, `${opts.queueName}-poison`, { retryOptions });
  }

  get name(): string {
    return this.opts.fn.name;
  }

  async start(): Promise<void> {
    await this.queue.createIfNotExists();
    this.loopDone = this.loop();
  }

  /** Stops fetching, waits for running invocations up to `drainMs`, abandons the rest. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loopDone;
    const deadline = Date.now() + drainMs;
    while (this.running.size > 0 && Date.now() < deadline) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(t);
    }
    if (this.running.size > 0) {
      this.abandoned = true;
      this.opts.log.warn(
        `Stopped listening on '${this.opts.queueName}' with ${this.running.size} message(s) still running; they reappear after their lease`,
        { functionName: this.opts.fn.name },
      );
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    const { config, log, fn } = this.opts;
    const minDelay = Math.min(100, config.maxPollingIntervalMs);
    let delay = minDelay;
    while (!this.stopping) {
      if (this.running.size > config.newBatchThreshold) {
        await Promise.race([...this.running, this.sleep(config.maxPollingIntervalMs)]);
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        const r = await this.queue.receiveMessages({ numberOfMessages: config.batchSize, visibilityTimeout: seconds(this.opts.leaseMs) });
        messages = r.receivedMessageItems;
      } catch (err) {
        log.error(`Could not read queue '${this.opts.queueName}': ${err instanceof Error ? err.message : String(err)}`, { functionName: fn.name });
      }
      if (this.stopping) {
        // Fetched while stopping: hand them straight back rather than hide them for a whole lease.
        await Promise.allSettled(messages.map((m) => this.queue.updateMessage(m.messageId, m.popReceipt, undefined, 0)));
        break;
      }
      for (const m of messages) {
        const p = this.process(m).catch((err: unknown) =>
          log.error(`Message ${m.messageId} on '${this.opts.queueName}' was not settled: ${err instanceof Error ? err.message : String(err)}`, { functionName: fn.name }),
        );
        this.running.add(p);
        void p.finally(() => this.running.delete(p));
      }
      if (messages.length > 0) {
        delay = minDelay;
        continue;
      }
      await this.sleep(delay);
      delay = Math.min(delay * 2, config.maxPollingIntervalMs);
    }
  }

  private async toPoison(m: DequeuedMessageItem, popReceipt: string, why: string): Promise<void> {
    this.poisonReady ??= this.poisonQueue.createIfNotExists();
    await this.poisonReady;
    // The original text (still base64) goes over, as the host copies it.
    await this.poisonQueue.sendMessage(m.messageText, { messageTimeToLive: -1 });
    await this.queue.deleteMessage(m.messageId, popReceipt);
    this.opts.log.error(
      `Message ${m.messageId} has reached MaxDequeueCount of ${this.opts.config.maxDequeueCount} or is unreadable (${why}); moved to '${this.opts.queueName}-poison'`,
      { functionName: this.opts.fn.name },
    );
  }

  private async process(m: DequeuedMessageItem): Promise<void> {
    const { config, fn, invoker, log } = this.opts;
    let popReceipt = m.popReceipt;
    if (m.dequeueCount > config.maxDequeueCount) {
      await this.toPoison(m, popReceipt, `dequeued ${m.dequeueCount} times`);
      return;
    }
    let text: string | undefined = m.messageText;
    if (config.messageEncoding === 'base64') {
      text = decodeBase64Strict(m.messageText);
      if (text === undefined) {
        await this.toPoison(m, popReceipt, 'the message is not base64 encoded, as host.json messageEncoding requires');
        return;
      }
    }

    let renewing: Promise<void> = Promise.resolve();
    const renew = setInterval(() => {
      renewing = renewing
        .then(async () => {
          const r = await this.queue.updateMessage(m.messageId, popReceipt, undefined, seconds(this.opts.leaseMs));
          if (r.popReceipt) popReceipt = r.popReceipt;
        })
        .catch((err: unknown) => log.warn(`Could not renew the lease of message ${m.messageId}: ${err instanceof Error ? err.message : String(err)}`, { functionName: fn.name }));
    }, Math.max(500, Math.floor(this.opts.leaseMs / 2)));

    const result = await invoker.invoke({
      fn,
      input: queueInput(text),
      reason: `New queue message detected on '${this.opts.queueName}'.`,
      resolved: { queueName: this.opts.queueName },
      triggerMetadata: {
        queueTrigger: text,
        dequeueCount: m.dequeueCount,
        id: m.messageId,
        insertionTime: m.insertedOn.toISOString(),
        expirationTime: m.expiresOn.toISOString(),
        nextVisibleTime: m.nextVisibleOn.toISOString(),
        popReceipt: m.popReceipt,
      },
    });
    clearInterval(renew);
    await renewing;
    if (this.abandoned) return;

    if (result.ok) {
      await this.queue.deleteMessage(m.messageId, popReceipt);
    } else if (m.dequeueCount >= config.maxDequeueCount) {
      await this.toPoison(m, popReceipt, `failed ${m.dequeueCount} times`);
    } else {
      await this.queue.updateMessage(m.messageId, popReceipt, undefined, seconds(config.visibilityTimeoutMs));
      log.warn(
        `Message ${m.messageId} failed (try ${m.dequeueCount} of ${config.maxDequeueCount}); it is visible again in ${seconds(config.visibilityTimeoutMs)} s`,
        { functionName: fn.name, invocationId: result.invocationId },
      );
    }
  }
}
