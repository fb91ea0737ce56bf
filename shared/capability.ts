/**
 * The contract every capability implements. A capability plans changes for one target from the real
 * state (read through its ports) with a pure planner, and applies a plan through the same ports.
 * The generic use case in `reconcile.ts` runs plan → apply → audit → alert for any capability, and
 * every trigger (work queue, plan and remediate routes) ends there.
 */
import { z } from 'zod';

export const CAPABILITIES = ['rbac', 'workspaces', 'compute', 'credentials'] as const;
export const capabilityName = z.enum(CAPABILITIES);
export type CapabilityName = z.infer<typeof capabilityName>;

/** What caused a reconcile: recorded on every audit record. */
export const triggerSchema = z.strictObject({
  kind: z.enum(['event', 'notification', 'schedule', 'http', 'followup', 'startup']),
  /** Event id, notification id, schedule name or invocation id. */
  id: z.string().max(512).optional(),
  /** HTTP caller (principal name or "function-key"). */
  caller: z.string().max(512).optional(),
});
export type Trigger = z.infer<typeof triggerSchema>;

export type Severity = 'info' | 'warning' | 'critical';

/** Something Warden noticed; becomes an alert (`type` is `Warden.<Capability>.<Finding>`). */
export interface Finding {
  type: string;
  /** Resource id, group id or app id. */
  subject: string;
  severity: Severity;
  summary: string;
  details: Record<string, unknown>;
  /** What Warden did or what an operator should do. */
  actions: string[];
  /** Who else should hear about it (mail addresses), e.g. an app's owners. */
  notify?: string[];
}

/** One change a plan wants to make. `id` is deterministic, so a replanned change has the same id. */
export interface Change {
  id: string;
  capability: CapabilityName;
  target: string;
  /** Verb-first action name: `createRoleAssignment`, `deleteRoleAssignment`, `assignIdentity`, `stopCompute`, `rotateSecret`… */
  action: string;
  /** What would be done, for people: "Create role assignment 'AzureML Data Scientist' for group … on …". */
  description: string;
  /** The resource the change writes. */
  resource: string;
  destructive: boolean;
  /** Data the executor needs (never a secret value). */
  data: Record<string, unknown>;
}

export interface Plan {
  capability: CapabilityName;
  target: string;
  changes: Change[];
  findings: Finding[];
  /** Things deliberately left alone (exempt resources, unmanaged assignments…), for the audit and demo. */
  skipped: Array<{ resource: string; reason: string }>;
}

export type Outcome = 'planned' | 'applied' | 'unchanged' | 'skipped' | 'failed';

export interface ChangeOutcome {
  change: Change;
  outcome: Outcome;
  /** e.g. `created`, `exists`, `deleted`, `absent`. */
  result?: string;
  /** `retryable` is true for throttled/transient failures (the work pipeline retries the reconcile). */
  error?: { code: string; message: string; retryable: boolean };
  /** Findings produced while applying (e.g. a secret was rotated). */
  findings?: Finding[];
}

export interface ApplyOptions {
  signal?: AbortSignal;
}

/**
 * A capability. `plan` reads the truth and plans (never writes); `apply` executes a plan's changes and
 * reports each outcome (never throws for one failed change — one failing item never stops the rest).
 */
export interface Capability {
  name: CapabilityName;
  /** Every target this capability governs (for the sweep and `target`-less remediation). */
  listTargets(): Promise<string[]>;
  /** Validates and normalises a target id; throws InputError for a malformed one. */
  parseTarget(target: string): string;
  /** True when the target lies inside the policy's scopes (events outside are ignored). */
  inScope(target: string): boolean;
  plan(target: string): Promise<Plan>;
  apply(plan: Plan, options?: ApplyOptions): Promise<ChangeOutcome[]>;
}

export function emptyPlan(capability: CapabilityName, target: string): Plan {
  return { capability, target, changes: [], findings: [], skipped: [] };
}
