/**
 * Key Vault secret events (`Microsoft.KeyVault.SecretNearExpiry`, `SecretExpired`,
 * `SecretNewVersionCreated`). The live service sends the data in two casings (AZURE-API-FACTS §6.2):
 * PascalCase with numeric `NBF`/`EXP` (`{"Id","VaultName","ObjectType","ObjectName","Version","NBF","EXP"}`)
 * and camelCase except `Id` with the numbers as strings (`{"Id","vaultName","objectName","version","nbf":"…","exp":"…"}`),
 * and a documented example even has a key with a trailing space. So keys are matched case- and
 * space-insensitively, numbers are accepted as numbers or digit strings, and the name and version
 * fall back to what the `Id` says.
 */
import { z } from 'zod';
import { InputError } from '../errors';
import type { NormalizedEvent } from './eventgrid';

export const KEY_VAULT_SECRET_EVENTS = ['SecretNearExpiry', 'SecretExpired', 'SecretNewVersionCreated'] as const;
export type KeyVaultSecretEventType = (typeof KEY_VAULT_SECRET_EVENTS)[number];

export interface KeyVaultSecretEvent {
  /** Event id (for the audit trail's trigger). */
  id: string;
  type: KeyVaultSecretEventType;
  /** Vault URL from the `Id`, without a trailing slash (`https://kv1.vault.azure.net`). */
  vaultUrl: string;
  vaultName: string;
  secretName: string;
  version: string;
  expiresOn: Date | undefined;
  notBefore: Date | undefined;
}

/** Unix seconds as a number or a digit string; null/absent → undefined. */
const unixSeconds = z
  .union([z.number(), z.string().trim().regex(/^\d{1,12}$/, 'must be Unix seconds')])
  .nullish()
  .transform((v) => (v === null || v === undefined ? undefined : new Date(Number(v) * 1000)))
  .refine((d) => d === undefined || !Number.isNaN(d.getTime()), 'must be Unix seconds');

const optionalText = z
  .string()
  .trim()
  .max(1024)
  .nullish()
  .transform((v) => (v ? v : undefined));

/** The data after its keys were lower-cased and trimmed. */
const dataSchema = z.object({
  id: z.string().trim().min(1).max(2048),
  vaultname: optionalText,
  objecttype: optionalText,
  objectname: optionalText,
  version: optionalText,
  nbf: unixSeconds,
  exp: unixSeconds,
});

/** `https://host[:port]/secrets/{name}[/{version}]` → its parts (the SDK's own identifier rule). */
export function parseSecretId(id: string): { vaultUrl: string; name: string; version: string | undefined } | undefined {
  let u: URL;
  try {
    u = new URL(id);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  const parts = u.pathname.split('/').filter(Boolean);
  if (parts.length < 2 || parts.length > 3 || parts[0]?.toLowerCase() !== 'secrets' || !parts[1]) return undefined;
  return { vaultUrl: `${u.protocol}//${u.host}`, name: decodeURIComponent(parts[1]), version: parts[2] ? decodeURIComponent(parts[2]) : undefined };
}

function lowerKeys(data: unknown): Record<string, unknown> | undefined {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    const key = k.trim().toLowerCase();
    if (!(key in out)) out[key] = v;
  }
  return out;
}

/** The short type (`SecretNearExpiry`) of a Key Vault secret event type, or undefined for any other type. */
export function keyVaultSecretEventType(type: string): KeyVaultSecretEventType | undefined {
  const short = type.trim().replace(/^Microsoft\.KeyVault\./i, '');
  return KEY_VAULT_SECRET_EVENTS.find((t) => t.toLowerCase() === short.toLowerCase());
}

/**
 * Parses a normalised Event Grid event into a Key Vault secret event. Throws {@link InputError} for
 * another event type, a non-secret object or data that names no secret.
 */
export function parseKeyVaultSecretEvent(event: NormalizedEvent): KeyVaultSecretEvent {
  const type = keyVaultSecretEventType(event.type);
  if (!type) throw new InputError('UnsupportedEvent', `Not a Key Vault secret event: ${event.type}`);
  const lowered = lowerKeys(event.data);
  if (!lowered) throw new InputError('InvalidEvent', `The ${type} event carries no data object.`);
  const r = dataSchema.safeParse(lowered);
  if (!r.success) {
    throw new InputError('InvalidEvent', `Invalid ${type} event data: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  }
  const d = r.data;
  if (d.objecttype !== undefined && d.objecttype.toLowerCase() !== 'secret') {
    throw new InputError('UnsupportedEvent', `The ${type} event is about a ${d.objecttype}, not a secret.`);
  }
  const parsedId = parseSecretId(d.id);
  if (!parsedId) throw new InputError('InvalidEvent', `The ${type} event's Id is not a Key Vault secret identifier.`);
  const secretName = d.objectname ?? parsedId.name;
  const version = d.version ?? parsedId.version;
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(secretName)) throw new InputError('InvalidEvent', `The ${type} event names no valid secret.`);
  if (!version) throw new InputError('InvalidEvent', `The ${type} event names no secret version.`);
  const vaultName = d.vaultname ?? new URL(parsedId.vaultUrl).hostname.split('.')[0] ?? '';
  return { id: event.id, type, vaultUrl: parsedId.vaultUrl, vaultName, secretName, version, expiresOn: d.exp, notBefore: d.nbf };
}
