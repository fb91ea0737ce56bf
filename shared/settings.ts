/**
 * App settings (SPEC §3), read once from the environment into a frozen, typed object. Every bad or
 * missing key is reported at once, by name. Nothing else in the app reads `process.env`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Cron } from 'croner';
import { type Issue, SettingsError } from './errors';

export type CloudName = 'public' | 'usgov' | 'china';
export type CredentialMode = 'default' | 'emulator';

export interface CloudEndpoints {
  /** ARM root without version, e.g. `https://management.azure.com`. */
  arm: string;
  /** Graph root without version, e.g. `https://graph.microsoft.com` (Warden adds `/v1.0`). */
  graph: string;
  /** Entra authority host. */
  authority: string;
  /** Token audience of Event Grid data-plane publishing. */
  eventGridScope: string;
}

export const CLOUDS: Readonly<Record<CloudName, CloudEndpoints>> = Object.freeze({
  public: {
    arm: 'https://management.azure.com',
    graph: 'https://graph.microsoft.com',
    authority: 'https://login.microsoftonline.com',
    eventGridScope: 'https://eventgrid.azure.net/.default',
  },
  usgov: {
    arm: 'https://management.usgovcloudapi.net',
    graph: 'https://graph.microsoft.us',
    authority: 'https://login.microsoftonline.us',
    eventGridScope: 'https://eventgrid.azure.net/.default',
  },
  china: {
    arm: 'https://management.chinacloudapi.cn',
    graph: 'https://microsoftgraph.chinacloudapi.cn',
    authority: 'https://login.chinacloudapi.cn',
    eventGridScope: 'https://eventgrid.azure.net/.default',
  },
});

export type PolicySource = { kind: 'inline'; json: string } | { kind: 'file'; path: string };

/**
 * Where queues and tables live: a connection string (Azurite, or keys), or — as the Functions host
 * supports and the Bicep deploys — the storage account reached with the app's managed identity.
 */
export type StorageSettings =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; queueServiceUri: string; tableServiceUri: string; clientId: string | undefined };

const STORAGE_SUFFIX: Record<CloudName, string> = {
  public: 'core.windows.net',
  usgov: 'core.usgovcloudapi.net',
  china: 'core.chinacloudapi.cn',
};

export interface Settings {
  /** `AzureWebJobsStorage` (connection string) or `AzureWebJobsStorage__*` (identity): queues, tables and the host. */
  storage: StorageSettings;
  policySource: PolicySource;
  cloud: CloudName;
  endpoints: CloudEndpoints;
  credential: CredentialMode;
  /** `AZURE_CLIENT_ID`: picks a user-assigned managed identity. */
  managedIdentityClientId: string | undefined;
  /** Base URL for Graph subscriptions' notification URLs; unset = webhook subscriptions not managed. */
  publicUrl: string | undefined;
  /** The secret Graph echoes in every notification. */
  clientState: string | undefined;
  sweepSchedule: string;
  concurrency: number;
  remediationRole: string | undefined;
  /** `WEBSITE_AUTH_ENABLED`: App Service Authentication strips client copies of the principal header. */
  appServiceAuthEnabled: boolean;
  /** `WARDEN_LRO_POLL_MS`: poll interval of Azure ML long-running operations (SDK default 2000 ms). */
  lroPollMs: number | undefined;
  /** `WARDEN_RETRY_DELAY_MS`: base delay of the SDKs' exponential retry (default 800 ms). */
  retryDelayMs: number | undefined;
  /** `WARDEN_LOG_LEVEL`: the least severe level written (`debug`, `info`, `warn`, `error`). */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** All app settings, for `%NAME%` substitution in the policy. */
  appSettings: Readonly<Record<string, string>>;
  version: string;
}

