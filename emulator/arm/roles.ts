/**
 * Built-in role definitions (AZURE-API-FACTS §2.5). Only the GUID, the name and the permissions that
 * matter for Azure ML are modelled; ARM serves the same definition under every scope.
 */
export interface RolePermission {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

export interface RoleDefinitionSpec {
  guid: string;
  roleName: string;
  description: string;
  roleType: 'BuiltInRole' | 'CustomRole';
  permissions: RolePermission[];
  assignableScopes: string[];
}

function perm(actions: string[], notActions: string[] = [], dataActions: string[] = [], notDataActions: string[] = []): RolePermission[] {
  return [{ actions, notActions, dataActions, notDataActions }];
}

const ML = 'Microsoft.MachineLearningServices';

export const BUILT_IN_ROLES: readonly RoleDefinitionSpec[] = [
  {
    guid: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    roleName: 'Owner',
    description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.',
    roleType: 'BuiltInRole',
    permissions: perm(['*']),
    assignableScopes: ['/'],
  },
  {
    guid: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    roleName: 'Contributor',
    description: 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.',
    roleType: 'BuiltInRole',
    permissions: perm(['*'], [
      'Microsoft.Authorization/*/Delete',
      'Microsoft.Authorization/*/Write',
      'Microsoft.Authorization/elevateAccess/Action',
    ]),
    assignableScopes: ['/'],
  },
  {
    guid: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
    roleName: 'Reader',
    description: 'View all resources, but does not allow you to make any changes.',
    roleType: 'BuiltInRole',
    permissions: perm(['*/read']),
    assignableScopes: ['/'],
  },
  {
    guid: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    roleName: 'User Access Administrator',
    description: 'Lets you manage user access to Azure resources.',
    roleType: 'BuiltInRole',
    permissions: perm(['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*']),
    assignableScopes: ['/'],
  },
  {
    guid: 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
    roleName: 'Role Based Access Control Administrator',
    description: 'Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.',
    roleType: 'BuiltInRole',
    permissions: perm([
      'Microsoft.Authorization/roleAssignments/write',
      'Microsoft.Authorization/roleAssignments/delete',
      '*/read',
      'Microsoft.Support/*',
    ]),
    assignableScopes: ['/'],
  },
  {
    guid: 'f6c7c914-8db3-469d-8ca1-694a8f32e121',
    roleName: 'AzureML Data Scientist',
    description: 'Can perform all actions within an Azure Machine Learning workspace, except for creating or deleting compute resources and modifying the workspace itself.',
    roleType: 'BuiltInRole',
    permissions: perm(
      [`${ML}/workspaces/*/read`, `${ML}/workspaces/*/action`, `${ML}/workspaces/*/delete`, `${ML}/workspaces/*/write`],
      [
        `${ML}/workspaces/delete`,
        `${ML}/workspaces/write`,
        `${ML}/workspaces/computes/*/write`,
        `${ML}/workspaces/computes/*/delete`,
        `${ML}/workspaces/computes/listKeys/action`,
        `${ML}/workspaces/listKeys/action`,
        `${ML}/workspaces/hubs/write`,
        `${ML}/workspaces/hubs/delete`,
        `${ML}/workspaces/featurestores/write`,
        `${ML}/workspaces/featurestores/delete`,
      ],
    ),
    assignableScopes: ['/'],
  },
  {
    guid: 'e503ece1-11d0-4e8e-8e2c-7a6c3bf38815',
    roleName: 'AzureML Compute Operator',
    description: 'Can access and perform CRUD operations on Machine Learning Services managed compute resources (including Notebook VMs).',
    roleType: 'BuiltInRole',
    permissions: perm([`${ML}/workspaces/computes/*`, `${ML}/workspaces/notebooks/vm/*`]),
    assignableScopes: ['/'],
  },
  {
    guid: 'ea01e6af-a1c1-4350-9563-ad00f8c72ec5',
    roleName: 'Azure Machine Learning Workspace Connection Secrets Reader',
    description: 'Users with this role can read the workspace connection secrets.',
    roleType: 'BuiltInRole',
    permissions: perm([`${ML}/workspaces/connections/listsecrets/action`, `${ML}/workspaces/metadata/secrets/read`]),
    assignableScopes: ['/'],
  },
  {
    guid: '1823dd4f-9b8c-4ab6-ab4e-7397a3684615',
    roleName: 'AzureML Registry User',
    description: 'Allows use of assets in a machine learning registry.',
    roleType: 'BuiltInRole',
    permissions: perm([`${ML}/registries/read`, `${ML}/registries/assets/read`, `${ML}/registries/assets/write`]),
    assignableScopes: ['/'],
  },
  {
    guid: '635dd51f-9968-44d3-b7fb-6d9a6bd613ae',
    roleName: 'AzureML Metrics Writer (preview)',
    description: 'Lets you write metrics to AzureML workspace.',
    roleType: 'BuiltInRole',
    permissions: perm([`${ML}/workspaces/metrics/*/write`]),
    assignableScopes: ['/'],
  },
  {
    guid: '64702f94-c441-49e6-a78b-ef80e0188fee',
    roleName: 'Azure AI Developer',
    description: 'Can perform all actions within an Azure AI resource besides managing the resource itself.',
    roleType: 'BuiltInRole',
    permissions: perm([`${ML}/workspaces/*/read`, `${ML}/workspaces/*/action`, `${ML}/workspaces/*/delete`, `${ML}/workspaces/*/write`], [
      `${ML}/workspaces/delete`,
      `${ML}/workspaces/write`,
      `${ML}/workspaces/listKeys/action`,
    ]),
    assignableScopes: ['/'],
  },
  {
    guid: '53ca6127-db72-4b80-b1b0-d745d6d5456d',
    roleName: 'Azure AI User',
    description: 'Grants reader access to AI projects, reader access to AI accounts, and data actions for an AI project.',
    roleType: 'BuiltInRole',
    permissions: perm(['Microsoft.CognitiveServices/*/read'], [], ['Microsoft.CognitiveServices/*']),
    assignableScopes: ['/'],
  },
];

/** The trailing GUID of a role definition id, lower-cased (ids differ in scope prefix and casing). */
export function roleGuid(roleDefinitionId: string): string {
  const parts = roleDefinitionId.split('/').filter((p) => p.length > 0);
  return (parts[parts.length - 1] ?? '').toLowerCase();
}
