/**
 * Manual remediation (SPEC §4, issue 8): "what would you change?" and "change it", for one capability
 * or all, for one target or every target. Planning reads only; remediating one target runs the same
 * `reconcile()` every trigger ends in, synchronously, with the HTTP caller as its trigger; remediating
 * every target queues one work item per target (the work pipeline applies them with its retries).
 */
import { CAPABILITIES, type Capability, type CapabilityName, type Change, type ChangeOutcome, type Finding, type Plan, type Trigger } from '../capability';
import { mapSettled } from '../concurrency';
import { InputError, codeOf, messageOf } from '../errors';
import type { Logger } from '../logging';
import type { Mode } from '../policy';
import type { AlertDelivery } from '../ports/alerts';
import type { ReconcileReport, ReconcileRequest } from '../reconcile';
import { redact, redactValue } from '../redact';
import type { WorkRequest } from '../work/item';

export type CapabilitySelector = CapabilityName | 'all';

export interface RemediationDeps {
  capabilities: Readonly<Record<CapabilityName, Capability>>;
  reconcile(req: ReconcileRequest): Promise<ReconcileReport>;
  enqueue(items: WorkRequest[]): Promise<void>;
  mode: Mode;
  logger: Logger;
  /** Targets planned in parallel when no target is named. */
  concurrency?: number;
}

/** A change as the routes show it (its `data` redacted, as everything else). */
export interface ChangeView {
  id: string;
  action: string;
  description: string;
  resource: string;
  destructive: boolean;
  data: Record<string, unknown>;
}

export interface PlanView {
  capability: CapabilityName;
  target: string;
  changes: ChangeView[];
  findings: Finding[];
  skipped: Plan['skipped'];
}

/** A target or capability that could not be planned or listed; the others still are. */
export interface TargetError {
  capability: CapabilityName;
  target?: string;
  error: { code: string; message: string };
}

export interface PlanResult {
  capability: CapabilitySelector;
  target?: string;
  mode: Mode;
  plans: PlanView[];
  errors: TargetError[];
  totals: { targets: number; changes: number; findings: number };
}

export interface OutcomeView extends ChangeView {
  outcome: ChangeOutcome['outcome'];
  result?: string;
  error?: { code: string; message: string; retryable: boolean };
}

export interface ReconcileView {
  capability: CapabilityName;
  target: string;
  inScope: boolean;
  changes: OutcomeView[];
  findings: Finding[];
  skipped: Plan['skipped'];
  alerts: AlertDelivery[];
  retryable: boolean;
}

export type RemediateResult =
  | { status: 'completed'; capability: CapabilitySelector; target?: string; mode: Mode; dryRun: boolean; results: ReconcileView[]; errors: TargetError[] }
  | { status: 'queued'; capability: CapabilitySelector; mode: Mode; dryRun: false; queued: Array<{ capability: CapabilityName; target: string }>; errors: TargetError[] };

export interface PlanInput {
  capability: CapabilitySelector;
  target?: string;
}

export interface RemediateInput {
  capability: CapabilitySelector;
  target?: string;
  dryRun?: boolean;
  /** Principal name or "function-key". */
  caller: string;
  invocationId?: string;
}

function selected(sel: CapabilitySelector): CapabilityName[] {
  return sel === 'all' ? [...CAPABILITIES] : [sel];
}

function errorOf(err: unknown): { code: string; message: string } {
  return { code: codeOf(err) ?? (err instanceof Error ? err.name : 'Error'), message: redact(messageOf(err)) };
}

function viewChange(c: Change): ChangeView {
  return redactValue({ id: c.id, action: c.action, description: c.description, resource: c.resource, destructive: c.destructive, data: c.data });
}

function viewPlan(p: Plan): PlanView {
  return { capability: p.capability, target: p.target, changes: p.changes.map(viewChange), findings: redactValue(p.findings), skipped: redactValue(p.skipped) };
}