/** Each setting with its meaning and default, for docs and for the infra consistency test. */
export const SETTING_DOCS: ReadonlyArray<{ name: string; required: boolean; default?: string; meaning: string }> = [
  { name: 'AzureWebJobsStorage', required: true, meaning: 'storage for queues, tables and the host (`UseDevelopmentStorage=true` locally); or the identity-based form below' },
  { name: 'AzureWebJobsStorage__accountName', required: false, meaning: 'identity-based storage: the account name (service URIs derived for the cloud)' },
  { name: 'AzureWebJobsStorage__queueServiceUri', required: false, meaning: 'identity-based storage: queue service URI (with __tableServiceUri, instead of __accountName)' },
  { name: 'AzureWebJobsStorage__tableServiceUri', required: false, meaning: 'identity-based storage: table service URI' },
  { name: 'AzureWebJobsStorage__credential', required: false, default: 'managedidentity', meaning: 'identity-based storage: must be `managedidentity`' },
  { name: 'AzureWebJobsStorage__clientId', required: false, meaning: 'identity-based storage: client id of the user-assigned identity (default AZURE_CLIENT_ID)' },
  { name: 'WARDEN_POLICY', required: false, meaning: 'the policy as inline JSON (wins over WARDEN_POLICY_FILE)' },
  { name: 'WARDEN_POLICY_FILE', required: false, default: 'policy.json', meaning: 'path of the policy file, relative to the app root' },
  { name: 'WARDEN_CLOUD', required: false, default: 'public', meaning: '`public`, `usgov` or `china`: sets the ARM, Graph and authority endpoints' },
  { name: 'WARDEN_ARM_ENDPOINT', required: false, meaning: 'overrides the ARM root (no version), e.g. for an emulator' },
  { name: 'WARDEN_GRAPH_ENDPOINT', required: false, meaning: 'overrides the Graph root (no version; Warden adds /v1.0)' },
  { name: 'WARDEN_CREDENTIAL', required: false, default: 'default', meaning: '`default` (managed identity / developer sign-in) or `emulator` (static token, loopback endpoints only)' },
  { name: 'AZURE_CLIENT_ID', required: false, meaning: 'client id of the user-assigned managed identity to use' },
  { name: 'WARDEN_PUBLIC_URL', required: false, meaning: "the app's public base URL for Graph subscriptions; unset = webhook subscriptions are not managed" },
  { name: 'WARDEN_CLIENT_STATE', required: false, meaning: 'secret echoed by Graph in notifications; required when WARDEN_PUBLIC_URL is set' },
  { name: 'WARDEN_SWEEP_SCHEDULE', required: false, default: '0 0 */6 * * *', meaning: 'NCRONTAB (six fields) of the full sweep' },
  { name: 'WARDEN_CONCURRENCY', required: false, default: '8', meaning: 'most Azure/Graph calls in flight per instance (1–64)' },
  { name: 'WARDEN_REMEDIATION_ROLE', required: false, meaning: "app role the caller's App Service Authentication principal must hold on plan/remediate/audit" },
  { name: 'WARDEN_LRO_POLL_MS', required: false, default: '2000', meaning: 'tuning: poll interval of Azure ML long-running operations, in ms (10–60000)' },
  { name: 'WARDEN_RETRY_DELAY_MS', required: false, default: '800', meaning: 'tuning: base delay of the SDK retry backoff for 5xx and network errors, in ms (1–60000); 429 follows Retry-After' },
  { name: 'WARDEN_LOG_LEVEL', required: false, default: 'info', meaning: 'least severe log level written: debug, info, warn or error' },
  { name: 'WEBSITE_AUTH_ENABLED', required: false, default: 'false', meaning: 'set by App Service when Authentication is on; only then is the principal header trusted' },
];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** True when a URL points at this machine (the only place the emulator credential may talk to). */
export function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.toLowerCase();
    return LOOPBACK_HOSTS.has(host) || /^127(\.\d{1,3}){3}$/.test(host);
  } catch {
    return false;
  }
}

function readVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const parsed = JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown; version?: unknown };
        if (parsed.name === 'warden' && typeof parsed.version === 'string') return parsed.version;
      } catch {
        // keep looking upwards
      }
    }
    dir = dirname(dir);
  }
  return '0.0.0';
}

function endpointRoot(name: string, raw: string, issues: Issue[]): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    issues.push({ path: name, message: `must be an absolute URL, got "${raw}"` });
    return undefined;
  }
  if (u.protocol !== 'https:') {
    issues.push({ path: name, message: 'must use https (the Azure SDKs refuse bearer tokens over http)' });
    return undefined;
  }
  if (/\/v1\.0\/?$|\/beta\/?$/.test(u.pathname)) {
    issues.push({ path: name, message: 'must be a root without a version (Warden adds /v1.0)' });
    return undefined;
  }
  return raw.replace(/\/+$/, '');
}

