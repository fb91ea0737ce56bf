/**
 * Retries around one write: `PrincipalNotFound` (a principal ARM has not seen yet — Entra replication
 * lag) with backoff, and throttling (429) honouring `Retry-After` after the SDK's own retries are
 * spent. Anything else, or a retry budget used up, is rethrown for the work pipeline to classify.
 */
import { ThrottledError, codeOf, statusOf } from '../errors';
import { sleep as realSleep } from '../concurrency';

export interface RetryPolicy {
  /** Waits before each retry of `PrincipalNotFound` (the list's length is the number of retries). */
  principalNotFoundDelaysMs: readonly number[];
  /** Extra tries after a 429 the SDK gave up on. */
  throttleRetries: number;
  /** Longest single wait for a `Retry-After`; longer asks are left to the work pipeline. */
  throttleMaxWaitMs: number;
  /** Wait when a 429 carries no `Retry-After`. */
  throttleDefaultWaitMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  principalNotFoundDelaysMs: [2_000, 5_000, 10_000, 20_000],
  throttleRetries: 3,
  throttleMaxWaitMs: 30_000,
  throttleDefaultWaitMs: 1_000,
};

/** Milliseconds a failed call asked us to wait (`Retry-After` seconds or date, `retry-after-ms`), if it said. */
export function retryAfterMsOf(err: unknown, now: number = Date.now()): number | undefined {
  if (err instanceof ThrottledError && err.retryAfterMs !== undefined) return err.retryAfterMs;
  if (typeof err !== 'object' || err === null) return undefined;
  // Azure SDKs: `RestError.response.headers`; the Graph client: `GraphError.headers`.
  const e = err as { response?: { headers?: unknown }; headers?: unknown };
  const headers = e.response?.headers ?? e.headers;
  const get = (name: string): string | undefined => {
    if (!headers || typeof headers !== 'object') return undefined;
    const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
    const v = typeof h.get === 'function' ? h.get(name) : h[name];
    return typeof v === 'string' ? v : undefined;
  };
  const ms = get('retry-after-ms') ?? get('x-ms-retry-after-ms');
  if (ms !== undefined && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = get('retry-after');
  if (ra === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.max(0, Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function isPrincipalNotFound(err: unknown): boolean {
  return codeOf(err) === 'PrincipalNotFound';
}

export interface RetryEvent {
  reason: 'principalNotFound' | 'throttled';
  attempt: number;
  waitMs: number;
}

export async function withRetries<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: (e: RetryEvent) => void = () => undefined,
  sleep: (ms: number) => Promise<void> = realSleep,
): Promise<T> {
  let pnf = 0;
  let throttled = 0;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (isPrincipalNotFound(err) && pnf < policy.principalNotFoundDelaysMs.length) {
        const waitMs = policy.principalNotFoundDelaysMs[pnf] ?? 0;
        pnf++;
        onRetry({ reason: 'principalNotFound', attempt: pnf, waitMs });
        await sleep(waitMs);
        continue;
      }
      if (statusOf(err) === 429 && throttled < policy.throttleRetries) {
        const waitMs = retryAfterMsOf(err) ?? policy.throttleDefaultWaitMs;
        if (waitMs > policy.throttleMaxWaitMs) throw err;
        throttled++;
        onRetry({ reason: 'throttled', attempt: throttled, waitMs });
        await sleep(waitMs);
        continue;
      }
      throw err;
    }
  }
}
