/**
 * Key Vault secret events: both payload casings seen in the wild (AZURE-API-FACTS §6.2), string or
 * numeric times, a key with a trailing space, CloudEvents; and the use case that turns an event into
 * queued work for the app the policy rotates into that secret (or skips it when already rotated).
 */
import fc from 'fast-check';
import { ManualClock, DAY_MS } from '../../shared/clock';
import { handleKeyVaultEvent, type KeyVaultEventDeps } from '../../shared/credentials/events';
import { InputError } from '../../shared/errors';
import { parseEventGridEvent } from '../../shared/events/eventgrid';
import { parseKeyVaultSecretEvent, parseSecretId } from '../../shared/events/keyvault';
import { createLogger, memorySink } from '../../shared/logging';
import type { SecretVersion, Secrets } from '../../shared/ports/secrets';
import type { WorkRequest } from '../../shared/work/item';

const VAULT = 'https://kv1.vault.azure.net';
const APP = '6f1c0c9e-1d2b-4b7e-9b8a-0c1d2e3f4a5b';
const OTHER_APP = '7a2d1d0f-2e3c-4c8f-8c9b-1d2e3f4a5b6c';
const VERSION = 'ee059b2bb5bc48398a53b168c6cdcb10';

const pascal = (over: Record<string, unknown> = {}) => ({
  id: '00eccf70-95a7-4e7c-8299-2eb17ee9ad64',
  topic: '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1',
  subject: 'app-secret',
  eventType: 'Microsoft.KeyVault.SecretNearExpiry',
  eventTime: '2026-01-01T00:00:00.0000000Z',
  data: {
    Id: `${VAULT}/secrets/app-secret/${VERSION}`,
    VaultName: 'kv1',
    ObjectType: 'Secret',
    ObjectName: 'app-secret',
    Version: VERSION,
    NBF: null,
    EXP: 1738368000,
  },
  dataVersion: '1',
  metadataVersion: '1',
  ...over,
});

/** The live payload reported in MicrosoftDocs/azure-docs#78126: camelCase except `Id`, string numbers, a trailing space. */
const camelString = {
  id: '11eccf70-95a7-4e7c-8299-2eb17ee9ad64',
  topic: '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1',
  subject: 'app-secret',
  eventType: 'Microsoft.KeyVault.SecretExpired',
  eventTime: '2026-01-01T00:00:00Z',
  data: { version: VERSION, Id: `${VAULT}/secrets/app-secret/${VERSION}`, exp: '1559082102', vaultName: 'kv1', objectType: 'Secret', nbf: '1559081980', 'objectName ': 'app-secret' },
};

const cloudEvent = {
  specversion: '1.0',
  id: '22eccf70-95a7-4e7c-8299-2eb17ee9ad64',
  type: 'Microsoft.KeyVault.SecretNearExpiry',
  source: '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1',
  subject: 'app-secret',
  time: '2026-01-01T00:00:00Z',
  data: { id: `${VAULT}/secrets/app-secret/${VERSION}`, vaultname: 'kv1', objecttype: 'Secret', objectname: 'app-secret', version: VERSION, nbf: 0, exp: '1738368000' },
};

