// Warden's custom role for compute remediation (actions from infra/compute-remediation-role.json).
// One definition serves every governed scope: custom role names are unique per tenant.
targetScope = 'subscription'

@description('Deterministic GUID of the role definition.')
param roleGuid string

param roleName string
param roleDescription string

@description('Exactly the actions compute remediation performs.')
param actions array

@description('The policy scopes: where the role may be assigned.')
param assignableScopes array

resource computeRemediator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleGuid
  properties: {
    roleName: roleName
    description: roleDescription
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output roleGuid string = computeRemediator.name
