// Feeds functions/graphEvents.ts: Microsoft Graph change and lifecycle notifications about groups,
// delivered through an Event Grid partner topic (the alternative to the graphNotifications webhook).
// Graph creates the partner topic in this resource group when a Graph subscription names it
// (`EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=<name>&location=…`); it must be
// activated once (docs/deploy.md). Partner topics deliver CloudEvents only.

@description('Name of the Graph partner topic in this resource group.')
param partnerTopicName string

param environmentName string
param functionAppId string
param enabled bool
param eventsIdentityId string
param deadLetterStorageId string
param deadLetterContainerName string

resource partnerTopic 'Microsoft.EventGrid/partnerTopics@2022-06-15' existing = {
  name: partnerTopicName
}

resource toGraphEvents 'Microsoft.EventGrid/partnerTopics/eventSubscriptions@2022-06-15' = if (enabled) {
  parent: partnerTopic
  name: take('${replace(environmentName, '_', '-')}-graphEvents', 64)
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/graphEvents'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: [
        'Microsoft.Graph.GroupUpdated'
        'Microsoft.Graph.GroupCreated'
        'Microsoft.Graph.GroupDeleted'
        'Microsoft.Graph.SubscriptionReauthorizationRequired'
        'Microsoft.Graph.SubscriptionRemoved'
        'Microsoft.Graph.SubscriptionMissed'
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
