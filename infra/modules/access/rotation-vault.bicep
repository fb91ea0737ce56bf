// Key Vault Secrets Officer on one vault the policy rotates app secrets into (credentials.rotate):
// Warden writes the new secret version and reads versions' metadata. The vault must use Azure RBAC
// (enableRbacAuthorization); one that uses access policies needs an access policy instead.

@description('Name of the rotation vault (in this resource group).')
param vaultName string

@description('Object id of Warden\'s managed identity.')
param principalId string

var roles = loadJsonContent('../../azure-roles.json')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles['Key Vault Secrets Officer'])
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Key Vault Secrets Officer'])
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Warden stores rotated app credentials here'
  }
}

output location string = vault.location
