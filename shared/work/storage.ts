/**
 * `AzureWebJobsStorage` as a full connection string. `UseDevelopmentStorage=true` means Azurite on its
 * default loopback ports (blob 10000, queue 10001, table 10002); `WARDEN_AZURITE_BLOB_PORT`,
 * `WARDEN_AZURITE_QUEUE_PORT` and `WARDEN_AZURITE_TABLE_PORT` move them, and
 * `DevelopmentStorageProxyUri=http://host` (the documented option) moves the host.
 */

/** Azurite's well-known development account (public, the same in every install; not a secret). */
export const DEV_STORAGE_ACCOUNT = 'devstoreaccount1';
const DEV_STORAGE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

function port(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} must be a port number; got "${raw}"`);
  return n;
}

export function resolveStorageConnectionString(
  value: string,
  env: Readonly<Record<string, string | undefined>> = {},
): string {
  const parts = value.split(';').map((p) => p.trim()).filter(Boolean);
  const dev = parts.some((p) => p.toLowerCase() === 'usedevelopmentstorage=true');
  if (!dev) return value;
  const proxy = parts.find((p) => p.toLowerCase().startsWith('developmentstorageproxyuri='));
  const base = (proxy ? proxy.slice(proxy.indexOf('=') + 1) : 'http://127.0.0.1').replace(/\/+$/, '');
  const blob = port(env, 'WARDEN_AZURITE_BLOB_PORT', 10000);
  const queue = port(env, 'WARDEN_AZURITE_QUEUE_PORT', 10001);
  const table = port(env, 'WARDEN_AZURITE_TABLE_PORT', 10002);
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${DEV_STORAGE_ACCOUNT}`,
    `AccountKey=${DEV_STORAGE_KEY}`,
    `BlobEndpoint=${base}:${blob}/${DEV_STORAGE_ACCOUNT}`,
    `QueueEndpoint=${base}:${queue}/${DEV_STORAGE_ACCOUNT}`,
    `TableEndpoint=${base}:${table}/${DEV_STORAGE_ACCOUNT}`,
    '',
  ].join(';');
}
