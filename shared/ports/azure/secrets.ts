/**
 * The {@link Secrets} port over `@azure/keyvault-secrets` (AZURE-API-FACTS §5). Versions are read
 * with `listPropertiesOfSecretVersions`, which returns metadata only, so Warden's identity needs no
 * permission to read secret values (`secrets/readMetadata` and `secrets/setSecret` suffice). The only
 * place credentials code touches the Key Vault SDK.
 */
import type { SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import type { AzureClients } from '../../azure/clients';
import type { Limiter } from '../../concurrency';
import { statusOf } from '../../errors';
import type { SecretVersion, Secrets } from '../secrets';

function toVersion(vaultUrl: string, p: SecretProperties): SecretVersion {
  return {
    vaultUrl: vaultUrl.replace(/\/+$/, ''),
    name: p.name,
    version: p.version ?? '',
    enabled: p.enabled !== false,
    createdOn: p.createdOn,
    updatedOn: p.updatedOn,
    expiresOn: p.expiresOn,
    contentType: p.contentType,
    tags: { ...(p.tags ?? {}) },
  };
}

/** The Key Vault adapter; every call goes through `limiter` (`WARDEN_CONCURRENCY`). */
export function createKeyVaultSecrets(clients: Pick<AzureClients, 'secrets'>, limiter?: Limiter): Secrets {
  const run = <T>(vaultUrl: string, fn: (client: SecretClient) => Promise<T>): Promise<T> => {
    const call = async (): Promise<T> => fn(await clients.secrets(vaultUrl.replace(/\/+$/, '')));
    return limiter ? limiter.run(call) : call();
  };
  return {
    async versions(vaultUrl, name) {
      try {
        const out = await run(vaultUrl, async (client) => {
          const list: SecretVersion[] = [];
          for await (const p of client.listPropertiesOfSecretVersions(name)) list.push(toVersion(vaultUrl, p));
          return list;
        });
        // Key Vault does not promise an order; the current version is the newest created.
        return out.sort((a, b) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0));
      } catch (err) {
        if (statusOf(err) === 404) return [];
        throw err;
      }
    },

    async set(vaultUrl, name, value, options) {
      const secret = await run(vaultUrl, (client) =>
        client.setSecret(name, value, { expiresOn: options.expiresOn, contentType: options.contentType, tags: options.tags }),
      );
      // Only the properties leave this function; the answer's value field is dropped here.
      return toVersion(vaultUrl, secret.properties);
    },
  };
}
