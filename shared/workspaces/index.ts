/**
 * The workspace baseline capability (SPEC §1 #2), wired from the composition root. "A new workspace gets
 * its bindings' role assignments at once" is done by the resource event mapping, which queues an `rbac`
 * item beside the `workspaces` item (see `events/resource.ts`); this module checks the posture.
 * @example const { capability } = createWorkspacesModule({ ...core, state, enqueue });
 */
import type { Capability } from '../capability';
import type { CoreDeps } from '../deps';
import type { MlResources } from '../ports/ml';
import { createMlResources } from '../ports/azure/ml';
import type { StateStore } from '../ports/state';
import { createFollowUps, type EnqueueWork, type FollowUpOptions, type FollowUps } from '../compute/followup';
import { createWorkspacesCapability } from './capability';

export interface WorkspacesModuleDeps extends CoreDeps {
  state: StateStore;
  enqueue: EnqueueWork;
}

export interface WorkspacesPorts {
  ml: MlResources;
  followUps: FollowUps;
  followUpOptions: Partial<FollowUpOptions>;
}

export interface WorkspacesModule {
  capability: Capability;
}

export function createWorkspacesModule(deps: WorkspacesModuleDeps, ports: Partial<WorkspacesPorts> = {}): WorkspacesModule {
  const ml = ports.ml ?? createMlResources(deps.clients, { limiter: deps.limiter });
  const followUps =
    ports.followUps ?? createFollowUps({ state: deps.state, enqueue: deps.enqueue, clock: deps.clock, logger: deps.logger }, ports.followUpOptions);
  return { capability: createWorkspacesCapability({ policy: deps.policy, ml, followUps, logger: deps.logger }) };
}

export { planWorkspacePosture, FINDING_CREDENTIAL_DATASTORE, FINDING_REGISTRY_ADMIN_USER } from './plan';
export { parseWorkspaceTarget } from './capability';
