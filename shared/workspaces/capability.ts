/**
 * The workspace baseline capability: targets are workspace resource ids. `plan` reads the workspace,
 * its registry's admin-user flag and its datastores, and reports findings; it plans no change (the
 * baseline role assignments are the RBAC capability's, queued by the same workspace event). A workspace
 * still being built is re-checked later, when its registry and datastores exist.
 */
import type { Capability, Plan } from '../capability';
import { InputError } from '../errors';
import type { Logger } from '../logging';
import type { Policy } from '../policy';
import { inScopes, parseMlResourceId, type Datastore, type MlResources } from '../ports/ml';
import type { FollowUps } from '../compute/followup';
import { planWorkspacePosture, workspaceIsSettled } from './plan';

export interface WorkspacesCapabilityDeps {
  policy: Readonly<Pick<Policy, 'scopes' | 'workspaces'>>;
  ml: MlResources;
  followUps: FollowUps;
  logger: Logger;
}

/** Normalises a workspace resource id; throws InputError for anything else (a compute id included). */
export function parseWorkspaceTarget(target: string): string {
  const p = parseMlResourceId(target.trim());
  if (!p || p.compute) {
    throw new InputError('InvalidTarget', 'The workspaces target must be a workspace resource id: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>.');
  }
  return p.workspaceId;
}

export function createWorkspacesCapability(deps: WorkspacesCapabilityDeps): Capability {
  const { ml, policy } = deps;
  return {
    name: 'workspaces',

    async listTargets() {
      const ids = new Map<string, string>();
      for (const scope of policy.scopes) {
        for (const ws of await ml.listWorkspaces(scope)) {
          if (inScopes(ws.id, policy.scopes)) {
            const id = parseWorkspaceTarget(ws.id);
            ids.set(id.toLowerCase(), id);
          }
        }
      }
      return [...ids.values()];
    },

    parseTarget: parseWorkspaceTarget,

    inScope(target) {
      return inScopes(target, policy.scopes);
    },

    async plan(target): Promise<Plan> {
      const workspace = await ml.getWorkspace(target);
      const flags = policy.workspaces;
      let registryAdminUserEnabled: boolean | undefined;
      let datastores: Datastore[] | undefined;
      if (workspaceIsSettled(workspace)) {
        const registry = workspace.containerRegistry;
        [registryAdminUserEnabled, datastores] = await Promise.all([
          flags.flagRegistryAdminUser && registry ? ml.getRegistryAdminUserEnabled(registry) : Promise.resolve(undefined),
          flags.flagCredentialDatastores ? ml.listDatastores(workspace.id) : Promise.resolve(undefined),
        ]);
      }
      const { plan, recheck } = planWorkspacePosture({ target, workspace, registryAdminUserEnabled, datastores, policy: flags });
      if (recheck) await deps.followUps.schedule('workspaces', target, recheck.why);
      return plan;
    },

    // Posture is reported, never changed: there is nothing to apply.
    async apply(plan) {
      return plan.changes.map((change) => ({ change, outcome: 'skipped' as const, result: 'workspaces plans no changes' }));
    },
  };
}
