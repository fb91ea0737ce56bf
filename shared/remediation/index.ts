/** Manual remediation and the HTTP routes of issue 8 (plan, remediate, audit, health). */
export {
  createRemediation, planTargets, remediate, resolveTarget,
  type CapabilitySelector, type ChangeView, type OutcomeView, type PlanInput, type PlanResult, type PlanView,
  type ReconcileView, type RemediateInput, type RemediateResult, type RemediationDeps, type TargetError,
} from './usecases';
export { auditQuerySchema, capabilitySelector, INPUT_CODES, planQuerySchema, remediateBodySchema, targetInput } from './input';
export {
  auditFunctionOptions, healthDeepFunctionOptions, healthFunctionOptions, planFunctionOptions, remediateFunctionOptions,
  type HealthRuntime, type RemediationRuntime,
} from './functions';
