// Warden in Azure, deployed by `azd up` (azure.yaml at the repository root; docs/deploy.md).
//
// What is deployed, and why each piece exists:
// - resource group `rg-<env>`: the Function App on Flex Consumption (Node 20) running as a
//   user-assigned identity, its storage (no shared keys), Application Insights + Log Analytics, a Key
//   Vault for Warden's own secrets, optionally an Event Grid topic for alerts;
// - per governed subscription: an Event Grid system topic whose subscription feeds `resourceEvents`;
// - per rotation vault: a system topic whose subscription feeds `keyVaultEvents`, and Key Vault
//   Secrets Officer there;
// - per policy scope: Reader, Role Based Access Control Administrator limited by an ABAC condition
//   to the roles in infra/bindable-roles.json, and the custom compute remediation role.
//
// The policy is the same file the app runs with: `policy.json` at the repository root is read here
// at build time (scopes, rotation secrets) and handed to the app as WARDEN_POLICY, so the scopes
// Warden is allowed to touch are the scopes it governs. infra/scripts/check-policy.mjs (the
// preprovision hook) checks the policy against this template before anything is deployed.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; part of every resource name and tag.')
param environmentName string

@minLength(1)
@description('Region of Warden\'s own resources.')
param location string

@description('Create the Event Grid subscriptions that feed resourceEvents, keyVaultEvents and graphEvents. Event Grid checks that the function exists, so the first `azd up` provisions with false and the postdeploy hook provisions again with true.')
param eventSubscriptionsEnabled bool = false

@secure()
@description('The Graph clientState secret (WARDEN_CLIENT_STATE); the preprovision hook generates it once per azd environment.')
param clientState string

@secure()
@description('Chat webhook URL for alerts (policy `"webhookUrl": "%WARDEN_ALERT_WEBHOOK%"`); empty = none.')
param alertWebhookUrl string = ''

@description('Let Warden manage its Graph webhook subscription on /groups (WARDEN_PUBLIC_URL = this app).')
param graphWebhookEnabled bool = true

@description('Name of a Graph Event Grid partner topic in Warden\'s resource group to feed graphEvents; empty = none.')
param graphPartnerTopicName string = ''

@description('Comma-separated resource ids of the Key Vaults the policy rotates app secrets into (credentials.rotate[].vaultUrl).')
param rotationVaultIds string = ''

@description('Create an Event Grid topic for alerts (its endpoint is WARDEN_ALERT_TOPIC).')
param createAlertTopic bool = false

@description('Resource id of an existing Event Grid topic for alerts (Warden gets EventGrid Data Sender there; its endpoint is WARDEN_ALERT_TOPIC); empty = none.')
param alertTopicId string = ''

@description('Existing Microsoft.Resources.Subscriptions system topics to reuse, by governed subscription id: { "<subscription id>": "<system topic resource id>" }. A subscription can have only one such topic.')
param existingSubscriptionTopics object = {}

@description('Existing Microsoft.KeyVault.vaults system topics to reuse, by vault name: { "<vault name>": "<system topic resource id>" }.')
param existingKeyVaultTopics object = {}

@description('Resource group for the system topics in each governed subscription; default rg-<env>-events.')
param eventsResourceGroupName string = ''

@description('NCRONTAB of the full sweep (WARDEN_SWEEP_SCHEDULE); empty = every 6 hours.')
param sweepSchedule string = ''

@description('Most Azure/Graph calls in flight per instance, 1-64 (WARDEN_CONCURRENCY); empty = 8.')
param concurrency string = ''

@description('App role required on plan/remediate/audit when App Service Authentication is on (WARDEN_REMEDIATION_ROLE); empty = function key only.')
param remediationRole string = ''

@description('Least severe log level Warden writes: debug, info, warn or error (WARDEN_LOG_LEVEL); empty = info.')
param logLevel string = ''

@description('Flex Consumption: most instances the app scales out to.')
param maximumInstanceCount int = 40

@description('Flex Consumption: memory per instance.')
param instanceMemoryMB int = 2048

@description('Days Log Analytics keeps logs.')
param logRetentionDays int = 30

@description('Extra tags for every resource.')
param tags object = {}

var serviceName = 'warden'
var policy = loadJsonContent('../policy.json')
var bindableRoles = loadJsonContent('bindable-roles.json')
var computeRole = loadJsonContent('compute-remediation-role.json')

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName, application: 'warden' })
var cloud = environment().name == 'AzureUSGovernment' ? 'usgov' : environment().name == 'AzureChinaCloud' ? 'china' : 'public'
var eventsGroupName = empty(eventsResourceGroupName) ? 'rg-${environmentName}-events' : eventsResourceGroupName
var deploymentContainerName = 'deploymentpackage'
var deadLetterContainerName = 'eventgrid-deadletter'