/**
 * Reads and validates the app settings. Throws one {@link SettingsError} naming every bad key.
 * @example const settings = loadSettings(); // in the composition root only
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, appRoot: string = process.cwd()): Settings {
  const issues: Issue[] = [];
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const storageRaw = get('AzureWebJobsStorage');
  const storageAccount = get('AzureWebJobsStorage__accountName');
  const queueUriRaw = get('AzureWebJobsStorage__queueServiceUri');
  const tableUriRaw = get('AzureWebJobsStorage__tableServiceUri');
  const storageCredential = get('AzureWebJobsStorage__credential');
  let storage: StorageSettings | undefined;
  if (storageRaw) storage = { kind: 'connectionString', connectionString: storageRaw };
  else if (storageAccount || queueUriRaw || tableUriRaw) {
    if (storageCredential && storageCredential.toLowerCase() !== 'managedidentity') {
      issues.push({ path: 'AzureWebJobsStorage__credential', message: `must be "managedidentity"; got "${storageCredential}"` });
    }
    const suffix = STORAGE_SUFFIX[(get('WARDEN_CLOUD') ?? 'public').toLowerCase() as CloudName] ?? STORAGE_SUFFIX.public;
    const queueServiceUri = queueUriRaw ?? (storageAccount ? `https://${storageAccount}.queue.${suffix}` : undefined);
    const tableServiceUri = tableUriRaw ?? (storageAccount ? `https://${storageAccount}.table.${suffix}` : undefined);
    if (!queueServiceUri) issues.push({ path: 'AzureWebJobsStorage__queueServiceUri', message: 'is required with __tableServiceUri (or set __accountName)' });
    if (!tableServiceUri) issues.push({ path: 'AzureWebJobsStorage__tableServiceUri', message: 'is required with __queueServiceUri (or set __accountName)' });
    if (queueServiceUri && tableServiceUri) {
      storage = { kind: 'identity', queueServiceUri, tableServiceUri, clientId: get('AzureWebJobsStorage__clientId') ?? get('AZURE_CLIENT_ID') };
    }
  } else {
    issues.push({ path: 'AzureWebJobsStorage', message: 'is required (use UseDevelopmentStorage=true with Azurite locally, or the identity-based AzureWebJobsStorage__accountName)' });
  }

  const inline = env.WARDEN_POLICY;
  let policySource: PolicySource;
  if (inline !== undefined && inline.trim() !== '') policySource = { kind: 'inline', json: inline };
  else {
    const file = get('WARDEN_POLICY_FILE') ?? 'policy.json';
    policySource = { kind: 'file', path: isAbsolute(file) ? file : resolve(appRoot, file) };
  }

  const cloudRaw = (get('WARDEN_CLOUD') ?? 'public').toLowerCase();
  let cloud: CloudName = 'public';
  if (cloudRaw === 'public' || cloudRaw === 'usgov' || cloudRaw === 'china') cloud = cloudRaw;
  else issues.push({ path: 'WARDEN_CLOUD', message: `must be one of public, usgov, china; got "${cloudRaw}"` });

  const base = CLOUDS[cloud];
  const armRaw = get('WARDEN_ARM_ENDPOINT');
  const graphRaw = get('WARDEN_GRAPH_ENDPOINT');
  const endpoints: CloudEndpoints = {
    ...base,
    arm: armRaw ? (endpointRoot('WARDEN_ARM_ENDPOINT', armRaw, issues) ?? base.arm) : base.arm,
    graph: graphRaw ? (endpointRoot('WARDEN_GRAPH_ENDPOINT', graphRaw, issues) ?? base.graph) : base.graph,
  };

  const credRaw = (get('WARDEN_CREDENTIAL') ?? 'default').toLowerCase();
  let credential: CredentialMode = 'default';
  if (credRaw === 'default' || credRaw === 'emulator') credential = credRaw;
  else issues.push({ path: 'WARDEN_CREDENTIAL', message: `must be "default" or "emulator"; got "${credRaw}"` });
  if (credential === 'emulator') {
    for (const [key, url] of [['WARDEN_ARM_ENDPOINT', endpoints.arm], ['WARDEN_GRAPH_ENDPOINT', endpoints.graph]] as const) {
      if (!isLoopbackUrl(url)) {
        issues.push({ path: key, message: `the emulator credential is accepted only for loopback endpoints; ${url} is not one` });
      }
    }
  }

  const publicUrlRaw = get('WARDEN_PUBLIC_URL');
  let publicUrl: string | undefined;
  if (publicUrlRaw) {
    try {
      const u = new URL(publicUrlRaw);
      if (u.protocol !== 'https:' && !(credential === 'emulator' && isLoopbackUrl(publicUrlRaw))) {
        issues.push({ path: 'WARDEN_PUBLIC_URL', message: 'must use https (http is allowed only for loopback with the emulator credential)' });
      } else publicUrl = publicUrlRaw.replace(/\/+$/, '');
    } catch {
      issues.push({ path: 'WARDEN_PUBLIC_URL', message: `must be an absolute URL, got "${publicUrlRaw}"` });
    }
  }
  const clientState = get('WARDEN_CLIENT_STATE');
  if (publicUrlRaw && !clientState) issues.push({ path: 'WARDEN_CLIENT_STATE', message: 'is required when WARDEN_PUBLIC_URL is set' });
  if (clientState && clientState.length > 128) issues.push({ path: 'WARDEN_CLIENT_STATE', message: 'must be at most 128 characters (Graph limit)' });

  const sweepSchedule = get('WARDEN_SWEEP_SCHEDULE') ?? '0 0 */6 * * *';
  if (sweepSchedule.split(/\s+/).length !== 6) {
    issues.push({ path: 'WARDEN_SWEEP_SCHEDULE', message: `must be an NCRONTAB expression with six fields (seconds first); got "${sweepSchedule}"` });
  } else {
    try {
      new Cron(sweepSchedule, { paused: true }).stop();
    } catch (e) {
      issues.push({ path: 'WARDEN_SWEEP_SCHEDULE', message: `is not a valid NCRONTAB expression: ${e instanceof Error ? e.message : String(e)}` });
    }
  }

  const concRaw = get('WARDEN_CONCURRENCY') ?? '8';
  const concurrency = Number(concRaw);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    issues.push({ path: 'WARDEN_CONCURRENCY', message: `must be a whole number from 1 to 64; got "${concRaw}"` });
  }

  const optionalMs = (key: string, min: number, max: number): number | undefined => {
    const raw = get(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      issues.push({ path: key, message: `must be a whole number of milliseconds from ${min} to ${max}; got "${raw}"` });
      return undefined;
    }
    return n;
  };
  const lroPollMs = optionalMs('WARDEN_LRO_POLL_MS', 10, 60_000);
  const retryDelayMs = optionalMs('WARDEN_RETRY_DELAY_MS', 1, 60_000);

  const logLevelRaw = (get('WARDEN_LOG_LEVEL') ?? 'info').toLowerCase();
  let logLevel: Settings['logLevel'] = 'info';
  if (logLevelRaw === 'debug' || logLevelRaw === 'info' || logLevelRaw === 'warn' || logLevelRaw === 'error') logLevel = logLevelRaw;
  else issues.push({ path: 'WARDEN_LOG_LEVEL', message: `must be debug, info, warn or error; got "${logLevelRaw}"` });

  const authRaw = (get('WEBSITE_AUTH_ENABLED') ?? 'false').toLowerCase();
  if (!['true', 'false', '1', '0'].includes(authRaw)) {
    issues.push({ path: 'WEBSITE_AUTH_ENABLED', message: `must be true or false; got "${authRaw}"` });
  }

  if (issues.length > 0) throw new SettingsError(issues);

  const appSettings: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') appSettings[k] = v;

  return Object.freeze({
    storage: Object.freeze(storage as StorageSettings),
    policySource: Object.freeze(policySource),
    cloud,
    endpoints: Object.freeze(endpoints),
    credential,
    managedIdentityClientId: get('AZURE_CLIENT_ID'),
    publicUrl,
    clientState,
    sweepSchedule,
    concurrency,
    remediationRole: get('WARDEN_REMEDIATION_ROLE'),
    appServiceAuthEnabled: authRaw === 'true' || authRaw === '1',
    lroPollMs,
    retryDelayMs,
    logLevel,
    appSettings: Object.freeze(appSettings),
    version: readVersion(),
  });
}
