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
  /** GET then full PUT that changes only the identity and keeps every other property (as `az ml compute update`). */
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