// Policy scopes: `/subscriptions/<id>` or `/subscriptions/<id>/resourceGroups/<name>` (check-policy.mjs
// refuses anything else before deployment).
var subscriptionScopes = filter(policy.scopes, s => length(split(s, '/')) == 3)
var resourceGroupScopes = filter(policy.scopes, s => length(split(s, '/')) == 5)
var governedSubscriptionIds = union(map(policy.scopes, s => toLower(split(s, '/')[2])), [])
var rotations = policy.?credentials.?rotate ?? []
var rotationVaults = filter(map(split(rotationVaultIds, ','), id => trim(id)), id => !empty(id))

// Where each Event Grid feed lives: a system topic Warden creates, or an existing one named in the
// parameters (Azure allows one system topic per source).
var governedSubscriptions = map(governedSubscriptionIds, id => {
  id: id
  topicId: existingSubscriptionTopics[?id] ?? ''
})
var rotationVaultFeeds = map(rotationVaults, id => {
  id: id
  topicId: existingKeyVaultTopics[?last(split(id, '/'))] ?? ''
})

// The ABAC condition on Warden's Role Based Access Control Administrator assignments: role assignments
// may be written only for the bindable roles and deleted only for the bindable and removable ones.
var bindableRoleIds = map(bindableRoles.bindable, r => r.id)
var removableRoleIds = map(bindableRoles.removable, r => r.id)
var writeRoleGuids = join(bindableRoleIds, ', ')
var deleteRoleGuids = join(concat(bindableRoleIds, removableRoleIds), ', ')
var rbacAdminConditionTemplate = '''
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {__WRITE_ROLES__}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {__DELETE_ROLES__}
 )
)
'''
var rbacAdminCondition = replace(replace(rbacAdminConditionTemplate, '__WRITE_ROLES__', writeRoleGuids), '__DELETE_ROLES__', deleteRoleGuids)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: allTags
}

module identity 'modules/identity.bicep' = {
  name: 'warden-identity'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'warden-monitoring'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
    wardenPrincipalId: identity.outputs.wardenPrincipalId
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'warden-storage'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
    wardenPrincipalId: identity.outputs.wardenPrincipalId
    eventsPrincipalId: identity.outputs.eventsPrincipalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'warden-keyvault'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
    wardenPrincipalId: identity.outputs.wardenPrincipalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    clientState: clientState
    alertWebhookUrl: alertWebhookUrl
  }
}

