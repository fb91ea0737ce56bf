/**
 * Every SDK client, created once per process from the settings and cached (per subscription, vault or
 * topic). SDK modules load on first use, so registering functions stays cheap (cold start).
 * Only adapters in `shared/ports/azure` touch these; capabilities see ports in domain types.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import type { AzureMachineLearningWorkspaces } from '@azure/arm-machinelearning';
import type { EventGridPublisherClient } from '@azure/eventgrid';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { Client as GraphClient, Context as GraphContext, Middleware as GraphMiddleware } from '@microsoft/microsoft-graph-client';
import type { QueueClient } from '@azure/storage-queue';
import type { TableClient } from '@azure/data-tables';
import type { PipelineResponse } from '@azure/core-rest-pipeline';
import { CLOUDS, type Settings } from '../settings';
import { assertEndpointAllowed, createCredential } from './credential';

/** Retry options for Azure SDK clients (429/503 with Retry-After honoured by the SDK). */
export interface RetryTuning {
  maxRetries: number;
  retryDelayInMs: number;
  maxRetryDelayInMs: number;
}

export const DEFAULT_RETRY: RetryTuning = { maxRetries: 4, retryDelayInMs: 800, maxRetryDelayInMs: 30_000 };

const PUBLIC_GRAPH_HOSTS = new Set(['graph.microsoft.com', 'graph.microsoft.us', 'dod-graph.microsoft.us', 'microsoftgraph.chinacloudapi.cn']);

export interface AzureClients {
  credential(): Promise<TokenCredential>;
  /** LRO poll interval to pass as `updateIntervalInMs` (undefined = the SDK default / Retry-After). */
  readonly lroPollMs: number | undefined;
  authorization(subscriptionId: string): Promise<AuthorizationManagementClient>;
  machineLearning(subscriptionId: string): Promise<AzureMachineLearningWorkspaces>;
  /** A GET on any ARM resource id (container registries, subscriptions…), parsed JSON or undefined on 404. */
  armGet(resourceId: string, apiVersion: string): Promise<unknown>;
  graph(): Promise<GraphClient>;
  secrets(vaultUrl: string): Promise<SecretClient>;
  eventGrid(topicUrl: string): Promise<EventGridPublisherClient<'CloudEvent'>>;
  queue(name: string): Promise<QueueClient>;
  table(name: string): Promise<TableClient>;
}

export interface ClientOptions {
  retry?: RetryTuning;
  /** LRO poll interval for Azure ML operations (tests make it short). */
  lroPollMs?: number;
}

function memo<K, V>(make: (k: K) => Promise<V>): (k: K) => Promise<V> {
  const cache = new Map<K, Promise<V>>();
  return (k) => {
    let p = cache.get(k);
    if (!p) {
      p = make(k);
      cache.set(k, p);
      p.catch(() => cache.delete(k));
    }
    return p;
  };
}

