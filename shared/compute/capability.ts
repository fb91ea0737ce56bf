/**
 * The compute capability: targets are compute resource ids. `plan` reads the compute (one GET) and
 * plans with the pure planner; a compute still being built plans nothing and gets a delayed re-check.
 * `apply` executes the remedy through the {@link MlResources} port, one outcome per change.
 */
import type { Capability, ChangeOutcome, Plan } from '../capability';
import { mapSettled } from '../concurrency';
import { InputError, statusOf, TransientError } from '../errors';
import type { Logger } from '../logging';
import type { Policy } from '../policy';
import { inScopes, parseMlResourceId, type DesiredIdentity, type MlResources } from '../ports/ml';
import { failedOutcome } from '../reconcile';
import type { FollowUps } from './followup';
import { CLUSTER, INSTANCE, planCompute } from './plan';

export interface ComputeCapabilityDeps {
  policy: Readonly<Pick<Policy, 'mode' | 'scopes' | 'compute'>>;
  ml: MlResources;
  followUps: FollowUps;
  logger: Logger;
  /** Workspaces listed in parallel by `listTargets`. */
  concurrency: number;
}

/** Normalises a compute resource id (`resourcegroups` → `resourceGroups`…); throws InputError otherwise. */
export function parseComputeTarget(target: string): string {
  const p = parseMlResourceId(target.trim());
  if (!p?.compute) {
    throw new InputError('InvalidTarget', 'The compute target must be a compute resource id: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<ws>/computes/<name>.');
  }
  return `${p.workspaceId}/computes/${p.compute}`;
}

function desiredIdentity(data: Record<string, unknown>): DesiredIdentity {
  const identity = data.identity as { type?: unknown; id?: unknown } | undefined;
  if (identity?.type === 'UserAssigned' && typeof identity.id === 'string') return { type: 'UserAssigned', id: identity.id };
  return { type: 'SystemAssigned' };
}

export function createComputeCapability(deps: ComputeCapabilityDeps): Capability {
  const { ml, policy } = deps;
  const log = deps.logger.child({ capability: 'compute' });

  return {
    name: 'compute',

    async listTargets() {
      const workspaces = new Map<string, string>();
      for (const scope of policy.scopes) {
        for (const ws of await ml.listWorkspaces(scope)) {
          if (inScopes(ws.id, policy.scopes)) workspaces.set(ws.id.toLowerCase(), ws.id);
        }
      }
      const ids = [...workspaces.values()];
      const lists = await mapSettled(ids, deps.concurrency, (id) => ml.listComputes(id));
      const targets: string[] = [];
      lists.forEach((r, i) => {
        if (r.status === 'rejected') {
          // One unreadable workspace must not hide the computes of all the others; the next sweep retries it.
          log.error('Could not list the computes of a workspace', { workspaceId: ids[i], error: r.reason });
          return;
        }
        for (const c of r.value) if (c.computeType === CLUSTER || c.computeType === INSTANCE) targets.push(parseComputeTarget(c.id));
      });
      return targets;
    },

    parseTarget: parseComputeTarget,

    inScope(target) {
      return inScopes(target, policy.scopes);
    },

    async plan(target): Promise<Plan> {
      const compute = await ml.getCompute(target);
      const { plan, recheck } = planCompute({ target, compute, policy: policy.compute, mode: policy.mode });
      if (recheck) await deps.followUps.schedule('compute', target, recheck.why);
      return plan;
    },

    async apply(plan) {
      const outcomes: ChangeOutcome[] = [];
      // Changes of one compute run in order: there is at most one per plan, and order matters if there were more.
      for (const change of plan.changes) {
        try {
          switch (change.action) {
            case 'assignIdentity':
              await ml.setComputeIdentity(change.resource, desiredIdentity(change.data));
              outcomes.push({ change, outcome: 'applied', result: 'updated' });
              break;
            case 'scaleToZero':
              await ml.scaleToZero(change.resource);
              outcomes.push({ change, outcome: 'applied', result: 'updated' });
              break;
            case 'stopCompute':
              await ml.stopCompute(change.resource);
              outcomes.push({ change, outcome: 'applied', result: 'stopped' });
              break;
            case 'deleteCompute':
              await ml.deleteCompute(change.resource);
              outcomes.push({ change, outcome: 'applied', result: 'deleted' });
              break;
            default:
              outcomes.push({ change, outcome: 'skipped', result: `unknown action ${change.action}` });
          }
        } catch (err) {
          const status = statusOf(err);
          if (status === 404) {
            // Deleted since the plan read it: nothing left to fix.
            outcomes.push({ change, outcome: 'unchanged', result: 'absent' });
          } else if (status === 409) {
            // Another operation on the compute is in progress; the retry finds it settled.
            outcomes.push(failedOutcome(change, new TransientError('ComputeBusy', `The compute is busy with another operation: ${err instanceof Error ? err.message : 'conflict'}`, err)));
          } else {
            outcomes.push(failedOutcome(change, err));
          }
        }
      }
      return outcomes;
    },
  };
}
