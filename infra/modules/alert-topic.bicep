// An Event Grid custom topic for Warden's alerts (CloudEvents 1.0, `Warden.<Capability>.<Finding>`).
// Keys are off: Warden publishes with its identity (EventGrid Data Sender on this topic only);
// consumers subscribe to it like to any topic. The policy points at it with
// `"eventGridTopic": "%WARDEN_ALERT_TOPIC%"`.

param location string
param tags object
param resourceToken string

@description('Object id of Warden\'s managed identity.')
param wardenPrincipalId string

param logAnalyticsId string

var roles = loadJsonContent('../azure-roles.json')

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: 'evgt-warden-alerts-${resourceToken}'
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, wardenPrincipalId, roles['EventGrid Data Sender'])
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['EventGrid Data Sender'])
    principalId: wardenPrincipalId
    principalType: 'ServicePrincipal'
    description: 'Warden publishes its alerts to this topic'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: topic
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

output id string = topic.id
output endpoint string = topic.properties.endpoint
