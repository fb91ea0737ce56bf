/**
 * The compute identity capability (SPEC §1 #3), wired from the composition root.
 * @example const { capability } = createComputeModule({ ...core, state, enqueue });
 */
import type { Capability } from '../capability';
import type { CoreDeps } from '../deps';
import type { MlResources } from '../ports/ml';
import { createMlResources } from '../ports/azure/ml';
import type { StateStore } from '../ports/state';
import { createComputeCapability } from './capability';
import { createFollowUps, type EnqueueWork, type FollowUpOptions, type FollowUps } from './followup';

export interface ComputeModuleDeps extends CoreDeps {
  state: StateStore;
  /** Queues work; `options.delayMs` delays a re-check of a compute that is still being built. */
  enqueue: EnqueueWork;
}

export interface ComputePorts {
  ml: MlResources;
  followUps: FollowUps;
  followUpOptions: Partial<FollowUpOptions>;
}

export interface ComputeModule {
  capability: Capability;
  /** The ML adapter this module uses (the RBAC module's offboarding can share it). */
  ml: MlResources;
}

export function createComputeModule(deps: ComputeModuleDeps, ports: Partial<ComputePorts> = {}): ComputeModule {
  const ml = ports.ml ?? createMlResources(deps.clients, { limiter: deps.limiter });
  const followUps =
    ports.followUps ?? createFollowUps({ state: deps.state, enqueue: deps.enqueue, clock: deps.clock, logger: deps.logger }, ports.followUpOptions);
  const capability = createComputeCapability({
    policy: deps.policy,
    ml,
    followUps,
    logger: deps.logger,
    concurrency: deps.settings.concurrency,
  });
  return { capability, ml };
}

export { planCompute, judgeIdentity, localAuthProblems, isExempt, FINDING_IDENTITY_MISSING, FINDING_LOCAL_AUTH_ENABLED } from './plan';
export { parseComputeTarget } from './capability';
