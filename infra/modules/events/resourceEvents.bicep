// Feeds functions/resourceEvents.ts: ARM events of one governed subscription (system topic of type
// Microsoft.Resources.Subscriptions). Only what the function acts on is delivered: successful writes
// of ML workspaces and computes and writes/deletes of datastores (shared/events/resource.ts), and,
// unless the policy governs the whole subscription, only under the policy's scopes. The function
// re-reads Azure before it changes anything, so a filter that lets too much through costs reads, one
// that lets too little through loses hints (the sweep still catches up); test/infra keeps it exact.

@description('The governed subscription whose ARM events are delivered.')
param subscriptionId string

@description('The policy scopes (only those in this subscription are used).')
param scopes array

@description('Name of an existing Microsoft.Resources.Subscriptions system topic for this subscription (in this resource group); empty = create one. A subscription can have only one.')
param existingTopicName string = ''

param environmentName string
param tags object

@description('Resource id of the Function App.')
param functionAppId string

@description('Create the event subscription (the function must be deployed first).')
param enabled bool

@description('Identity the system topic dead-letters with.')
param eventsIdentityId string

param deadLetterStorageId string
param deadLetterContainerName string
param logAnalyticsId string

var topicName = empty(existingTopicName) ? 'evgt-${environmentName}-resources' : existingTopicName
var scopesHere = filter(scopes, s => toLower(split(s, '/')[2]) == toLower(subscriptionId))
var wholeSubscription = contains(map(scopesHere, s => toLower(s)), toLower('/subscriptions/${subscriptionId}'))

var operationFilter = {
  operatorType: 'StringIn'
  key: 'data.operationName'
  values: [
    'Microsoft.MachineLearningServices/workspaces/write'
    'Microsoft.MachineLearningServices/workspaces/computes/write'
    'Microsoft.MachineLearningServices/workspaces/datastores/write'
    'Microsoft.MachineLearningServices/workspaces/datastores/delete'
  ]
}
var scopeFilter = {
  operatorType: 'StringBeginsWith'
  key: 'subject'
  values: scopesHere
}

resource newTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (empty(existingTopicName)) {
  name: topicName
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventsIdentityId}': {}
    }
  }
  properties: {
    source: '/subscriptions/${subscriptionId}'
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource toResourceEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (enabled) {
  parent: topic
  name: take('${replace(environmentName, '_', '-')}-resourceEvents', 64)
  dependsOn: [
    newTopic
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/resourceEvents'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      advancedFilters: wholeSubscription ? [operationFilter] : [operationFilter, scopeFilter]
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
