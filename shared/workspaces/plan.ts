/**
 * The workspace posture planner (pure). It writes nothing: a workspace's baseline role assignments are
 * the RBAC capability's work (a workspace write event queues both), and what it checks here cannot be
 * fixed without breaking whoever uses it, so it is reported:
 * - the workspace's container registry has its admin user enabled (a shared username/password that
 *   bypasses Entra ID and RBAC);
 * - datastores that hold an account key, a SAS token or a service principal's secret or certificate
 *   instead of identity-based access.
 *
 * One finding per registry and per datastore, with stable subjects and details (no times), so the
 * alerter's repeat window sends each once, not once per sweep.
 */
import type { Finding, Plan } from '../capability';
import type { Policy } from '../policy';
import type { Datastore, Workspace } from '../ports/ml';

export const FINDING_REGISTRY_ADMIN_USER = 'Warden.Workspaces.RegistryAdminUserEnabled';
export const FINDING_CREDENTIAL_DATASTORE = 'Warden.Workspaces.CredentialDatastore';

/** Credential types that store a secret in the workspace, with how people name them. */
const STORED_CREDENTIALS: Readonly<Record<string, string>> = {
  accountkey: 'a storage account key',
  sas: 'a SAS token',
  serviceprincipal: "a service principal's client secret",
  certificate: "a service principal's certificate",
};

export interface WorkspacePostureInput {
  target: string;
  /** The workspace as read now; undefined when it does not exist. */
  workspace: Workspace | undefined;
  /** `adminUserEnabled` of the workspace's registry (undefined: no registry, not checked, or not found). */
  registryAdminUserEnabled: boolean | undefined;
  /** The workspace's datastores (undefined when not checked). */
  datastores: Datastore[] | undefined;
  policy: Pick<Policy['workspaces'], 'flagRegistryAdminUser' | 'flagCredentialDatastores'>;
}

export interface WorkspacePlanResult {
  plan: Plan;
  recheck?: { why: string };
}

const BUILDING = new Set(['creating', 'updating']);

/** True when the planner needs the workspace's registry and datastores (not for a missing or half-built one). */
export function workspaceIsSettled(ws: Workspace | undefined): ws is Workspace {
  return ws !== undefined && !BUILDING.has((ws.provisioningState ?? '').toLowerCase());
}

export function planWorkspacePosture(input: WorkspacePostureInput): WorkspacePlanResult {
  const { target, workspace, policy } = input;
  const plan: Plan = { capability: 'workspaces', target, changes: [], findings: [], skipped: [] };
  if (!workspace) {
    plan.skipped.push({ resource: target, reason: 'The workspace does not exist (deleted, or never created); nothing to check.' });
    return { plan };
  }
  const prov = (workspace.provisioningState ?? '').toLowerCase();
  if (BUILDING.has(prov)) {
    plan.skipped.push({ resource: workspace.id, reason: `The workspace is still ${prov}; its posture is checked once it is built.` });
    return { plan, recheck: { why: `still ${prov}` } };
  }

  if (policy.flagRegistryAdminUser && workspace.containerRegistry && input.registryAdminUserEnabled === true) {
    plan.findings.push(registryFinding(workspace.containerRegistry));
  }
  if (policy.flagCredentialDatastores) {
    const stores = [...(input.datastores ?? [])].sort((a, b) => a.id.toLowerCase().localeCompare(b.id.toLowerCase()));
    for (const ds of stores) {
      const what = STORED_CREDENTIALS[ds.credentialsType.toLowerCase()];
      if (what) plan.findings.push(datastoreFinding(workspace, ds, what));
    }
  }
  return { plan };
}

function lastSegment(id: string): string {
  return id.split('/').filter(Boolean).pop() ?? id;
}

function registryFinding(registryId: string): Finding {
  const registry = lastSegment(registryId);
  return {
    type: FINDING_REGISTRY_ADMIN_USER,
    subject: registryId,
    severity: 'warning',
    // Several workspaces can share one registry: the finding is about the registry alone, so every
    // workspace's reconcile produces the same finding and the repeat window holds.
    summary: `Container registry '${registry}' used by Azure ML workspaces has its admin user enabled: anyone with its shared password can push and pull images, outside Entra ID and RBAC.`,
    details: { registryId, registry, adminUserEnabled: true },
    actions: [
      `Disable the admin user: az acr update --name ${registry} --admin-enabled false (the workspace pulls images with its managed identity).`,
      'Give people and pipelines AcrPull/AcrPush role assignments instead of the shared password.',
    ],
  };
}

function datastoreFinding(ws: Workspace, ds: Datastore, what: string): Finding {
  return {
    type: FINDING_CREDENTIAL_DATASTORE,
    subject: ds.id,
    severity: 'warning',
    summary: `Datastore '${ds.name}' in workspace '${ws.name}' holds ${what} instead of using identity-based access; everyone who can use the workspace uses that credential.`,
    details: {
      workspaceId: ws.id,
      workspace: ws.name,
      datastore: ds.name,
      datastoreType: ds.datastoreType,
      credentialsType: ds.credentialsType,
    },
    actions: [
      `Switch the datastore to identity-based access: az ml datastore create --workspace-name ${ws.name} --resource-group ${ws.resourceGroup} --file <yaml> with name ${ds.name} and no credentials section (it replaces the datastore of that name).`,
      "Grant the users' groups (or the workspace identity) a Storage Blob Data role on the storage account, then rotate or revoke the credential the datastore held.",
    ],
  };
}
