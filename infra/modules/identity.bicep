// Warden's identities. `warden` is the app's own identity (every Azure and Graph call, the host's
// storage, Key Vault references). `events` is separate and does one thing: it lets Event Grid write
// undeliverable events to the dead-letter container, so the system topics never carry Warden's
// privileges.

@description('Region of the identities.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes names unique per subscription, environment and region.')
param resourceToken string

resource warden 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-warden-${resourceToken}'
  location: location
  tags: tags
}

resource events 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-warden-events-${resourceToken}'
  location: location
  tags: tags
}

output wardenId string = warden.id
output wardenName string = warden.name
output wardenPrincipalId string = warden.properties.principalId
output wardenClientId string = warden.properties.clientId
output eventsId string = events.id
output eventsPrincipalId string = events.properties.principalId
