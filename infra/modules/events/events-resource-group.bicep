// The resource group that holds Warden's Event Grid system topic in one governed subscription
// (a system topic lives in the subscription of its source).
targetScope = 'subscription'

param name string
param location string
param tags object

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: name
  location: location
  tags: tags
}
