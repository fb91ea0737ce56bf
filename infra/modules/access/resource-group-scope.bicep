// Warden's least-privilege access to a governed resource group (one policy scope):
// - Reader: see workspaces, computes, datastores, registries and role assignments;
// - Role Based Access Control Administrator, with an ABAC condition that lets it create and delete
//   role assignments of the bindable roles only (and delete, never create, the removable ones);
// - the custom compute remediation role.
// Assignment names are deterministic (scope, principal, role), so a re-deployment changes nothing.

@description('Object id of Warden\'s managed identity.')
param principalId string

@description('ABAC condition (version 2.0) built in main.bicep from infra/bindable-roles.json.')
param rbacAdminCondition string

@description('GUID of the custom compute remediation role.')
param computeRoleGuid string

var roles = loadJsonContent('../../azure-roles.json')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roles.Reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.Reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Warden reads the resources it governs'
  }
}

resource rbacAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roles['Role Based Access Control Administrator'])
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Role Based Access Control Administrator'])
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Warden manages role assignments of the roles in infra/bindable-roles.json only'
    condition: rbacAdminCondition
    conditionVersion: '2.0'
  }
}

resource computeRemediator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, computeRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', computeRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Warden remediates compute that breaks the policy'
  }
}
