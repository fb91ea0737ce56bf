/**
 * Azure Machine Learning resources in domain terms (workspaces, computes, datastores, registries).
 * The adapter over `@azure/arm-machinelearning` lives in `ports/azure/ml.ts`; tests of use cases can
 * use an in-memory implementation.
 */

export interface Workspace {
  /** ARM resource id, as ARM returns it. */
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  /** Resource id of the workspace's container registry, if any. */
  containerRegistry?: string;
  provisioningState?: string;
}

export type IdentityType = 'None' | 'SystemAssigned' | 'UserAssigned' | 'SystemAssigned,UserAssigned';

export interface ComputeIdentity {
  type: IdentityType;
  /** Resource ids of user-assigned identities. */
  userAssignedIdentities: string[];
}

export interface ScaleSettings {
  minNodeCount: number;
  maxNodeCount: number;
  nodeIdleTimeBeforeScaleDown?: string;
}

export interface Compute {
  id: string;
  name: string;
  workspaceId: string;
  /** `AmlCompute` (cluster), `ComputeInstance`, or another compute type (attached, not governed). */
  computeType: string;
  location?: string;
  tags: Record<string, string>;
  provisioningState?: string;
  identity: ComputeIdentity;
  disableLocalAuth: boolean;
  /** Compute instance: `sshSettings.sshPublicAccess`. */
  sshPublicAccess?: string;
  /** Cluster: `remoteLoginPortPublicAccess`. */
  remoteLoginPortPublicAccess?: string;
  /** Compute instance state (Running, Stopped…). */
  state?: string;
  /** Compute instance: object id of the user it is assigned to. */
  assignedUserObjectId?: string;
  scaleSettings?: ScaleSettings;
}

export interface Datastore {
  id: string;
  name: string;
  datastoreType: string;
  /** `AccountKey`, `Sas`, `ServicePrincipal`, `Certificate`, `None` (identity-based). */
  credentialsType: string;
}

export type DesiredIdentity = { type: 'SystemAssigned' } | { type: 'UserAssigned'; id: string };

export interface MlResources {
  /** Workspaces under a subscription or resource-group scope, with tags (one paged list per scope). */
  listWorkspaces(scope: string): Promise<Workspace[]>;
  getWorkspace(id: string): Promise<Workspace | undefined>;
  listComputes(workspaceId: string): Promise<Compute[]>;
  getCompute(id: string): Promise<Compute | undefined>;
  /**
   * Full PUT that changes only the identity and keeps every other property (as `az ml compute update`),
   * of the compute as the service last sent it: the adapter may reuse what a `getCompute` read moments
   * before (fresh and settled), else it reads the compute first. Nothing is sent when it already has the
   * identity. Resolves once the operation succeeded and the compute shows the identity.
   */
  setComputeIdentity(id: string, identity: DesiredIdentity): Promise<void>;
  /** PATCH the cluster's scale settings to min 0 / max 0. */
  scaleToZero(id: string): Promise<void>;
  stopCompute(id: string): Promise<void>;
  deleteCompute(id: string): Promise<void>;
  listDatastores(workspaceId: string): Promise<Datastore[]>;
  /** `adminUserEnabled` of a container registry; undefined when it does not exist. */
  getRegistryAdminUserEnabled(registryId: string): Promise<boolean | undefined>;
}

/** Parses an ML workspace or compute resource id (case-insensitive), or returns undefined. */
export function parseMlResourceId(id: string):
  | { subscriptionId: string; resourceGroup: string; workspace: string; compute?: string; workspaceId: string }
  | undefined {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/]+)(?:\/computes\/([^/]+))?\/?$/i.exec(id);
  if (!m) return undefined;
  const [, subscriptionId, resourceGroup, workspace, compute] = m as unknown as [string, string, string, string, string | undefined];
  const workspaceId = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${workspace}`;
  return { subscriptionId, resourceGroup, workspace, workspaceId, ...(compute ? { compute } : {}) };
}

/** True when `id` lies inside one of the scopes (case-insensitive prefix on segment boundaries). */
export function inScopes(id: string, scopes: readonly string[]): boolean {
  const lower = id.toLowerCase();
  return scopes.some((s) => {
    const p = s.toLowerCase().replace(/\/+$/, '');
    return lower === p || lower.startsWith(`${p}/`);
  });
}

export interface OwnWriteLogOptions {
  /** How long a write is remembered: Event Grid delivers within seconds, retries for much longer. */
  ttlMs: number;
  /** Most writes remembered (the oldest are forgotten first). */
  max: number;
  now: () => number;
}

/**
 * The writes this process made to ML resources, each by the client request id it sent
 * (`x-ms-client-request-id`, a random UUID per write). ARM echoes that id in the write's resource event
 * (`data.httpRequest.clientRequestId`, AZURE-API-FACTS §6.2), so the event of Warden's own write is told
 * apart from anyone else's without trusting a claim: nobody else sends the ids this process made up. A
 * write by anyone else, or one this process no longer remembers (another instance, a restart, an expired
 * entry), is simply not recognised, and its event is reconciled as usual.
 */
export class OwnWriteLog {
  private readonly entries = new Map<string, { resourceId: string; at: number }>();
  private readonly options: OwnWriteLogOptions;

  constructor(options: Partial<OwnWriteLogOptions> = {}) {
    this.options = { ttlMs: 15 * 60_000, max: 10_000, now: Date.now, ...options };
  }

  /** Notes that this process sends (or sent) a write of `resourceId` with this client request id. */
  record(requestId: string, resourceId: string): void {
    const now = this.options.now();
    this.entries.delete(requestId);
    this.entries.set(requestId, { resourceId: resourceId.toLowerCase(), at: now });
    // Insertion order is age order: drop from the front what has expired or does not fit.
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.options.max && now - e.at <= this.options.ttlMs) break;
      this.entries.delete(key);
    }
  }

  /** True when this process wrote `resourceId` with exactly this client request id, recently. */
  isOwn(requestId: string | undefined, resourceId: string): boolean {
    if (!requestId) return false;
    const e = this.entries.get(requestId);
    if (!e) return false;
    const age = this.options.now() - e.at;
    return age >= 0 && age <= this.options.ttlMs && e.resourceId === resourceId.toLowerCase();
  }
}

/**
 * The process-wide log: the ML adapter records its writes here and the resource-event use case consults it
 * (both default to it), so the two agree without the composition root wiring one to the other.
 */
export const ownMlWrites = new OwnWriteLog();
