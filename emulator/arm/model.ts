/**
 * What the emulated ARM stores, in the shapes ARM answers with (AZURE-API-FACTS §2.2, §4.2). Records
 * keep ids exactly as created; lookups go through lower-cased keys because ARM compares ids
 * case-insensitively (`resourceGroups` and `resourcegroups` name the same thing).
 */

/** Who a principal id is, as the directory knows it (the Graph service implements this). */
export interface PrincipalDirectory {
  lookup(id: string): { type: 'User' | 'Group' | 'ServicePrincipal' } | undefined;
}

export const ML_PROVIDER = 'Microsoft.MachineLearningServices';
export const WORKSPACE_TYPE = `${ML_PROVIDER}/workspaces`;
export const COMPUTE_TYPE = `${ML_PROVIDER}/workspaces/computes`;
export const DATASTORE_TYPE = `${ML_PROVIDER}/workspaces/datastores`;
export const REGISTRY_TYPE = 'Microsoft.ContainerRegistry/registries';
export const ROLE_ASSIGNMENT_TYPE = 'Microsoft.Authorization/roleAssignments';
export const ROLE_DEFINITION_TYPE = 'Microsoft.Authorization/roleDefinitions';

export interface UserAssignedIdentity {
  principalId: string;
  clientId: string;
}

export interface ManagedIdentity {
  type: string;
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, UserAssignedIdentity>;
}

export interface SubscriptionRecord {
  subscriptionId: string;
  displayName: string;
}

export interface ResourceGroupRecord {
  id: string;
  subscriptionId: string;
  name: string;
  location: string;
  tags: Record<string, string>;
}

export interface WorkspaceRecord {
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  identity?: ManagedIdentity;
  sku: { name: string; tier: string };
  properties: Record<string, unknown>;
}

export interface ComputeProperties {
  computeType: string;
  provisioningState: string;
  computeLocation: string;
  description: string | null;
  createdOn: string;
  modifiedOn: string;
  isAttachedCompute: boolean;
  disableLocalAuth: boolean;
  provisioningErrors: Array<{ error: { code: string; message: string } }> | null;
  properties: Record<string, unknown>;
  [extra: string]: unknown;
}

export interface ComputeRecord {
  id: string;
  name: string;
  workspaceId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags?: Record<string, string>;
  identity?: ManagedIdentity;
  properties: ComputeProperties;
}

export type CredentialsType = 'AccountKey' | 'Sas' | 'ServicePrincipal' | 'Certificate' | 'None';

export interface DatastoreRecord {
  id: string;
  name: string;
  workspaceId: string;
  properties: Record<string, unknown> & { credentials: { credentialsType: CredentialsType } & Record<string, unknown> };
}

export interface RegistryRecord {
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  sku: { name: string; tier: string };
  properties: Record<string, unknown> & { adminUserEnabled: boolean };
}

export interface RoleAssignmentRecord {
  id: string;
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
  description: string | null;
  condition: string | null;
  conditionVersion: string | null;
  delegatedManagedIdentityResourceId: string | null;
  createdOn: string;
  updatedOn: string;
  createdBy: string;
  updatedBy: string;
}

/** ARM's timestamp format: seven fractional digits, `Z`. */
export function armTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

export function key(id: string): string {
  return normaliseScope(id).toLowerCase();
}

/** Collapses slashes, drops a trailing slash, keeps a leading one: `//subscriptions/x/` → `/subscriptions/x`. */
export function normaliseScope(scope: string): string {
  const s = `/${scope}`.replace(/\/{2,}/g, '/');
  return s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s;
}

/** True when `outer` is `inner` or one of its ancestors (segment-wise, case-insensitive). */
export function scopeContains(outer: string, inner: string): boolean {
  const o = key(outer);
  const i = key(inner);
  if (o === '/') return true;
  return i === o || i.startsWith(`${o}/`);
}

export interface ParsedResourceId {
  subscriptionId?: string;
  resourceGroup?: string;
  /** Provider namespace of the last `providers/` segment. */
  provider?: string;
}

export function parseResourceId(id: string): ParsedResourceId {
  const parts = normaliseScope(id).split('/').filter((p) => p.length > 0);
  const out: ParsedResourceId = {};
  for (let i = 0; i < parts.length - 1; i++) {
    const seg = (parts[i] ?? '').toLowerCase();
    const next = parts[i + 1] ?? '';
    if (seg === 'subscriptions' && out.subscriptionId === undefined) out.subscriptionId = next;
    else if (seg === 'resourcegroups' && out.resourceGroup === undefined) out.resourceGroup = next;
    else if (seg === 'providers') out.provider = next;
  }
  return out;
}

export function isGuid(s: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}

export function serializeRoleAssignment(ra: RoleAssignmentRecord): Record<string, unknown> {
  return {
    id: ra.id,
    name: ra.name,
    type: ROLE_ASSIGNMENT_TYPE,
    properties: {
      roleDefinitionId: ra.roleDefinitionId,
      principalId: ra.principalId,
      principalType: ra.principalType,
      scope: ra.scope,
      condition: ra.condition,
      conditionVersion: ra.conditionVersion,
      description: ra.description,
      createdOn: ra.createdOn,
      updatedOn: ra.updatedOn,
      createdBy: ra.createdBy,
      updatedBy: ra.updatedBy,
      delegatedManagedIdentityResourceId: ra.delegatedManagedIdentityResourceId,
    },
  };
}

export function serializeWorkspace(ws: WorkspaceRecord): Record<string, unknown> {
  return {
    id: ws.id,
    name: ws.name,
    type: WORKSPACE_TYPE,
    location: ws.location,
    tags: ws.tags,
    ...(ws.identity ? { identity: ws.identity } : {}),
    sku: ws.sku,
    properties: ws.properties,
  };
}

export function serializeCompute(c: ComputeRecord): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    type: COMPUTE_TYPE,
    location: c.location,
    ...(c.tags ? { tags: c.tags } : {}),
    ...(c.identity ? { identity: c.identity } : {}),
    properties: c.properties,
  };
}

export function serializeDatastore(d: DatastoreRecord): Record<string, unknown> {
  return { id: d.id, name: d.name, type: DATASTORE_TYPE, properties: d.properties };
}

export function serializeRegistry(r: RegistryRecord): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    type: REGISTRY_TYPE,
    location: r.location,
    tags: r.tags,
    sku: r.sku,
    properties: r.properties,
  };
}

/** A deep copy through JSON, so callers never hold live references into the state. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
