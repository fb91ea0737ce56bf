// The storage account behind the Functions host (AzureWebJobsStorage) and Warden's own queues and
// tables, plus the Flex Consumption deployment container and Event Grid's dead-letter container.
// Shared keys are off: everything authenticates with Entra ID (the app through its managed identity,
// Event Grid's dead-lettering through the separate events identity).
//
// Queue and table names are Warden's (shared/work/item.ts, shared/audit/table.ts,
// shared/composition.ts); the app also creates them when missing, so these only make them visible
// and deletable with the deployment. test/infra keeps both lists equal.

param location string
param tags object
param resourceToken string

@description('Object id of Warden\'s managed identity (host storage, queues, tables, deployment package).')
param wardenPrincipalId string

@description('Object id of the identity Event Grid dead-letters with.')
param eventsPrincipalId string

@description('Log Analytics workspace for diagnostic settings.')
param logAnalyticsId string

@description('Blob container the Flex Consumption app is deployed from.')
param deploymentContainerName string

@description('Blob container for events Event Grid could not deliver.')
param deadLetterContainerName string

var roles = loadJsonContent('../azure-roles.json')

var queueNames = [
  'warden-work'
  'warden-work-poison'
]

var tableNames = [
  'wardenaudit'
  'wardenstate'
  'wardenwork'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stwarden${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for name in queueNames: {
  parent: queueService
  name: name
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for name in tableNames: {
  parent: tableService
  name: name
}]

// The host keeps its locks, timers' schedule status and keys in blobs (Owner: it also sets blob
// metadata and leases) and the deployment package is read from here.
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, wardenPrincipalId, roles['Storage Blob Data Owner'])
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Owner'])
    principalId: wardenPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Warden: Functions host storage and deployment package'
  }
}

resource workQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, wardenPrincipalId, roles['Storage Queue Data Contributor'])
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Queue Data Contributor'])
    principalId: wardenPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Warden: the warden-work queue trigger and its poison queue'
  }
}

resource stateTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, wardenPrincipalId, roles['Storage Table Data Contributor'])
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Table Data Contributor'])
    principalId: wardenPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Warden: audit trail, state and work coalescing tables'
  }
}

// Only the dead-letter container, only for the events identity.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventsPrincipalId, roles['Storage Blob Data Contributor'])
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: eventsPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid dead-letters undeliverable Warden events here'
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
    metrics: [
      { category: 'Transaction', enabled: true }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
    metrics: [
      { category: 'Transaction', enabled: true }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
    metrics: [
      { category: 'Transaction', enabled: true }
    ]
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deadLetterContainerName string = deadLetterContainer.name
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
