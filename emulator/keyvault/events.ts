/**
 * Key Vault system-topic events. The live service has been seen with two payload casings (facts §6.2):
 * PascalCase with numeric `NBF`/`EXP` (docs and the SDK mappers), and camelCase except `Id` with the
 * numbers as strings (MicrosoftDocs/azure-docs#78126). The emulator can produce both so handlers are
 * tested against each.
 */
export const SECRET_EVENT_TYPES = ['SecretNewVersionCreated', 'SecretNearExpiry', 'SecretExpired'] as const;
export type SecretEventType = (typeof SECRET_EVENT_TYPES)[number];
export type SecretEventCasing = 'pascal' | 'camel-string';

/** Near-expiry fires this long before `exp` (the service's fixed window). */
export const NEAR_EXPIRY_WINDOW_SECONDS = 30 * 86400;

export interface SecretEventSource {
  vaultName: string;
  /** Vault URL without a trailing slash; the `Id` is built from it. */
  vaultUrl: string;
  secretName: string;
  version: string;
  nbf?: number | undefined;
  exp?: number | undefined;
}

/** `Microsoft.KeyVault.SecretNearExpiry` from `SecretNearExpiry` (either spelling accepted). */
export function fullSecretEventType(type: string): `Microsoft.KeyVault.${SecretEventType}` {
  const short = type.replace(/^Microsoft\.KeyVault\./i, '');
  const known = SECRET_EVENT_TYPES.find((t) => t.toLowerCase() === short.toLowerCase());
  if (!known) throw new Error(`Unknown Key Vault secret event type: ${type}`);
  return `Microsoft.KeyVault.${known}`;
}

export function secretEventData(src: SecretEventSource, casing: SecretEventCasing): Record<string, unknown> {
  const id = `${src.vaultUrl}/secrets/${src.secretName}/${src.version}`;
  if (casing === 'pascal') {
    return {
      Id: id,
      VaultName: src.vaultName,
      ObjectType: 'Secret',
      ObjectName: src.secretName,
      Version: src.version,
      NBF: src.nbf ?? null,
      EXP: src.exp ?? null,
    };
  }
  return {
    version: src.version,
    Id: id,
    exp: src.exp === undefined ? null : String(src.exp),
    vaultName: src.vaultName,
    objectType: 'Secret',
    nbf: src.nbf === undefined ? null : String(src.nbf),
    objectName: src.secretName,
  };
}

export function vaultTopic(subscriptionId: string, vaultName: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/rg-warden/providers/Microsoft.KeyVault/vaults/${vaultName}`;
}
