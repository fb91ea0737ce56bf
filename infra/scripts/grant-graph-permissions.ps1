#!/usr/bin/env pwsh
# PowerShell twin of grant-graph-permissions.sh (same permissions, same options, same output).
# Grants Warden's managed identity the Microsoft Graph application permissions it uses, and makes it
# an owner of the app registrations whose secrets it rotates. Idempotent; uses only the az CLI.
# Needs Privileged Role Administrator (Graph permissions) and Application Administrator (owners).
[CmdletBinding()]
param(
  [string] $PrincipalId = $env:WARDEN_IDENTITY_PRINCIPAL_ID,
  [switch] $Mail,
  [switch] $OwnedAppsOnly,
  [switch] $NoChangeNotifications,
  [string] $Policy = '',
  [string[]] $OwnerOf = @(),
  [switch] $DryRun
)
$ErrorActionPreference = 'Stop'
$GraphAppId = '00000003-0000-0000-c000-000000000000'

function Invoke-Az {
  $out = & az @args
  if ($LASTEXITCODE -ne 0) { throw "az $($args -join ' ') failed (exit $LASTEXITCODE)" }
  return $out
}

if (-not $PrincipalId -and (Get-Command azd -ErrorAction SilentlyContinue)) {
  $PrincipalId = (& azd env get-value WARDEN_IDENTITY_PRINCIPAL_ID 2>$null)
}
if ($PrincipalId -notmatch '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') {
  Write-Error "Warden's identity is unknown: pass -PrincipalId <object id> (azd output WARDEN_IDENTITY_PRINCIPAL_ID)."
  exit 2
}

$permissions = @('GroupMember.Read.All', 'User.Read.All', 'Application.ReadWrite.OwnedBy')
if (-not $NoChangeNotifications) { $permissions += 'Group.Read.All' }
if (-not $OwnedAppsOnly) { $permissions += 'Application.Read.All' }
if ($Mail) { $permissions += 'Mail.Send' }

$owners = @($OwnerOf)
if ($Policy) {
  $p = Get-Content -Raw -Path $Policy | ConvertFrom-Json
  if ($p.credentials -and $p.credentials.rotate) { $owners += @($p.credentials.rotate | ForEach-Object { $_.appId }) }
}

$graph = (& az cloud show --query endpoints.microsoftGraphResourceId -o tsv 2>$null)
if (-not $graph) { $graph = 'https://graph.microsoft.com/' }
$graph = $graph.TrimEnd('/')

$graphSpId = Invoke-Az ad sp show --id $GraphAppId --query id -o tsv
$existing = @(Invoke-Az rest --method get --url "$graph/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments" --query "value[?resourceId=='$graphSpId'].appRoleId" -o tsv)

$granted = 0
foreach ($perm in $permissions) {
  $roleId = Invoke-Az ad sp show --id $GraphAppId --query "appRoles[?value=='$perm' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv
  if (-not $roleId) { Write-Error "Microsoft Graph has no application permission $perm in this cloud."; exit 1 }
  if ($existing -contains $roleId) { Write-Output "already granted: $perm"; continue }
  if ($DryRun) { Write-Output "would grant: $perm"; continue }
  $body = @{ principalId = $PrincipalId; resourceId = $graphSpId; appRoleId = $roleId } | ConvertTo-Json -Compress
  $bodyFile = New-TemporaryFile
  Set-Content -Path $bodyFile -Value $body -NoNewline
  try {
    Invoke-Az rest --method post --url "$graph/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments" --headers 'Content-Type=application/json' --body "@$bodyFile" --output none | Out-Null
  } finally { Remove-Item $bodyFile }
  Write-Output "granted: $perm"
  $granted++
}

foreach ($app in $owners) {
  $objectId = Invoke-Az ad app show --id $app --query id -o tsv
  $current = @(Invoke-Az rest --method get --url "$graph/v1.0/applications/$objectId/owners?`$select=id" --query 'value[].id' -o tsv)
  if ($current -contains $PrincipalId) { Write-Output "already an owner: app $app"; continue }
  if ($DryRun) { Write-Output "would add owner: app $app"; continue }
  $body = @{ '@odata.id' = "$graph/v1.0/directoryObjects/$PrincipalId" } | ConvertTo-Json -Compress
  $bodyFile = New-TemporaryFile
  Set-Content -Path $bodyFile -Value $body -NoNewline
  try {
    Invoke-Az rest --method post --url "$graph/v1.0/applications/$objectId/owners/`$ref" --headers 'Content-Type=application/json' --body "@$bodyFile" --output none | Out-Null
  } finally { Remove-Item $bodyFile }
  Write-Output "added owner: app $app"
}

if ($granted -gt 0) {
  Write-Output 'Azure caches managed identity tokens for up to 24 hours: Warden may need that long to use the new permissions.'
}
