// The Function App on Flex Consumption (Linux, Node 20) running as Warden's user-assigned identity.
// The `appsettings` resource below is the whole list of settings Warden gets in Azure; SPEC §3 and
// `SETTING_DOCS` in shared/settings.ts say what each means, and test/infra checks that every setting
// the code reads is set here or deliberately left out.

param location string
param tags object
param resourceToken string

@description('Name of the azd service in azure.yaml; azd finds the app by this tag.')
param serviceName string

@description('Resource id of Warden\'s user-assigned identity.')
param identityId string

@description('Client id of Warden\'s user-assigned identity.')
param identityClientId string

@description('Storage account blob/queue/table endpoints (with trailing slash).')
param blobEndpoint string
param queueEndpoint string
param tableEndpoint string

@description('URL of the blob container the app package is deployed to.')
param deploymentContainerUrl string

param appInsightsConnectionString string
param logAnalyticsId string

@description('The policy JSON (WARDEN_POLICY).')
param policyJson string

@description('`public`, `usgov` or `china` (WARDEN_CLOUD).')
param cloud string

@description('Manage Graph webhook subscriptions (sets WARDEN_PUBLIC_URL to this app).')
param graphWebhookEnabled bool

@description('Versionless Key Vault URI of the clientState secret.')
param clientStateSecretUri string

@description('Versionless Key Vault URI of the alert webhook secret; empty = none.')
param alertWebhookSecretUri string

@description('Endpoint of the Event Grid topic for alerts; empty = none.')
param alertTopicEndpoint string

param sweepSchedule string
param concurrency string
param remediationRole string

@description('Least severe log level Warden writes (WARDEN_LOG_LEVEL); empty = info.')
param logLevel string

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int
@allowed([512, 2048, 4096])
param instanceMemoryMB int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-warden-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-warden-${resourceToken}'
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '20'
      }
    }
  }
}

// Publishing goes through Entra ID (azd, az functionapp deployment), never basic credentials.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // The host's storage through the identity (no connection string, no key). Warden's queue and
    // table clients read the same `AzureWebJobsStorage` connection.
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    AzureWebJobsStorage__tableServiceUri: tableEndpoint
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    AZURE_CLIENT_ID: identityClientId
    WARDEN_POLICY: policyJson
    WARDEN_CLOUD: cloud
    WARDEN_CREDENTIAL: 'default'
    WARDEN_PUBLIC_URL: graphWebhookEnabled ? 'https://${site.properties.defaultHostName}' : ''
    WARDEN_CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${clientStateSecretUri})'
    WARDEN_SWEEP_SCHEDULE: sweepSchedule
    WARDEN_CONCURRENCY: concurrency
    WARDEN_REMEDIATION_ROLE: remediationRole
    WARDEN_LOG_LEVEL: logLevel
    // Placeholders the policy may use (`%WARDEN_ALERT_WEBHOOK%`, `%WARDEN_ALERT_TOPIC%`).
    WARDEN_ALERT_WEBHOOK: empty(alertWebhookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${alertWebhookSecretUri})'
    WARDEN_ALERT_TOPIC: alertTopicEndpoint
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'warden-logs'
  scope: site
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      { category: 'FunctionAppLogs', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}

output id string = site.id
output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