function viewReport(r: ReconcileReport): ReconcileView {
  return {
    capability: r.capability,
    target: r.target,
    inScope: r.inScope,
    changes: r.outcomes.map((o) => ({
      ...viewChange(o.change),
      outcome: o.outcome,
      ...(o.result ? { result: o.result } : {}),
      ...(o.error ? { error: redactValue(o.error) } : {}),
    })),
    findings: redactValue([...r.plan.findings, ...r.outcomes.flatMap((o) => o.findings ?? [])]),
    skipped: redactValue(r.plan.skipped),
    alerts: r.alerts,
    retryable: r.retryable,
  };
}

/**
 * Which capabilities take a target, normalised by each one's `parseTarget` and inside the policy's
 * scopes. With `all`, a target is handed to every capability that accepts its shape (a resource id, a
 * group id, an app id); none accepting it, or all of them finding it out of scope, is a 400.
 */
export function resolveTarget(
  capabilities: Readonly<Record<CapabilityName, Capability>>,
  sel: CapabilitySelector,
  raw: string,
): Array<{ capability: CapabilityName; target: string }> {
  const accepted: Array<{ capability: CapabilityName; target: string }> = [];
  const refusals: string[] = [];
  for (const name of selected(sel)) {
    try {
      accepted.push({ capability: name, target: capabilities[name].parseTarget(raw) });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      if (sel !== 'all') throw err;
      refusals.push(`${name}: ${err.message}`);
    }
  }
  if (accepted.length === 0) {
    throw new InputError('InvalidTarget', `No capability accepts the target "${raw}" (${refusals.join('; ')}).`);
  }
  const inScope = accepted.filter((a) => capabilities[a.capability].inScope(a.target));
  if (inScope.length === 0) {
    throw new InputError('TargetOutOfScope', `The target "${accepted[0]?.target ?? raw}" is outside the scopes the policy governs.`);
  }
  return inScope;
}

/** Every target of the selected capabilities; a capability whose listing fails is reported, not fatal. */
async function listAll(deps: RemediationDeps, sel: CapabilitySelector): Promise<{ targets: Array<{ capability: CapabilityName; target: string }>; errors: TargetError[] }> {
  const names = selected(sel);
  const listed = await Promise.allSettled(names.map((n) => deps.capabilities[n].listTargets()));
  const targets: Array<{ capability: CapabilityName; target: string }> = [];
  const errors: TargetError[] = [];
  listed.forEach((r, i) => {
    const capability = names[i] as CapabilityName;
    if (r.status === 'fulfilled') for (const target of r.value) targets.push({ capability, target });
    else {
      deps.logger.error(`Could not list the targets of ${capability}`, { capability, error: r.reason });
      errors.push({ capability, error: errorOf(r.reason) });
    }
  });
  // A single-capability listing failure is the whole answer: nothing could be done.
  if (sel !== 'all' && errors.length > 0) {
    const reason = listed.find((r) => r.status === 'rejected');
    throw reason?.status === 'rejected' ? reason.reason : new Error('listing failed');
  }
  return { targets, errors };
}

/**
 * What Warden would change, read-only: no write to Azure or Graph, no audit record, no alert.
 * @example await planTargets({ capability: 'rbac', target: groupId }, deps)
 */
export async function planTargets(input: PlanInput, deps: RemediationDeps): Promise<PlanResult> {
  let work: Array<{ capability: CapabilityName; target: string }>;
  let errors: TargetError[] = [];
  if (input.target !== undefined) work = resolveTarget(deps.capabilities, input.capability, input.target);
  else {
    const listed = await listAll(deps, input.capability);
    work = listed.targets.filter((t) => deps.capabilities[t.capability].inScope(t.target));
    errors = listed.errors;
  }
  const planned = await mapSettled(work, deps.concurrency ?? 4, (w) => deps.capabilities[w.capability].plan(w.target));
  const plans: PlanView[] = [];
  planned.forEach((r, i) => {
    const w = work[i] as { capability: CapabilityName; target: string };
    if (r.status === 'fulfilled') plans.push(viewPlan(r.value));
    else errors.push({ ...w, error: errorOf(r.reason) });
  });
  // One named target that could not be planned is a failed request, not a partial answer.
  if (input.target !== undefined && plans.length === 0) {
    const failed = planned.find((r) => r.status === 'rejected');
    if (failed?.status === 'rejected') throw failed.reason;
  }
  deps.logger.info(`Planned ${plans.length} target(s)`, { capability: input.capability, targets: plans.length, errors: errors.length });
  return {
    capability: input.capability,
    ...(input.target !== undefined ? { target: input.target } : {}),
    mode: deps.mode,
    plans,
    errors,
    totals: {
      targets: plans.length,
      changes: plans.reduce((n, p) => n + p.changes.length, 0),
      findings: plans.reduce((n, p) => n + p.findings.length, 0),
    },
  };
}

