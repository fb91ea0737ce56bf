/**
 * Contract tests of the Secrets adapter (`shared/ports/azure/secrets.ts`): the real `SecretClient`,
 * built by `createAzureClients` from emulator settings (challenge auth, resource verification off for
 * the loopback vault), against the emulated Key Vault. Warden reads metadata only: no request ever
 * fetches a secret value.
 */
import type { Emulator } from '../../emulator';
import { createLimiter } from '../../shared/concurrency';
import { createKeyVaultSecrets } from '../../shared/ports/azure/secrets';
import { latestVersion, type Secrets } from '../../shared/ports/secrets';
import { wardenClients, withEmulator } from '../helpers/emulator';

const VAULT = 'kv-contract';
let emu: Emulator;
let secrets: Secrets;
let vaultUrl: string;

beforeAll(async () => {
  emu = await withEmulator({
    tenant: {
      tenantId: 'c7cb8e56-3c8d-431c-a94c-866e27a25b45',
      vaults: [{ name: VAULT, secrets: [{ name: 'seeded', value: 'seeded-value-123', expiresOn: 'now+40d', tags: { appId: 'x' } }] }],
    },
  });
  vaultUrl = emu.vaultUrl(VAULT);
  const { clients } = wardenClients(emu);
  secrets = createKeyVaultSecrets(clients, createLimiter(4));
});

afterAll(async () => {
  await emu.stop();
});

describe('Secrets adapter against the emulated Key Vault', () => {
  it('answers [] for a secret that does not exist', async () => {
    expect(await secrets.versions(vaultUrl, 'missing')).toEqual([]);
  });

  it('writes a new version with expiry, tags and content type, and returns its properties without the value', async () => {
    const expiresOn = new Date(Math.floor((emu.clock.now() + 90 * 86400_000) / 1000) * 1000);
    const written = await secrets.set(`${vaultUrl}/`, 'app-secret', 'first-value-abcdef', {
      expiresOn,
      contentType: 'application/vnd.warden.entra-client-secret',
      tags: { appId: 'a1', keyId: 'k1', managedBy: 'warden' },
    });
    expect(written).toMatchObject({ vaultUrl, name: 'app-secret', enabled: true, expiresOn, contentType: 'application/vnd.warden.entra-client-secret', tags: { appId: 'a1', keyId: 'k1', managedBy: 'warden' } });
    expect(written.version).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(written)).not.toContain('first-value');
    const stored = emu.keyvault.getSecret(VAULT, 'app-secret');
    expect(stored).toMatchObject({ value: 'first-value-abcdef', version: written.version, expiresOn, tags: { appId: 'a1', keyId: 'k1', managedBy: 'warden' } });
  });

  it('lists versions oldest first; the latest is the one written last; no value is ever read', async () => {
    const mark = emu.record.mark();
    const second = await secrets.set(vaultUrl, 'app-secret', 'second-value-abcdef', { expiresOn: new Date(emu.clock.now() + 86400_000), contentType: 'x', tags: { keyId: 'k2' } });
    const versions = await secrets.versions(vaultUrl, 'app-secret');
    expect(versions.map((v) => v.tags.keyId)).toEqual(['k1', 'k2']);
    expect(latestVersion(versions)?.version).toBe(second.version);
    expect(JSON.stringify(versions)).not.toContain('value-abcdef');
    expect(emu.record.since(mark, { service: 'keyvault', operation: 'keyvault.secrets.get' })).toEqual([]);
    expect(emu.record.since(mark, { service: 'keyvault', operation: 'keyvault.secrets.versions' }).length).toBeGreaterThanOrEqual(1);
  });

  it('rides out a short Key Vault outage through the SDK retries', async () => {
    emu.keyvault.failNextWrites(VAULT, 2, 503);
    const v = await secrets.set(vaultUrl, 'app-secret', 'third-value-abcdef', { expiresOn: new Date(emu.clock.now() + 86400_000), contentType: 'x', tags: {} });
    expect(emu.keyvault.getSecret(VAULT, 'app-secret')?.version).toBe(v.version);
  });

  it('fails with the status when the outage outlasts the retries, and stores nothing', async () => {
    const before = emu.keyvault.versions(VAULT, 'app-secret').length;
    emu.keyvault.failNextWrites(VAULT, 10, 503);
    await expect(secrets.set(vaultUrl, 'app-secret', 'fourth-value-abcdef', { expiresOn: new Date(emu.clock.now() + 86400_000), contentType: 'x', tags: {} })).rejects.toMatchObject({ statusCode: 503 });
    expect(emu.keyvault.versions(VAULT, 'app-secret')).toHaveLength(before);
    emu.keyvault.failNextWrites(VAULT, 0, 503);
  });
});
