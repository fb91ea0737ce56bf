// Feeds functions/keyVaultEvents.ts: SecretNearExpiry / SecretExpired of one vault the policy
// rotates app secrets into, for exactly the secrets the policy names in that vault (subject = secret
// name). SecretNewVersionCreated is not delivered: the function ignores it (shared/credentials/events.ts).

@description('Resource id of the rotation vault.')
param vaultId string

@description('The policy\'s credentials.rotate entries (only those whose vaultUrl names this vault are used).')
param rotations array

@description('Name of an existing Microsoft.KeyVault.vaults system topic of this vault (in this resource group); empty = create one. A vault can have only one.')
param existingTopicName string = ''

param environmentName string
param tags object
param functionAppId string
param enabled bool
param eventsIdentityId string
param deadLetterStorageId string
param deadLetterContainerName string
param logAnalyticsId string

var vaultParts = split(vaultId, '/')
var vaultName = last(vaultParts)
var secretNames = map(filter(rotations, r => toLower(split(split(r.vaultUrl, '//')[1], '.')[0]) == toLower(vaultName)), r => r.secretName)
var topicName = empty(existingTopicName) ? 'evgt-${environmentName}-${vaultName}' : existingTopicName

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
  scope: resourceGroup(vaultParts[2], vaultParts[4])
}

resource newTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (empty(existingTopicName)) {
  name: topicName
  location: vault.location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventsIdentityId}': {}
    }
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource toKeyVaultEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (enabled && !empty(secretNames)) {
  parent: topic
  name: take('${replace(environmentName, '_', '-')}-keyVaultEvents', 64)
  dependsOn: [
    newTopic
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/keyVaultEvents'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'subject'
          values: secretNames
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventsIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: topic
  dependsOn: [
    newTopic
  ]
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { categoryGroup: 'allLogs', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}