describe('parseKeyVaultSecretEvent', () => {
  it.each([
    ['PascalCase, numeric EXP (docs and SDK mappers)', pascal(), 'SecretNearExpiry', new Date(1738368000 * 1000)],
    ['camelCase with string numbers and a trailing-space key (live payload)', camelString, 'SecretExpired', new Date(1559082102 * 1000)],
    ['a CloudEvent with lower-case keys', cloudEvent, 'SecretNearExpiry', new Date(1738368000 * 1000)],
  ])('reads %s', (_name, raw, type, exp) => {
    const ev = parseKeyVaultSecretEvent(parseEventGridEvent(raw));
    expect(ev).toMatchObject({ type, vaultUrl: VAULT, vaultName: 'kv1', secretName: 'app-secret', version: VERSION });
    expect(ev.expiresOn).toEqual(exp);
  });

  it('falls back to the Id for the name and version when the data leaves them out', () => {
    const ev = parseKeyVaultSecretEvent(parseEventGridEvent(pascal({ data: { ID: `https://kv2.vault.azure.net:443/secrets/db-pass/abc123` } })));
    expect(ev).toMatchObject({ vaultUrl: 'https://kv2.vault.azure.net', vaultName: 'kv2', secretName: 'db-pass', version: 'abc123', expiresOn: undefined });
  });

  it.each([
    ['another event type', pascal({ eventType: 'Microsoft.Resources.ResourceWriteSuccess' }), 'UnsupportedEvent'],
    ['a certificate event object', pascal({ data: { ...pascal().data, ObjectType: 'Certificate' } }), 'UnsupportedEvent'],
    ['no data', pascal({ data: undefined }), 'InvalidEvent'],
    ['an Id that is not a secret identifier', pascal({ data: { ...pascal().data, Id: 'https://kv1.vault.azure.net/keys/k1/v1' } }), 'InvalidEvent'],
    ['a garbage EXP', pascal({ data: { ...pascal().data, EXP: 'tomorrow' } }), 'InvalidEvent'],
    ['no version anywhere', pascal({ data: { Id: `${VAULT}/secrets/app-secret`, ObjectName: 'app-secret' } }), 'InvalidEvent'],
  ])('refuses %s with an InputError', (_name, raw, code) => {
    const run = (): unknown => parseKeyVaultSecretEvent(parseEventGridEvent(raw));
    expect(run).toThrow(InputError);
    expect(run).toThrow(expect.objectContaining({ code }));
  });

  it('reads any casing of the data keys (property)', () => {
    const keys = ['Id', 'VaultName', 'ObjectType', 'ObjectName', 'Version', 'NBF', 'EXP'];
    const values: Record<string, unknown> = { id: `${VAULT}/secrets/app-secret/${VERSION}`, vaultname: 'kv1', objecttype: 'Secret', objectname: 'app-secret', version: VERSION, nbf: null, exp: 1738368000 };
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: keys.length * 12, maxLength: keys.length * 12 }), fc.boolean(), (flips, asString) => {
        let i = 0;
        const data: Record<string, unknown> = {};
        for (const k of keys) {
          const cased = [...k].map((ch) => (flips[i++ % flips.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
          const v = values[k.toLowerCase()];
          data[cased] = asString && typeof v === 'number' ? String(v) : v;
        }
        const ev = parseKeyVaultSecretEvent(parseEventGridEvent(pascal({ data })));
        expect(ev.secretName).toBe('app-secret');
        expect(ev.version).toBe(VERSION);
        expect(ev.expiresOn?.getTime()).toBe(1738368000 * 1000);
      }),
      { numRuns: 100 },
    );
  });

  it('parses secret identifiers like the SDK does', () => {
    expect(parseSecretId('https://127.0.0.1:8443/secrets/app-secret/4387')).toEqual({ vaultUrl: 'https://127.0.0.1:8443', name: 'app-secret', version: '4387' });
    expect(parseSecretId('https://kv1.vault.azure.net/secrets/app-secret')).toEqual({ vaultUrl: VAULT, name: 'app-secret', version: undefined });
    expect(parseSecretId('https://kv1.vault.azure.net/certificates/c/1')).toBeUndefined();
    expect(parseSecretId('not a url')).toBeUndefined();
  });
});

function version(v: string, createdDaysAgo: number, opts: { tags?: Record<string, string>; expiresInDays?: number; enabled?: boolean } = {}, now = new Date('2026-01-01T00:00:00Z')): SecretVersion {
  return {
    vaultUrl: VAULT,
    name: 'app-secret',
    version: v,
    enabled: opts.enabled ?? true,
    createdOn: new Date(now.getTime() - createdDaysAgo * DAY_MS),
    updatedOn: undefined,
    expiresOn: opts.expiresInDays === undefined ? undefined : new Date(now.getTime() + opts.expiresInDays * DAY_MS),
    contentType: undefined,
    tags: opts.tags ?? {},
  };
}