module alertTopic 'modules/alert-topic.bicep' = if (createAlertTopic) {
  name: 'warden-alert-topic'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
    wardenPrincipalId: identity.outputs.wardenPrincipalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module alertTopicSender 'modules/access/alert-topic-sender.bicep' = if (!createAlertTopic && !empty(alertTopicId)) {
  name: 'warden-alert-topic-sender'
  scope: resourceGroup(empty(alertTopicId) ? subscription().subscriptionId : split(alertTopicId, '/')[2], empty(alertTopicId) ? rg.name : split(alertTopicId, '/')[4])
  params: {
    topicName: last(split(alertTopicId, '/'))
    principalId: identity.outputs.wardenPrincipalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'warden-functionapp'
  scope: rg
  params: {
    location: location
    tags: allTags
    resourceToken: resourceToken
    serviceName: serviceName
    identityId: identity.outputs.wardenId
    identityClientId: identity.outputs.wardenClientId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    policyJson: string(policy)
    cloud: cloud
    graphWebhookEnabled: graphWebhookEnabled
    clientStateSecretUri: vault.outputs.clientStateSecretUri
    alertWebhookSecretUri: vault.outputs.alertWebhookSecretUri
    alertTopicEndpoint: createAlertTopic ? alertTopic.outputs.endpoint : !empty(alertTopicId) ? alertTopicSender.outputs.endpoint : ''
    // The timer trigger resolves %WARDEN_SWEEP_SCHEDULE% itself, so it must never be empty.
    sweepSchedule: empty(sweepSchedule) ? '0 0 */6 * * *' : sweepSchedule
    concurrency: empty(concurrency) ? '8' : concurrency
    remediationRole: remediationRole
    logLevel: logLevel
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

// ---- Warden's access to what it governs ----

module computeRoleDefinition 'modules/access/compute-role.bicep' = {
  name: 'warden-compute-role-${uniqueString(environmentName)}'
  scope: subscription(split(policy.scopes[0], '/')[2])
  params: {
    roleGuid: guid(tenant().tenantId, 'warden-compute-remediator', environmentName)
    roleName: '${computeRole.roleName} (${environmentName})'
    roleDescription: computeRole.description
    actions: computeRole.actions
    assignableScopes: policy.scopes
  }
}

module subscriptionAccess 'modules/access/subscription-scope.bicep' = [for governedScope in subscriptionScopes: {
  name: 'warden-access-${uniqueString(governedScope, environmentName)}'
  scope: subscription(split(governedScope, '/')[2])
  params: {
    principalId: identity.outputs.wardenPrincipalId
    rbacAdminCondition: rbacAdminCondition
    computeRoleGuid: computeRoleDefinition.outputs.roleGuid
  }
}]

module resourceGroupAccess 'modules/access/resource-group-scope.bicep' = [for governedScope in resourceGroupScopes: {
  name: 'warden-access-${uniqueString(governedScope, environmentName)}'
  scope: resourceGroup(split(governedScope, '/')[2], split(governedScope, '/')[4])
  params: {
    principalId: identity.outputs.wardenPrincipalId
    rbacAdminCondition: rbacAdminCondition
    computeRoleGuid: computeRoleDefinition.outputs.roleGuid
  }
}]

module rotationVaultAccess 'modules/access/rotation-vault.bicep' = [for vaultId in rotationVaults: {
  name: 'warden-vault-${uniqueString(vaultId, environmentName)}'
  scope: resourceGroup(split(vaultId, '/')[2], split(vaultId, '/')[4])
  params: {
    vaultName: last(split(vaultId, '/'))
    principalId: identity.outputs.wardenPrincipalId
  }
}]

// ---- Event Grid: each subscription sits in the module named after the function it feeds ----

module eventsResourceGroups 'modules/events/events-resource-group.bicep' = [for sub in governedSubscriptions: if (empty(sub.topicId)) {
  name: 'warden-events-rg-${uniqueString(sub.id, environmentName)}'
  scope: subscription(sub.id)
  params: {
    name: eventsGroupName
    location: location
    tags: allTags
  }
}]

module resourceEventsFeeds 'modules/events/resourceEvents.bicep' = [for (sub, i) in governedSubscriptions: {
  name: 'warden-resource-events-${uniqueString(sub.id, environmentName)}'
  scope: resourceGroup(sub.id, empty(sub.topicId) ? eventsGroupName : split(sub.topicId, '/')[4])
  dependsOn: [
    eventsResourceGroups[i]
  ]
  params: {
    subscriptionId: sub.id
    scopes: policy.scopes
    existingTopicName: empty(sub.topicId) ? '' : last(split(sub.topicId, '/'))
    environmentName: environmentName
    tags: allTags
    functionAppId: functionApp.outputs.id
    enabled: eventSubscriptionsEnabled
    eventsIdentityId: identity.outputs.eventsId
    deadLetterStorageId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}]

module keyVaultEventsFeeds 'modules/events/keyVaultEvents.bicep' = [for feed in rotationVaultFeeds: {
  name: 'warden-keyvault-events-${uniqueString(feed.id, environmentName)}'
  scope: resourceGroup(split(empty(feed.topicId) ? feed.id : feed.topicId, '/')[2], split(empty(feed.topicId) ? feed.id : feed.topicId, '/')[4])
  params: {
    vaultId: feed.id
    rotations: rotations
    existingTopicName: empty(feed.topicId) ? '' : last(split(feed.topicId, '/'))
    environmentName: environmentName
    tags: allTags
    functionAppId: functionApp.outputs.id
    enabled: eventSubscriptionsEnabled
    eventsIdentityId: identity.outputs.eventsId
    deadLetterStorageId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}]

module graphEventsFeed 'modules/events/graphEvents.bicep' = if (!empty(graphPartnerTopicName)) {
  name: 'warden-graph-events'
  scope: rg
  params: {
    partnerTopicName: graphPartnerTopicName
    environmentName: environmentName
    functionAppId: functionApp.outputs.id
    enabled: eventSubscriptionsEnabled
    eventsIdentityId: identity.outputs.eventsId
    deadLetterStorageId: storage.outputs.id
    deadLetterContainerName: storage.outputs.deadLetterContainerName
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks and docs use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output WARDEN_URL string = functionApp.outputs.url
output WARDEN_IDENTITY_PRINCIPAL_ID string = identity.outputs.wardenPrincipalId
output WARDEN_IDENTITY_CLIENT_ID string = identity.outputs.wardenClientId
output WARDEN_KEY_VAULT_NAME string = vault.outputs.name
output WARDEN_STORAGE_ACCOUNT string = storage.outputs.name
output WARDEN_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsCustomerId
output WARDEN_APPLICATION_INSIGHTS string = monitoring.outputs.appInsightsName
output WARDEN_ALERT_TOPIC_ENDPOINT string = createAlertTopic ? alertTopic.outputs.endpoint : !empty(alertTopicId) ? alertTopicSender.outputs.endpoint : ''
output WARDEN_COMPUTE_ROLE_ID string = computeRoleDefinition.outputs.roleGuid
output WARDEN_EVENT_SUBSCRIPTIONS_ENABLED bool = eventSubscriptionsEnabled
