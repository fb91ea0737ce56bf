import { ThrottledError } from '../../shared/errors';
import { serviceError } from '../../shared/rbac/memory';
import { retryAfterMsOf, withRetries, type RetryPolicy } from '../../shared/rbac/retry';

const policy: RetryPolicy = { principalNotFoundDelaysMs: [5, 10], throttleRetries: 2, throttleMaxWaitMs: 1000, throttleDefaultWaitMs: 7 };

function failing(errors: Error[]): { fn: () => Promise<string>; calls: () => number } {
  let n = 0;
  return {
    fn: async () => {
      const e = errors[n++];
      if (e) throw e;
      return 'ok';
    },
    calls: () => n,
  };
}

describe('retryAfterMsOf', () => {
  it('reads Retry-After seconds or date, retry-after-ms, GraphError headers and ThrottledError', () => {
    const now = Date.parse('2026-03-01T00:00:00Z');
    expect(retryAfterMsOf(serviceError(429, 'x', 'x', { 'Retry-After': '17' }))).toBe(17_000);
    expect(retryAfterMsOf(serviceError(429, 'x', 'x', { 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMsOf(serviceError(429, 'x', 'x', { 'Retry-After': 'Sun, 01 Mar 2026 00:00:05 GMT' }), now)).toBe(5_000);
    expect(retryAfterMsOf(Object.assign(new Error('g'), { statusCode: 429, headers: new Headers({ 'Retry-After': '2' }) }))).toBe(2_000);
    expect(retryAfterMsOf(new ThrottledError('slow', 1234))).toBe(1234);
    expect(retryAfterMsOf(serviceError(429, 'x'))).toBeUndefined();
    expect(retryAfterMsOf('nope')).toBeUndefined();
  });
});

describe('withRetries', () => {
  it('retries PrincipalNotFound with the configured backoff, then gives up with the error', async () => {
    const waits: number[] = [];
    const ok = failing([serviceError(400, 'PrincipalNotFound'), serviceError(400, 'PrincipalNotFound')]);
    await expect(withRetries(ok.fn, policy, undefined, async (ms) => void waits.push(ms))).resolves.toBe('ok');
    expect(waits).toEqual([5, 10]);
    const never = failing([1, 2, 3].map(() => serviceError(400, 'PrincipalNotFound')));
    await expect(withRetries(never.fn, policy, undefined, async () => undefined)).rejects.toMatchObject({ code: 'PrincipalNotFound' });
    expect(never.calls()).toBe(3);
  });

  it('waits out a 429 as asked, but leaves a long wait to the work pipeline', async () => {
    const waits: number[] = [];
    const ok = failing([serviceError(429, 'TooManyRequests', 't', { 'Retry-After': '0.2' }), serviceError(429, 'TooManyRequests')]);
    await expect(withRetries(ok.fn, policy, undefined, async (ms) => void waits.push(ms))).resolves.toBe('ok');
    expect(waits).toEqual([200, 7]);
    const long = failing([serviceError(429, 'TooManyRequests', 't', { 'Retry-After': '60' })]);
    await expect(withRetries(long.fn, policy, undefined, async () => undefined)).rejects.toMatchObject({ statusCode: 429 });
    expect(long.calls()).toBe(1);
  });

  it('does not retry anything else', async () => {
    const f = failing([serviceError(403, 'AuthorizationFailed')]);
    await expect(withRetries(f.fn, policy, undefined, async () => undefined)).rejects.toMatchObject({ code: 'AuthorizationFailed' });
    expect(f.calls()).toBe(1);
  });
});
