// EventGrid Data Sender on an existing custom topic that receives Warden's alerts (CloudEvents).

@description('Name of the topic (in this resource group).')
param topicName string

@description('Object id of Warden\'s managed identity.')
param principalId string

var roles = loadJsonContent('../../azure-roles.json')

resource topic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: topicName
}

resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, roles['EventGrid Data Sender'])
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['EventGrid Data Sender'])
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Warden publishes its alerts to this topic'
  }
}

output endpoint string = topic.properties.endpoint
