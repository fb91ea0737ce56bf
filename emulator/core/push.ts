import type { EmuClock } from './clock';

export interface Delivery {
  /** What kind of push, for the delivery log: `graph.notification`, `eventgrid.event`, … */
  kind: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Delay before the first attempt for this delivery only (overrides `Pusher.delayMs`). */
  delayMs?: number;
}

export interface DeliveryResult extends Delivery {
  status: number;
  attempts: number;
  time: number;
  /** Response body text (a validation answer, say). */
  responseText: string;
  error?: string;
}

/**
 * Pushes notifications and events to subscribers the way Azure does: an HTTP POST, retried with
 * backoff on failure (Graph and Event Grid retry for hours; here a few quick attempts). Every delivery
 * is logged, and `drain()` lets a test wait until every push in flight has been answered.
 */
export class Pusher {
  private inFlight = new Set<Promise<DeliveryResult>>();
  readonly log: DeliveryResult[] = [];
  /** Attempts per delivery and the base delay between them. */
  attempts = 3;
  retryDelayMs = 200;
  /** Delay before the first attempt (Azure delivers asynchronously, never inside the write call). */
  delayMs = 0;

  constructor(private readonly clock: EmuClock) {}

  /** Sends once, synchronously from the caller's point of view (used for validation handshakes). */
  async sendOnce(d: Delivery, timeoutMs: number): Promise<DeliveryResult> {
    const res = await this.attempt(d, timeoutMs);
    const result: DeliveryResult = { ...d, ...res, attempts: 1, time: this.clock.now() };
    this.log.push(result);
    return result;
  }

  /** Queues a delivery in the background with retries. */
  push(d: Delivery): void {
    const p = this.run(d);
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Resolves when nothing is in flight (including pushes queued while waiting). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async run(d: Delivery): Promise<DeliveryResult> {
    const delayMs = d.delayMs ?? this.delayMs;
    if (delayMs > 0) await sleep(delayMs);
    let last: { status: number; responseText: string; error?: string } = { status: 0, responseText: '' };
    let attempts = 0;
    for (let i = 0; i < this.attempts; i++) {
      attempts++;
      last = await this.attempt(d, 30000);
      if (last.status >= 200 && last.status < 300) break;
      if (i < this.attempts - 1) await sleep(this.retryDelayMs * 2 ** i);
    }
    const result: DeliveryResult = { ...d, ...last, attempts, time: this.clock.now() };
    this.log.push(result);
    return result;
  }

  private async attempt(d: Delivery, timeoutMs: number): Promise<{ status: number; responseText: string; error?: string }> {
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: d.headers,
        body: d.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.status, responseText: await res.text() };
    } catch (err) {
      return { status: 0, responseText: '', error: err instanceof Error ? err.message : String(err) };
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