function harness(versions: SecretVersion[], rotate = [{ appId: APP, vaultUrl: VAULT, secretName: 'app-secret' }]) {
  const queued: WorkRequest[] = [];
  const sink = memorySink();
  const reads: string[] = [];
  const secrets: Secrets = {
    async versions(vaultUrl, name) {
      reads.push(`${vaultUrl}|${name}`);
      return versions;
    },
    async set() {
      throw new Error('the event handler never writes');
    },
  };
  const deps: KeyVaultEventDeps = {
    policy: { rotate, rotateDaysBefore: 14 },
    secrets,
    clock: new ManualClock('2026-01-01T00:00:00Z'),
    logger: createLogger(sink),
    enqueue: async (items) => {
      queued.push(...items);
    },
  };
  return { deps, queued, reads, sink };
}

describe('handleKeyVaultEvent', () => {
  it('queues a reconcile of the app whose secret is near expiry, with the event as trigger', async () => {
    const h = harness([version(VERSION, 80, { tags: { appId: APP, keyId: 'k1' }, expiresInDays: 10 })]);
    const result = await handleKeyVaultEvent(pascal(), h.deps);
    expect(result).toMatchObject({ outcome: 'enqueued', appId: APP });
    expect(h.queued).toEqual([{ capability: 'credentials', target: APP, reason: expect.stringContaining('SecretNearExpiry'), trigger: { kind: 'event', id: pascal().id } }]);
  });

  it('handles the camelCase payload and upper-case tag keys the same way', async () => {
    const h = harness([version(VERSION, 80, { tags: { APPID: APP.toUpperCase() } })]);
    expect(await handleKeyVaultEvent(camelString, h.deps)).toMatchObject({ outcome: 'enqueued', appId: APP });
    expect(h.queued).toHaveLength(1);
  });

  it('skips an event whose version has been replaced by a newer, healthy one (a rotation already done)', async () => {
    const h = harness([
      version(VERSION, 80, { tags: { appId: APP }, expiresInDays: 10 }),
      version('newer', 0, { tags: { appId: APP }, expiresInDays: 90 }),
    ]);
    expect(await handleKeyVaultEvent(pascal(), h.deps)).toMatchObject({ outcome: 'skipped', appId: APP });
    expect(h.queued).toEqual([]);
  });

  it('still queues when the newer version is itself near expiry or disabled', async () => {
    for (const newer of [version('newer', 0, { tags: { appId: APP }, expiresInDays: 3 }), version('newer', 0, { tags: { appId: APP }, enabled: false, expiresInDays: 90 })]) {
      const h = harness([version(VERSION, 80, { tags: { appId: APP } }), newer]);
      expect((await handleKeyVaultEvent(pascal(), h.deps)).outcome).toBe('enqueued');
    }
  });

  it('ignores secrets the policy does not rotate into, without reading Key Vault', async () => {
    const h = harness([], [{ appId: APP, vaultUrl: 'https://kv9.vault.azure.net', secretName: 'app-secret' }]);
    expect(await handleKeyVaultEvent(pascal(), h.deps)).toMatchObject({ outcome: 'ignored' });
    expect(h.reads).toEqual([]);
    expect(h.queued).toEqual([]);
  });

  it('ignores a secret whose appId tag names an app the policy does not rotate into it', async () => {
    const h = harness([version(VERSION, 10, { tags: { appId: OTHER_APP } })]);
    expect(await handleKeyVaultEvent(pascal(), h.deps)).toMatchObject({ outcome: 'ignored' });
    expect(h.queued).toEqual([]);
  });

  it('ignores SecretNewVersionCreated', async () => {
    const h = harness([]);
    expect(await handleKeyVaultEvent(pascal({ eventType: 'Microsoft.KeyVault.SecretNewVersionCreated' }), h.deps)).toMatchObject({ outcome: 'ignored' });
  });

  it('throws InputError for input that is not a Key Vault event (the function completes instead of retrying)', async () => {
    const h = harness([]);
    await expect(handleKeyVaultEvent({ hello: 'world' }, h.deps)).rejects.toBeInstanceOf(InputError);
    await expect(handleKeyVaultEvent('not json', h.deps)).rejects.toBeInstanceOf(InputError);
  });

  it('fails (so Event Grid redelivers) when Key Vault cannot be read', async () => {
    const h = harness([]);
    h.deps.secrets.versions = async () => {
      throw Object.assign(new Error('Service Unavailable'), { statusCode: 503 });
    };
    await expect(handleKeyVaultEvent(pascal(), h.deps)).rejects.toThrow('Service Unavailable');
    expect(h.queued).toEqual([]);
  });
});
