/**
 * Key Vault secrets as the credentials capability needs them: version metadata (read without ever
 * reading a value, so Warden needs no secret-read permission) and writing a new version. The SDK
 * adapter lives in `shared/ports/azure/secrets.ts`.
 */

/** One secret version's properties. Never holds the value. */
export interface SecretVersion {
  /** Vault URL without a trailing slash. */
  vaultUrl: string;
  name: string;
  version: string;
  enabled: boolean;
  createdOn: Date | undefined;
  updatedOn: Date | undefined;
  expiresOn: Date | undefined;
  contentType: string | undefined;
  tags: Record<string, string>;
}

export interface SetSecretOptions {
  expiresOn: Date;
  contentType: string;
  tags: Record<string, string>;
}

export interface Secrets {
  /** Every version of a secret, oldest first ([] when the secret does not exist). */
  versions(vaultUrl: string, name: string): Promise<SecretVersion[]>;
  /** Writes a new version; the value leaves Warden here and nowhere else. */
  set(vaultUrl: string, name: string, value: string, options: SetSecretOptions): Promise<SecretVersion>;
}

/** The current version: the newest created (Key Vault's own rule); undefined for no versions. */
export function latestVersion(versions: readonly SecretVersion[]): SecretVersion | undefined {
  let best: SecretVersion | undefined;
  for (const v of versions) {
    if (!best || (v.createdOn?.getTime() ?? 0) >= (best.createdOn?.getTime() ?? 0)) best = v;
  }
  return best;
}