/**
 * Remediates. One target: reconciles it now (apply unless `dryRun` or report mode) and returns each
 * change's outcome. No target: queues every target (202) — except a dry run, which plans them all now
 * through `reconcile` (so the audit trail records who asked), since queued work always applies.
 */
export async function remediate(input: RemediateInput, deps: RemediationDeps): Promise<RemediateResult> {
  const dryRun = input.dryRun === true;
  const trigger: Trigger = { kind: 'http', caller: input.caller, ...(input.invocationId ? { id: input.invocationId } : {}) };
  const reconcileOne = (w: { capability: CapabilityName; target: string }): Promise<ReconcileReport> =>
    deps.reconcile({ capability: w.capability, target: w.target, trigger, dryRun, ...(input.invocationId ? { invocationId: input.invocationId } : {}) });

  if (input.target !== undefined || dryRun) {
    let work: Array<{ capability: CapabilityName; target: string }>;
    let errors: TargetError[] = [];
    if (input.target !== undefined) work = resolveTarget(deps.capabilities, input.capability, input.target);
    else {
      const listed = await listAll(deps, input.capability);
      work = listed.targets.filter((t) => deps.capabilities[t.capability].inScope(t.target));
      errors = listed.errors;
    }
    const ran = await mapSettled(work, input.target !== undefined ? 1 : (deps.concurrency ?? 4), reconcileOne);
    const results: ReconcileView[] = [];
    ran.forEach((r, i) => {
      const w = work[i] as { capability: CapabilityName; target: string };
      if (r.status === 'fulfilled') results.push(viewReport(r.value));
      else {
        deps.logger.error(`Could not reconcile ${w.capability} ${w.target}`, { capability: w.capability, target: w.target, error: r.reason });
        errors.push({ ...w, error: errorOf(r.reason) });
      }
    });
    if (input.target !== undefined && results.length === 0) {
      const failed = ran.find((r) => r.status === 'rejected');
      if (failed?.status === 'rejected') throw failed.reason;
    }
    return {
      status: 'completed',
      capability: input.capability,
      ...(input.target !== undefined ? { target: input.target } : {}),
      mode: deps.mode,
      dryRun: dryRun || deps.mode === 'report',
      results,
      errors,
    };
  }

  const listed = await listAll(deps, input.capability);
  const queued = listed.targets.filter((t) => deps.capabilities[t.capability].inScope(t.target));
  if (queued.length > 0) {
    await deps.enqueue(queued.map((q) => ({ ...q, reason: `Remediation requested over HTTP by ${input.caller}`, trigger })));
  }
  deps.logger.info(`Queued ${queued.length} target(s) for remediation`, { capability: input.capability, queued: queued.length });
  return { status: 'queued', capability: input.capability, mode: deps.mode, dryRun: false, queued, errors: listed.errors };
}

/** The use cases bound to their dependencies. */
export function createRemediation(deps: RemediationDeps): {
  planTargets(input: PlanInput): Promise<PlanResult>;
  remediate(input: RemediateInput): Promise<RemediateResult>;
} {
  return {
    planTargets: (input) => planTargets(input, deps),
    remediate: (input) => remediate(input, deps),
  };
}
