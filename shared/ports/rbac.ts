/**
 * Azure RBAC in domain terms: role assignments and role definitions at a resource's scope, and the
 * governed resources themselves (listed per scope, with tags). The adapter over
 * `@azure/arm-authorization` lives in `ports/azure/roleAssignments.ts`; use cases and tests of the
 * planner see only these types.
 */

/** Principal types ARM accepts in `principalType` (always set by Warden when it creates one). */
export type PrincipalType = 'User' | 'Group' | 'ServicePrincipal' | 'ForeignGroup' | 'Device';

/** A role assignment as ARM lists it. `scope` is where it lives: the resource itself or a parent. */
export interface RoleAssignment {
  /** Full ARM id (`{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`). */
  id: string;
  /** The assignment's GUID name. */
  name: string;
  scope: string;
  /** Role definition id in any of ARM's spellings; compare by {@link roleGuidOf}. */
  roleDefinitionId: string;
  principalId: string;
  principalType: string | undefined;
  description: string | undefined;
  condition: string | undefined;
}

/** What Warden asks ARM to create. `name` is deterministic (UUID v5 of scope, role and principal). */
export interface RoleAssignmentSpec {
  scope: string;
  name: string;
  /** `/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}`. */
  roleDefinitionId: string;
  principalId: string;
  principalType: PrincipalType;
  description: string;
}

export interface RoleDefinition {
  id: string;
  /** The role definition's GUID, lower case. */
  guid: string;
  roleName: string;
  roleType: string | undefined;
}

/** `created`: a new assignment; `exists`: ARM already had it (409 RoleAssignmentExists or an identical re-PUT). */
export type CreateAssignmentResult = 'created' | 'exists';
/** `deleted`: it was there and is gone; `absent`: it was already gone. */
export type DeleteAssignmentResult = 'deleted' | 'absent';

/**
 * Role assignments and definitions. Adapters retry `PrincipalNotFound` (replication delay of a new
 * principal) with backoff and treat `409 RoleAssignmentExists` as present; throttling is honoured by
 * the SDK (`Retry-After`) and what is left surfaces as an error `classifyError` calls throttled.
 */
export interface RoleAssignments {
  /**
   * One paged list per resource with `$filter=atScope()`: assignments at the resource's own scope AND
   * inherited ones from above. Callers tell them apart by `scope` (only own ones are Warden's to manage).
   */
  listForResource(resourceId: string): Promise<RoleAssignment[]>;
  create(spec: RoleAssignmentSpec): Promise<CreateAssignmentResult>;
  delete(scope: string, name: string): Promise<DeleteAssignmentResult>;
  /** Role definitions whose display name is `roleName` (`$filter=roleName eq '…'`), visible at `scope`. */
  findRoleDefinitions(scope: string, roleName: string): Promise<RoleDefinition[]>;
  /** One role definition by GUID, or undefined when there is none. */
  getRoleDefinition(scope: string, guid: string): Promise<RoleDefinition | undefined>;
}

/** A resource a binding can select: id, where it lives, its tags. */
export interface GovernedResource {
  id: string;
  name: string;
  /** `Microsoft.MachineLearningServices/workspaces`, … */
  type: string;
  subscriptionId: string;
  resourceGroup: string;
  tags: Record<string, string>;
}

/** Lists governed resources of one type (workspaces through the ML port, other types through ARM's resource list). */
export interface ResourceCatalog {
  /** Every resource of `type` under a subscription or resource-group scope: one paged list per scope. */
  listResources(scope: string, type: string): Promise<GovernedResource[]>;
  /** One resource by id, or undefined when it does not exist. */
  getResource(id: string, type: string): Promise<GovernedResource | undefined>;
}

const GUID_TAIL = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;
export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The GUID of a role definition id, lower case: ARM spells the same role `/providers/…` and `/subscriptions/{s}/providers/…`. */
export function roleGuidOf(roleDefinitionId: string): string {
  return (GUID_TAIL.exec(roleDefinitionId)?.[1] ?? roleDefinitionId).toLowerCase();
}

/** The subscription-scoped id ARM expects in a create body. */
export function roleDefinitionIdFor(subscriptionId: string, guid: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid.toLowerCase()}`;
}

/** Parts of an ARM resource id (`/subscriptions/s/resourceGroups/rg/providers/Ns/type/name[/sub/name]`). */
export function parseResourceId(id: string): { subscriptionId: string; resourceGroup: string; type: string; name: string } | undefined {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/(.+)$/i.exec(id.replace(/\/+$/, ''));
  if (!m) return undefined;
  const [, subscriptionId, resourceGroup, namespace, rest] = m as unknown as [string, string, string, string, string];
  const parts = rest.split('/');
  if (parts.length < 2 || parts.length % 2 !== 0 || parts.some((p) => p === '')) return undefined;
  const types = parts.filter((_, i) => i % 2 === 0);
  const name = parts[parts.length - 1] as string;
  return { subscriptionId, resourceGroup, type: `${namespace}/${types.join('/')}`, name };
}

/** Case-insensitive equality of ARM ids (ARM itself compares them so). */
export function sameId(a: string, b: string): boolean {
  return a.replace(/\/+$/, '').toLowerCase() === b.replace(/\/+$/, '').toLowerCase();
}
