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
import type { Client as GraphClient } from '@microsoft/microsoft-graph-client';
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
      const { Client } = await import('@microsoft/microsoft-graph-client');
      const cred = await credential();
      const root = settings.endpoints.graph;
      const host = new URL(root).hostname.toLowerCase();
      const scope = `${PUBLIC_GRAPH_HOSTS.has(host) ? root : 'https://graph.microsoft.com'}/.default`;
      return Client.initWithMiddleware({
        baseUrl: `${root}/`,
        defaultVersion: 'v1.0',
        ...(PUBLIC_GRAPH_HOSTS.has(host) ? {} : { customHosts: new Set([host]) }),
        authProvider: {
          getAccessToken: async () => {
            const t = await cred.getToken(scope);
            if (!t) throw new Error('No token for Microsoft Graph');
            return t.token;
          },
        },
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
