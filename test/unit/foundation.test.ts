import fc from 'fast-check';
import { EmulatorCredential, assertEndpointAllowed } from '../../shared/azure/credential';
import { storageConnectionString } from '../../shared/azure/clients';
import { classifyError, InputError, TerminalError, ThrottledError, TransientError } from '../../shared/errors';
import { createLimiter, mapSettled } from '../../shared/concurrency';
import { createLogger, memorySink } from '../../shared/logging';
import { redact, registerSecret, forgetSecret } from '../../shared/redact';
import { uuidV5 } from '../../shared/uuid';
import { fromTableKey, MemoryStateStore, tableKey, ConcurrencyError } from '../../shared/ports/state';

describe('the emulator credential', () => {
  it('refuses to be used with a public endpoint', () => {
    expect(() => assertEndpointAllowed({ credential: 'emulator' }, 'https://kv-warden.vault.azure.net', 'Key Vault')).toThrow(
      /only for loopback endpoints; Key Vault https:\/\/kv-warden.vault.azure.net/,
    );
    expect(() => assertEndpointAllowed({ credential: 'emulator' }, 'https://127.0.0.1:9000', 'Key Vault')).not.toThrow();
    expect(() => assertEndpointAllowed({ credential: 'default' }, 'https://kv-warden.vault.azure.net', 'Key Vault')).not.toThrow();
  });

  it('hands out a token that does not expire within the hour', async () => {
    const t = await new EmulatorCredential().getToken();
    expect(t.token).toBeTruthy();
    expect(t.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000_000);
  });
});

describe('storage connection strings', () => {
  it('maps UseDevelopmentStorage=true to Azurite', () => {
    expect(storageConnectionString('UseDevelopmentStorage=true')).toContain('QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1');
    expect(storageConnectionString('DefaultEndpointsProtocol=https;AccountName=a')).toBe('DefaultEndpointsProtocol=https;AccountName=a');
  });
});

describe('error classification', () => {
  const rest = (statusCode: number, code?: string) => Object.assign(new Error('x'), { name: 'RestError', statusCode, code });
  it.each([
    [rest(429), 'throttled'],
    [rest(503), 'transient'],
    [rest(500), 'transient'],
    [rest(408), 'transient'],
    [rest(400, 'PrincipalNotFound'), 'transient'],
    [rest(400, 'InvalidRequest'), 'terminal'],
    [rest(403, 'AuthorizationFailed'), 'terminal'],
    [rest(404), 'terminal'],
    [Object.assign(new Error('socket'), { code: 'ECONNRESET' }), 'transient'],
    [new ThrottledError('slow down', 1000), 'throttled'],
    [new TransientError('Busy', 'busy'), 'transient'],
    [new TerminalError('Bad', 'bad'), 'terminal'],
    [new InputError('BadInput', 'bad'), 'terminal'],
    [new AggregateError([new TerminalError('a', 'a'), rest(503)]), 'transient'],
    [new Error('mystery'), 'transient'],
  ])('classifies %p as %s', (err, cls) => {
    expect(classifyError(err)).toBe(cls);
  });
});

describe('redaction', () => {
  it('masks registered secrets and secret-shaped text everywhere in a log line', () => {
    registerSecret('Zq8~supersecretvalue');
    const sink = memorySink();
    const log = createLogger(sink);
    log.info('Rotated with Zq8~supersecretvalue', { body: { secretText: 'Zq8~supersecretvalue' }, auth: 'Bearer eyJabc.def', url: 'https://x/api/plan?code=abc123&x=1' });
    const text = sink.text();
    expect(text).not.toContain('Zq8~supersecretvalue');
    expect(text).not.toContain('eyJabc.def');
    expect(text).not.toContain('abc123');
    expect(JSON.stringify(sink.records)).not.toContain('Zq8~supersecretvalue');
    forgetSecret('Zq8~supersecretvalue');
    expect(redact('plain words stay')).toBe('plain words stay');
  });
});

describe('deterministic names', () => {
  it('computes RFC 9562 UUID v5 (DNS namespace test vector)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });
  it('is stable and differs per input', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        expect(uuidV5(a)).toBe(uuidV5(a));
        if (a !== b) expect(uuidV5(a)).not.toBe(uuidV5(b));
      }),
    );
  });
});

describe('bounded concurrency', () => {
  it('never runs more than the limit and reports every outcome in order', async () => {
    const limiter = createLimiter(3);
    let peak = 0;
    const results = await mapSettled(Array.from({ length: 20 }, (_, i) => i), 8, (i) =>
      limiter.run(async () => {
        peak = Math.max(peak, limiter.active);
        await new Promise((r) => setTimeout(r, 2));
        if (i === 5) throw new Error('five');
        return i * 2;
      }),
    );
    expect(peak).toBeLessThanOrEqual(3);
    expect(results[5]?.status).toBe('rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(19);
    expect(results[7]).toEqual({ status: 'fulfilled', value: 14 });
  });
});

describe('state store keys and concurrency', () => {
  it('round-trips any key through table-safe encoding', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const k = tableKey(s);
        expect(k).not.toMatch(/[/\\#?%]/);
        expect(fromTableKey(k)).toBe(s);
      }),
    );
  });
  it('refuses a stale write', async () => {
    const store = new MemoryStateStore();
    const e1 = await store.put('p', 'k', { n: 1 });
    await store.put('p', 'k', { n: 2 }, { etag: e1 });
    await expect(store.put('p', 'k', { n: 3 }, { etag: e1 })).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(store.put('p', 'k', { n: 3 }, { create: true })).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.get<{ n: number }>('p', 'k'))?.value).toEqual({ n: 2 });
  });
});
