/**
 * The `resources` section of a tenant file: subscriptions, resource groups, Azure ML workspaces with
 * their computes and datastores, container registries, and role assignments. Compact on purpose;
 * `state.ts` expands each entry into the full ARM shape.
 */
import { z } from 'zod';

const tags = z.record(z.string(), z.string());

export const IdentitySpec = z.object({
  type: z.enum(['None', 'SystemAssigned', 'UserAssigned', 'SystemAssigned,UserAssigned']),
  /** Fixes the system-assigned principal id (otherwise a fresh GUID). */
  principalId: z.string().optional(),
  /** User-assigned identity resource ids. */
  userAssignedIdentities: z.array(z.string()).optional(),
});
export type IdentitySpec = z.infer<typeof IdentitySpec>;

export const ProvisioningState = z.enum(['Unknown', 'Updating', 'Creating', 'Deleting', 'Succeeded', 'Failed', 'Canceled']);
export type ProvisioningState = z.infer<typeof ProvisioningState>;

export const ComputeSpec = z.object({
  name: z.string().min(1),
  computeType: z.string().default('AmlCompute'),
  location: z.string().optional(),
  vmSize: z.string().optional(),
  description: z.string().optional(),
  tags: tags.optional(),
  identity: IdentitySpec.optional(),
  disableLocalAuth: z.boolean().optional(),
  provisioningState: ProvisioningState.optional(),
  /** AmlCompute: scale settings. */
  scaleSettings: z
    .object({
      maxNodeCount: z.number().int(),
      minNodeCount: z.number().int().optional(),
      nodeIdleTimeBeforeScaleDown: z.string().optional(),
    })
    .optional(),
  /** AmlCompute: SSH to the nodes. */
  remoteLoginPortPublicAccess: z.enum(['Enabled', 'Disabled', 'NotSpecified']).optional(),
  /** ComputeInstance: the object id of the user it is assigned to. */
  assignedUser: z.string().optional(),
  /** ComputeInstance: `sshSettings.sshPublicAccess`. */
  sshPublicAccess: z.enum(['Enabled', 'Disabled']).optional(),
  /** ComputeInstance: `Running`, `Stopped`… */
  state: z.string().optional(),
  /** Extra type-specific settings merged into `properties.properties`. */
  properties: z.record(z.string(), z.unknown()).optional(),
});
export type ComputeSpec = z.input<typeof ComputeSpec>;

export const DatastoreSpec = z.object({
  name: z.string().min(1),
  datastoreType: z.enum(['AzureBlob', 'AzureDataLakeGen1', 'AzureDataLakeGen2', 'AzureFile']).default('AzureBlob'),
  credentialsType: z.enum(['AccountKey', 'Sas', 'ServicePrincipal', 'Certificate', 'None']).default('None'),
  accountName: z.string().optional(),
  containerName: z.string().optional(),
  /** ServicePrincipal / Certificate credentials: the non-secret parts ARM does return. */
  clientId: z.string().optional(),
  tenantId: z.string().optional(),
  thumbprint: z.string().optional(),
  isDefault: z.boolean().optional(),
  description: z.string().optional(),
  tags: tags.optional(),
});
export type DatastoreSpec = z.input<typeof DatastoreSpec>;

export const RegistrySpec = z.object({
  name: z.string().min(1),
  adminUserEnabled: z.boolean().default(false),
  location: z.string().optional(),
  sku: z.enum(['Basic', 'Standard', 'Premium']).default('Basic'),
  tags: tags.optional(),
});
export type RegistrySpec = z.input<typeof RegistrySpec>;

export const WorkspaceSpec = z.object({
  name: z.string().min(1),
  location: z.string().optional(),
  tags: tags.optional(),
  friendlyName: z.string().optional(),
  description: z.string().optional(),
  /** A registry name in the same resource group, or a full registry id. */
  containerRegistry: z.string().optional(),
  identity: IdentitySpec.optional(),
  publicNetworkAccess: z.enum(['Enabled', 'Disabled']).optional(),
  hbiWorkspace: z.boolean().optional(),
  v1LegacyMode: z.boolean().optional(),
  kind: z.string().optional(),
  datastores: z.array(DatastoreSpec).optional(),
  computes: z.array(ComputeSpec).optional(),
});
export type WorkspaceSpec = z.input<typeof WorkspaceSpec>;

export const ResourceGroupSpec = z.object({
  name: z.string().min(1),
  location: z.string().min(1),
  tags: tags.optional(),
  workspaces: z.array(WorkspaceSpec).default([]),
  registries: z.array(RegistrySpec).optional(),
});
export type ResourceGroupSpec = z.input<typeof ResourceGroupSpec>;

export const SubscriptionSpec = z.object({
  id: z.string().min(1),
  displayName: z.string().optional(),
  resourceGroups: z.array(ResourceGroupSpec).default([]),
});

export const RoleAssignmentSpec = z
  .object({
    /** A GUID; a deterministic one is derived when omitted. */
    name: z.string().optional(),
    scope: z.string().min(1),
    roleDefinitionId: z.string().optional(),
    /** A built-in role's name, instead of `roleDefinitionId`. */
    roleName: z.string().optional(),
    principalId: z.string().min(1),
    principalType: z.enum(['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device']).optional(),
    description: z.string().optional(),
  })
  .refine((r) => r.roleDefinitionId !== undefined || r.roleName !== undefined, { message: 'roleDefinitionId or roleName is required' });
export type RoleAssignmentSpec = z.input<typeof RoleAssignmentSpec>;

export const ArmSection = z.object({
  subscriptions: z.array(SubscriptionSpec).default([]),
  roleAssignments: z.array(RoleAssignmentSpec).default([]),
  /** The object id ARM writes are attributed to when the bearer token does not say (event claims, createdBy). */
  callerObjectId: z.string().optional(),
});
export type ArmSection = z.input<typeof ArmSection>;