export function createAzureClients(
  settings: Pick<Settings, 'credential' | 'managedIdentityClientId' | 'endpoints' | 'storage' | 'cloud'>,
  options: ClientOptions = {},
): AzureClients {
  const retry = options.retry ?? DEFAULT_RETRY;
  let credentialP: Promise<TokenCredential> | undefined;
  const credential = (): Promise<TokenCredential> => (credentialP ??= createCredential(settings));
  // The token audience is the cloud's ARM root even when the endpoint is overridden (private link, emulator).
  const armScope = `${CLOUDS[settings.cloud].arm}/.default`;
  const armOptions = () => ({
    endpoint: settings.endpoints.arm,
    credentialScopes: [armScope],
    retryOptions: retry,
    userAgentOptions: { userAgentPrefix: 'warden' },
  });

  const authorization = memo(async (sub: string) => {
    const { AuthorizationManagementClient } = await import('@azure/arm-authorization');
    return new AuthorizationManagementClient(await credential(), sub, armOptions());
  });
  const machineLearning = memo(async (sub: string) => {
    const { AzureMachineLearningWorkspaces } = await import('@azure/arm-machinelearning');
    return new AzureMachineLearningWorkspaces(await credential(), sub, armOptions());
  });

  let graphP: Promise<GraphClient> | undefined;
  const graph = (): Promise<GraphClient> =>
    (graphP ??= (async () => {
      const graphSdk = await import('@microsoft/microsoft-graph-client');
      const cred = await credential();
      const root = settings.endpoints.graph;
      const host = new URL(root).hostname.toLowerCase();
      const scope = `${PUBLIC_GRAPH_HOSTS.has(host) ? root : 'https://graph.microsoft.com'}/.default`;
      const authProvider = {
        getAccessToken: async () => {
          const t = await cred.getToken(scope);
          if (!t) throw new Error('No token for Microsoft Graph');
          return t.token;
        },
      };
      // The SDK's default chain, with its RetryHandler (429/503/504) tuned like the other clients and,
      // outside it, a retry of 500/502 and dropped connections for requests that are safe to repeat.
      const middleware: GraphMiddleware[] = [
        new graphSdk.AuthenticationHandler(authProvider),
        new GraphServerErrorRetry(retry),
        new graphSdk.RetryHandler(new graphSdk.RetryHandlerOptions(retry.retryDelayInMs / 1000, Math.min(retry.maxRetries, 10))),
        new graphSdk.RedirectHandler(new graphSdk.RedirectHandlerOptions()),
        new graphSdk.TelemetryHandler(),
        new graphSdk.HTTPMessageHandler(),
      ];
      return graphSdk.Client.initWithMiddleware({
        baseUrl: `${root}/`,
        defaultVersion: 'v1.0',
        ...(PUBLIC_GRAPH_HOSTS.has(host) ? {} : { customHosts: new Set([host]) }),
        middleware,
      });
    })());

  const secrets = memo(async (vaultUrl: string) => {
    assertEndpointAllowed(settings, vaultUrl, 'Key Vault');
    const { SecretClient } = await import('@azure/keyvault-secrets');
    return new SecretClient(vaultUrl, await credential(), {
      retryOptions: retry,
      disableChallengeResourceVerification: settings.credential === 'emulator',
    });
  });

  const eventGrid = memo(async (topicUrl: string) => {
    assertEndpointAllowed(settings, topicUrl, 'Event Grid topic');
    const { EventGridPublisherClient } = await import('@azure/eventgrid');
    return new EventGridPublisherClient(topicUrl, 'CloudEvent', await credential(), { retryOptions: retry });
  });

  // Identity-based storage may use its own user-assigned identity (AzureWebJobsStorage__clientId).
  let storageCredentialP: Promise<TokenCredential> | undefined;
  const storageCredential = (clientId: string | undefined): Promise<TokenCredential> =>
    (storageCredentialP ??=
      clientId === undefined || clientId === settings.managedIdentityClientId
        ? credential()
        : createCredential({ ...settings, managedIdentityClientId: clientId }));
  const storage = settings.storage;
  const queue = memo(async (name: string) => {
    const { QueueServiceClient } = await import('@azure/storage-queue');
    if (storage.kind === 'identity') {
      return new QueueServiceClient(storage.queueServiceUri, await storageCredential(storage.clientId), { retryOptions: { maxTries: retry.maxRetries + 1 } }).getQueueClient(name);
    }
    return QueueServiceClient.fromConnectionString(storageConnectionString(storage.connectionString)).getQueueClient(name);
  });
  const table = memo(async (name: string) => {
    const { TableClient } = await import('@azure/data-tables');
    if (storage.kind === 'identity') return new TableClient(storage.tableServiceUri, name, await storageCredential(storage.clientId));
    return TableClient.fromConnectionString(storageConnectionString(storage.connectionString), name, { allowInsecureConnection: true });
  });

  const armGet = async (resourceId: string, apiVersion: string): Promise<unknown> => {
    const sub = /^\/subscriptions\/([^/]+)/i.exec(resourceId)?.[1];
    if (!sub) throw new Error(`Not an ARM resource id: ${resourceId}`);
    const client = await machineLearning(sub);
    const { createPipelineRequest } = await import('@azure/core-rest-pipeline');
    const url = `${settings.endpoints.arm}${resourceId}?api-version=${encodeURIComponent(apiVersion)}`;
    const res: PipelineResponse = await client.sendRequest(createPipelineRequest({ url, method: 'GET' }));
    if (res.status === 404) return undefined;
    if (res.status >= 400) {
      const { RestError } = await import('@azure/core-rest-pipeline');
      let code: string | undefined;
      try {
        code = (JSON.parse(res.bodyAsText ?? '{}') as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      throw new RestError(`GET ${resourceId} failed with ${res.status}`, { statusCode: res.status, ...(code ? { code } : {}) });
    }
    return res.bodyAsText ? (JSON.parse(res.bodyAsText) as unknown) : undefined;
  };

  return {
    credential,
    lroPollMs: options.lroPollMs,
    authorization,
    machineLearning,
    armGet,
    graph,
    secrets,
    eventGrid,
    queue,
    table,
  };
}

/** Graph answers the SDK's RetryHandler does not retry (it knows only 429/503/504) but that are worth another try. */
const GRAPH_RETRY_STATUSES = new Set([500, 502]);
/** A Retry-After longer than this is left to the caller's own retry (the work queue) instead of a function waiting it out. */
const GRAPH_MAX_RETRY_AFTER_MS = 60_000;

/**
 * Whether repeating a Graph request cannot do anything twice: reads, and the PATCH (renew) and DELETE
 * of a change-notification subscription. Never a POST: `addPassword` would mint a second secret,
 * `sendMail` send twice, and a `$batch` may carry writes.
 */
export function isIdempotentGraphRequest(method: string | undefined, url: string): boolean {
  const m = (method ?? 'GET').toUpperCase();
  if (m === 'GET' || m === 'HEAD' || m === 'OPTIONS') return true;
  if (m !== 'PATCH' && m !== 'DELETE') return false;
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return false;
  }
  return /^\/(?:v1\.0|beta)\/subscriptions\/[^/]+\/?$/i.test(path.replace(/\/{2,}/g, '/'));
}

/** Milliseconds a response asks to wait (`retry-after-ms`, `x-ms-retry-after-ms`, `Retry-After` in seconds or as a date). */
function retryAfterMs(headers: Headers, now: number): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const v = headers.get(name);
    if (v !== null && v.trim() !== '' && Number.isFinite(Number(v))) return Math.max(0, Number(v));
  }
  const v = headers.get('retry-after');
  if (v === null || v.trim() === '') return undefined;
  if (Number.isFinite(Number(v))) return Math.max(0, Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Graph middleware: retries a 500 or 502, or a connection that closed without an answer, for an
 * idempotent request ({@link isIdempotentGraphRequest}), honouring `Retry-After`, else backing off
 * exponentially with jitter. A one-off Graph hiccup thus no longer fails a whole sweep. Other requests
 * get the error as before; the work queue retries them after the capability has re-read the state.
 */
export class GraphServerErrorRetry implements GraphMiddleware {
  private next: GraphMiddleware | undefined;

  constructor(private readonly tuning: RetryTuning) {}

  setNext(next: GraphMiddleware): void {
    this.next = next;
  }

  async execute(context: GraphContext): Promise<void> {
    const next = this.next;
    if (!next) throw new Error('GraphServerErrorRetry must not be the last middleware');
    const { method, url } = requestLine(context);
    const idempotent = isIdempotentGraphRequest(method, url);
    const backoff = (attempt: number): number => {
      const cap = Math.min(this.tuning.maxRetryDelayInMs, this.tuning.retryDelayInMs * 2 ** attempt);
      return cap / 2 + Math.random() * (cap / 2);
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await next.execute(context);
      } catch (err) {
        if (!idempotent || context.options?.signal?.aborted === true || attempt >= this.tuning.maxRetries) throw err;
        await sleepMs(backoff(attempt));
        continue;
      }
      const response = context.response;
      if (!idempotent || !response || !GRAPH_RETRY_STATUSES.has(response.status) || attempt >= this.tuning.maxRetries) return;
      const asked = retryAfterMs(response.headers, Date.now());
      if (asked !== undefined && asked > GRAPH_MAX_RETRY_AFTER_MS) return;
      // The answer is not used: free its connection.
      await response.body?.cancel().catch(() => undefined);
      await sleepMs(asked ?? backoff(attempt));
    }
  }
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Method and URL of a Graph middleware request (the SDK passes the URL as a string and the method in the options). */
function requestLine(context: GraphContext): { method: string | undefined; url: string } {
  const request: unknown = context.request;
  const fromOptions = context.options?.method;
  if (typeof request === 'string') return { method: fromOptions, url: request };
  const r = request as { url?: unknown; method?: unknown };
  return { method: fromOptions ?? (typeof r.method === 'string' ? r.method : undefined), url: typeof r.url === 'string' ? r.url : '' };
}

/** Azurite's well-known development endpoints for `UseDevelopmentStorage=true`. */
export function storageConnectionString(value: string): string {
  if (value.trim().toLowerCase() !== 'usedevelopmentstorage=true') return value;
  const key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
  return [
    'DefaultEndpointsProtocol=http',
    'AccountName=devstoreaccount1',
    `AccountKey=${key}`,
    'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1',
    'QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1',
    'TableEndpoint=http://127.0.0.1:10002/devstoreaccount1',
  ].join(';');
}
