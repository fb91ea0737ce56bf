#!/usr/bin/env bash
# Grants Warden's managed identity the Microsoft Graph application permissions it uses, and (with
# --policy/--owner-of) makes it an owner of the app registrations whose secrets it rotates.
# Idempotent: what is already granted is left alone; every action is printed. Uses only the az CLI
# (az ad sp show, az rest against Graph appRoleAssignments and owners).
#
# Who may run it: granting Microsoft Graph application permissions needs Privileged Role
# Administrator (or Global Administrator); adding an owner to an app registration needs Application
# Administrator, Cloud Application Administrator or an existing owner of that app.
#
# Permissions (what breaks without each: docs/deploy.md "Microsoft Graph permissions"):
#   GroupMember.Read.All           bound groups, their transitive members, groups/delta   (always)
#   Group.Read.All                 change-notification subscription on /groups         (unless --no-change-notifications)
#   User.Read.All                  members' accountEnabled, offboarding lookups         (always)
#   Application.Read.All           expiring secrets/certificates of every app, owners   (unless --owned-apps-only)
#   Application.ReadWrite.OwnedBy  rotate secrets of apps Warden owns                   (always)
#   Mail.Send                      mail alerts                                           (--mail)
set -euo pipefail

GRAPH_APP_ID="00000003-0000-0000-c000-000000000000"

usage() {
  cat <<USAGE
Usage: $(basename "$0") [--principal-id <object id>] [--mail] [--owned-apps-only] [--no-change-notifications]
                        [--policy policy.json] [--owner-of <app id>]... [--dry-run]

  --principal-id   object id of Warden's managed identity (default: WARDEN_IDENTITY_PRINCIPAL_ID from
                   the environment or from 'azd env get-value')
  --mail           also grant Mail.Send (the policy's alerts.mail)
  --owned-apps-only
                   skip Application.Read.All: only apps Warden owns are inventoried for expiring credentials
  --no-change-notifications
                   skip Group.Read.All: no Graph subscription on /groups (sweeps and delta only)
  --policy FILE    make Warden an owner of every app in FILE's credentials.rotate (needs node)
  --owner-of ID    make Warden an owner of this app registration (app id); repeatable
  --dry-run        print what would be done, change nothing
USAGE
}

PRINCIPAL_ID="${WARDEN_IDENTITY_PRINCIPAL_ID:-}"
MAIL=false
TENANT_APPS=true
CHANGE_NOTIFICATIONS=true
DRY_RUN=false
POLICY=""
OWNER_APPS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --principal-id) PRINCIPAL_ID="${2:?--principal-id needs a value}"; shift 2 ;;
    --mail) MAIL=true; shift ;;
    --owned-apps-only) TENANT_APPS=false; shift ;;
    --no-change-notifications) CHANGE_NOTIFICATIONS=false; shift ;;
    --policy) POLICY="${2:?--policy needs a file}"; shift 2 ;;
    --owner-of) OWNER_APPS+=("${2:?--owner-of needs an app id}"); shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "Unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ -z "$PRINCIPAL_ID" ] && command -v azd >/dev/null 2>&1; then
  PRINCIPAL_ID="$(azd env get-value WARDEN_IDENTITY_PRINCIPAL_ID 2>/dev/null || true)"
fi
if ! [[ "$PRINCIPAL_ID" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; then
  echo "Warden's identity is unknown: pass --principal-id <object id> (azd output WARDEN_IDENTITY_PRINCIPAL_ID)." >&2
  exit 2
fi

PERMISSIONS=(GroupMember.Read.All User.Read.All Application.ReadWrite.OwnedBy)
$CHANGE_NOTIFICATIONS && PERMISSIONS+=(Group.Read.All)
$TENANT_APPS && PERMISSIONS+=(Application.Read.All)
$MAIL && PERMISSIONS+=(Mail.Send)

if [ -n "$POLICY" ]; then
  if ! command -v node >/dev/null 2>&1; then echo "--policy needs node to read $POLICY; use --owner-of instead." >&2; exit 2; fi
  while IFS= read -r app; do
    [ -n "$app" ] && OWNER_APPS+=("$app")
  done < <(node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));for(const r of (p.credentials&&p.credentials.rotate)||[])console.log(r.appId)' "$POLICY")
fi

GRAPH="$(az cloud show --query endpoints.microsoftGraphResourceId -o tsv 2>/dev/null || true)"
GRAPH="${GRAPH:-https://graph.microsoft.com/}"
GRAPH="${GRAPH%/}"

GRAPH_SP_ID="$(az ad sp show --id "$GRAPH_APP_ID" --query id -o tsv)"
if [ -z "$GRAPH_SP_ID" ]; then echo "Cannot find the Microsoft Graph service principal in this tenant." >&2; exit 1; fi

existing="$(az rest --method get --url "$GRAPH/v1.0/servicePrincipals/$PRINCIPAL_ID/appRoleAssignments" \
  --query "value[?resourceId=='$GRAPH_SP_ID'].appRoleId" -o tsv)"

granted=0
for perm in "${PERMISSIONS[@]}"; do
  role_id="$(az ad sp show --id "$GRAPH_APP_ID" \
    --query "appRoles[?value=='$perm' && contains(allowedMemberTypes, 'Application')].id | [0]" -o tsv)"
  if [ -z "$role_id" ]; then echo "Microsoft Graph has no application permission $perm in this cloud." >&2; exit 1; fi
  if grep -qix "$role_id" <<<"$existing"; then
    echo "already granted: $perm"
    continue
  fi
  if $DRY_RUN; then
    echo "would grant: $perm"
    continue
  fi
  az rest --method post --url "$GRAPH/v1.0/servicePrincipals/$PRINCIPAL_ID/appRoleAssignments" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$PRINCIPAL_ID\",\"resourceId\":\"$GRAPH_SP_ID\",\"appRoleId\":\"$role_id\"}" \
    --output none
  echo "granted: $perm"
  granted=$((granted + 1))
done

for app in ${OWNER_APPS[@]+"${OWNER_APPS[@]}"}; do
  object_id="$(az ad app show --id "$app" --query id -o tsv)"
  owners="$(az rest --method get --url "$GRAPH/v1.0/applications/$object_id/owners?\$select=id" --query "value[].id" -o tsv)"
  if grep -qix "$PRINCIPAL_ID" <<<"$owners"; then
    echo "already an owner: app $app"
    continue
  fi
  if $DRY_RUN; then
    echo "would add owner: app $app"
    continue
  fi
  az rest --method post --url "$GRAPH/v1.0/applications/$object_id/owners/\$ref" \
    --headers "Content-Type=application/json" \
    --body "{\"@odata.id\":\"$GRAPH/v1.0/directoryObjects/$PRINCIPAL_ID\"}" \
    --output none
  echo "added owner: app $app"
done

if [ "$granted" -gt 0 ]; then
  echo "Azure caches managed identity tokens for up to 24 hours: Warden may need that long to use the new permissions."
fi
