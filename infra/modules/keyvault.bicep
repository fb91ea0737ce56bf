// Key Vault for Warden's own secrets: the Graph clientState (WARDEN_CLIENT_STATE) and, when mail or
// chat alerts use one, the webhook URL (WARDEN_ALERT_WEBHOOK). App settings reference them
// (`@Microsoft.KeyVault(SecretUri=…)` without a version, so a new version is picked up on restart);
// the app reads them through its identity with Key Vault Secrets User on this vault only.
// Rotated app credentials do not live here: they go to the vaults the policy names.

param location string
param tags object
param resourceToken string

@description('Object id of Warden\'s managed identity.')
param wardenPrincipalId string

@description('Log Analytics workspace for the vault\'s audit log.')
param logAnalyticsId string

@secure()
@description('The Graph clientState (at most 128 characters).')
param clientState string

@secure()
@description('Chat webhook URL for alerts; empty = none (the secret is then left as it is).')
param alertWebhookUrl string = ''

var roles = loadJsonContent('../azure-roles.json')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-warden-${take(resourceToken, 13)}'
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource clientStateSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'warden-client-state'
  properties: {
    value: clientState
    contentType: 'text/plain'
  }
}

resource alertWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(alertWebhookUrl)) {
  parent: vault
  name: 'warden-alert-webhook'
  properties: {
    value: alertWebhookUrl
    contentType: 'text/uri-list'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, wardenPrincipalId, roles['Key Vault Secrets User'])
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Key Vault Secrets User'])
    principalId: wardenPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Warden reads its own secrets through Key Vault references'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { categoryGroup: 'audit', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// Versionless: Key Vault references follow the newest version.
output clientStateSecretUri string = '${vault.properties.vaultUri}secrets/${clientStateSecret.name}'
output alertWebhookSecretUri string = empty(alertWebhookUrl) ? '' : '${vault.properties.vaultUri}secrets/warden-alert-webhook'
