/**
 * The compute identity planner (pure). A compute cluster or instance must run under a managed identity
 * (system-assigned, or the user-assigned identity the policy names) and, where the policy says, with
 * local authentication and public SSH off. A violation is remediated as `compute.onViolation` says, or
 * only reported: always reported when the compute carries the exempt tag or the policy is in `report` mode
 * (then the plan still lists the change, and `reconcile` applies nothing).
 *
 * What can be fixed in place (AZURE-API-FACTS §4.3–4.4): a cluster's identity (GET + full PUT); a
 * cluster's scale settings (PATCH). Not: an instance's identity, nor `disableLocalAuth` or SSH access of
 * either kind, which are fixed at creation; for those the remedies are quarantine (scale to zero, stop) or
 * delete, and the finding says how to recreate the compute.
 *
 * Findings are deterministic (no times, no server-assigned ids) so that the alerter's repeat window sees
 * the same finding on every sweep until something changes.
 */
import type { Change, Finding, Plan } from '../capability';
import type { ComputePolicy, Mode } from '../policy';
import type { Compute, DesiredIdentity } from '../ports/ml';
import { parseMlResourceId } from '../ports/ml';
import { uuidV5 } from '../uuid';

export const FINDING_IDENTITY_MISSING = 'Warden.Compute.IdentityMissing';
export const FINDING_LOCAL_AUTH_ENABLED = 'Warden.Compute.LocalAuthEnabled';

/** Compute types Warden governs. Attached computes (AKS, Databricks…) run under their own service's identity. */
export const CLUSTER = 'AmlCompute';
export const INSTANCE = 'ComputeInstance';

/** Provisioning states in which a compute is still being built or changed: judged later, not now. */
const BUILDING = new Set(['creating', 'updating']);
/** Instance states on the way somewhere: re-checked later (a starting instance will be running soon). */
const INSTANCE_TRANSITIONS = new Set(['creating', 'starting', 'restarting', 'settingup', 'usersettingup']);
/** Instance states in which there is nothing to stop. */
const INSTANCE_NOT_RUNNING = new Set(['stopped', 'stopping', 'deleting', 'createfailed']);

export interface ComputePlanInput {
  target: string;
  /** The compute as read now; undefined when it does not exist (deleted since the event). */
  compute: Compute | undefined;
  policy: ComputePolicy;
  mode: Mode;
}

export interface ComputePlanResult {
  plan: Plan;
  /** Set when the compute is still being built or is between states: re-check it later. */
  recheck?: { why: string };
}

export type IdentityVerdict =
  | { ok: true }
  | { ok: false; reason: 'none' }
  | { ok: false; reason: 'unapprovedUserAssigned'; identities: string[] };

/**
 * Whether the compute's identity satisfies the policy: system-assigned always does; a user-assigned
 * identity only when it is the one the policy names (ids compare case-insensitively, as ARM does).
 */
export function judgeIdentity(compute: Pick<Compute, 'identity'>, desired: DesiredIdentity): IdentityVerdict {
  const parts = compute.identity.type.split(',').map((p) => p.trim().toLowerCase());
  if (parts.includes('systemassigned')) return { ok: true };
  const uais = parts.includes('userassigned') ? compute.identity.userAssignedIdentities : [];
  if (desired.type === 'UserAssigned' && uais.some((u) => u.toLowerCase() === desired.id.toLowerCase())) return { ok: true };
  if (uais.length > 0) return { ok: false, reason: 'unapprovedUserAssigned', identities: [...uais].sort() };
  return { ok: false, reason: 'none' };
}

/** Local-auth problems the policy cares about: `disableLocalAuth` off, public SSH on. */
export function localAuthProblems(compute: Compute): Array<'localAuth' | 'publicSsh'> {
  const out: Array<'localAuth' | 'publicSsh'> = [];
  if (!compute.disableLocalAuth) out.push('localAuth');
  const ssh = compute.computeType === CLUSTER ? compute.remoteLoginPortPublicAccess : compute.sshPublicAccess;
  if (ssh !== undefined && ssh.toLowerCase() === 'enabled') out.push('publicSsh');
  return out;
}

/** True when the compute carries the exempt tag (keys compare case-insensitively, as ARM tags do; `false` opts back in). */
export function isExempt(tags: Readonly<Record<string, string>>, exemptTag: string): boolean {
  const want = exemptTag.toLowerCase();
  return Object.entries(tags).some(([k, v]) => k.toLowerCase() === want && v.trim().toLowerCase() !== 'false');
}

export function describeIdentity(d: DesiredIdentity): string {
  return d.type === 'SystemAssigned' ? 'the system-assigned managed identity' : `the user-assigned managed identity ${d.id}`;
}

function where(compute: Compute): string {
  const ws = parseMlResourceId(compute.id)?.workspace ?? compute.workspaceId;
  return `${compute.computeType === CLUSTER ? 'compute cluster' : 'compute instance'} '${compute.name}' in workspace '${ws}'`;
}

function changeId(action: string, resource: string, extra = ''): string {
  return uuidV5(`compute|${action}|${resource.toLowerCase()}|${extra}`);
}

type Remedy = ComputePolicy['onViolation']['cluster'] | ComputePolicy['onViolation']['instance'];

/** The one change the configured remedy needs now, or undefined when it is done already or impossible. */
function remedyChange(
  compute: Compute,
  remedy: Remedy,
  identityBad: IdentityVerdict,
  desired: DesiredIdentity,
  problems: string,
): Change | undefined {
  const base = { capability: 'compute' as const, target: compute.id, resource: compute.id };
  const w = where(compute);
  switch (remedy) {
    case 'assign-identity': {
      // Only the identity can be changed in place; local auth and SSH are fixed at creation.
      if (identityBad.ok) return undefined;
      const data = desired.type === 'SystemAssigned' ? { identity: { type: 'SystemAssigned' } } : { identity: { type: 'UserAssigned', id: desired.id } };
      return {
        ...base,
        id: changeId('assignIdentity', compute.id, JSON.stringify(data.identity)),
        action: 'assignIdentity',
        description:
          identityBad.reason === 'unapprovedUserAssigned'
            ? `Replace the identity of ${w} (a user-assigned identity the policy does not allow) with ${describeIdentity(desired)}, keeping every other setting`
            : `Assign ${describeIdentity(desired)} to ${w}, keeping every other setting`,
        // Replacing an identity the compute already uses can break the jobs that rely on it.
        destructive: identityBad.reason === 'unapprovedUserAssigned',
        data,
      };
    }
    case 'scale-to-zero': {
      const s = compute.scaleSettings;
      if (s && s.maxNodeCount === 0 && s.minNodeCount === 0) return undefined;
      return {
        ...base,
        id: changeId('scaleToZero', compute.id),
        action: 'scaleToZero',
        description: `Scale ${w} to zero nodes (quarantine: ${problems})`,
        destructive: true,
        data: { previous: s ? { minNodeCount: s.minNodeCount, maxNodeCount: s.maxNodeCount } : null },
      };
    }
    case 'stop': {
      const state = (compute.state ?? '').toLowerCase();
      if (INSTANCE_NOT_RUNNING.has(state)) return undefined;
      return {
        ...base,
        id: changeId('stopCompute', compute.id),
        action: 'stopCompute',
        description: `Stop ${w} (quarantine: ${problems})`,
        destructive: true,
        data: { previousState: compute.state ?? null },
      };
    }
    case 'delete':
      return {
        ...base,
        id: changeId('deleteCompute', compute.id),
        action: 'deleteCompute',
        description: `Delete ${w} (${problems})`,
        destructive: true,
        data: {},
      };
    case 'alert':
      return undefined;
  }
}

function remedyText(remedy: Remedy, kind: 'cluster' | 'instance'): string {
  switch (remedy) {
    case 'assign-identity':
      return 'assign the identity in place';
    case 'scale-to-zero':
      return 'scale the cluster to zero nodes';
    case 'stop':
      return 'stop the instance';
    case 'delete':
      return `delete the ${kind}`;
    case 'alert':
      return 'alert only';
  }
}

/**
 * Plans one compute. Pure: the same compute and policy always give the same plan (ids, findings, texts).
 * @example planCompute({ target, compute, policy: policy.compute, mode: policy.mode })
 */
export function planCompute(input: ComputePlanInput): ComputePlanResult {
  const { target, compute, policy, mode } = input;
  const plan: Plan = { capability: 'compute', target, changes: [], findings: [], skipped: [] };
  if (!compute) {
    plan.skipped.push({ resource: target, reason: 'The compute does not exist (deleted, or never created); nothing to enforce.' });
    return { plan };
  }
  const kind = compute.computeType === CLUSTER ? 'cluster' : compute.computeType === INSTANCE ? 'instance' : undefined;
  if (!kind) {
    plan.skipped.push({ resource: compute.id, reason: `Compute type ${compute.computeType} is attached, not governed (it runs under its own service's identity).` });
    return { plan };
  }
  const prov = (compute.provisioningState ?? '').toLowerCase();
  if (BUILDING.has(prov)) {
    plan.skipped.push({ resource: compute.id, reason: `The compute is still ${prov}; it is judged once it is built.` });
    return { plan, recheck: { why: `still ${prov}` } };
  }
  if (prov === 'deleting') {
    plan.skipped.push({ resource: compute.id, reason: 'The compute is being deleted; nothing to enforce.' });
    return { plan };
  }
  if (prov === 'failed' || prov === 'canceled') {
    plan.skipped.push({ resource: compute.id, reason: `Provisioning ${prov}: the compute does not run; it is judged if it is provisioned again.` });
    return { plan };
  }

  const identity = policy.requireManagedIdentity ? judgeIdentity(compute, policy.identity) : ({ ok: true } as const);
  const auth = policy.requireLocalAuthDisabled ? localAuthProblems(compute) : [];
  if (identity.ok && auth.length === 0) return { plan };

  const exempt = isExempt(compute.tags, policy.exemptTag);
  const remedy: Remedy = kind === 'cluster' ? policy.onViolation.cluster : policy.onViolation.instance;
  const problems = [
    ...(identity.ok ? [] : [identity.reason === 'none' ? 'no managed identity' : 'an identity the policy does not allow']),
    ...(auth.includes('localAuth') ? ['local authentication enabled'] : []),
    ...(auth.includes('publicSsh') ? ['public SSH access enabled'] : []),
  ].join(', ');

  if (
    kind === 'instance' &&
    remedy !== 'alert' &&
    !exempt &&
    INSTANCE_TRANSITIONS.has((compute.state ?? '').toLowerCase())
  ) {
    const st = (compute.state ?? '').toLowerCase();
    plan.skipped.push({ resource: compute.id, reason: `The instance is ${st}; it is judged once it settles.` });
    return { plan, recheck: { why: `instance ${st}` } };
  }

  const change = exempt ? undefined : remedyChange(compute, remedy, identity, policy.identity, problems);
  if (change) plan.changes.push(change);
  if (exempt) {
    plan.skipped.push({ resource: compute.id, reason: `Tagged '${policy.exemptTag}': reported, never changed.` });
  }

  const w = where(compute);
  const configured = `compute.onViolation.${kind} is '${remedy}'`;
  // Worded the same before and after the remedy ran, so the alert does not change (repeat window).
  const remedyAction = (fixable: boolean): string => {
    if (exempt) return `Exempt (tag '${policy.exemptTag}'): Warden changes nothing. Remove the tag to let Warden remediate (${configured}).`;
    if (remedy === 'alert') return `Alert only (${configured}): Warden changes nothing.`;
    if (!fixable) {
      return `This cannot be changed on an existing cluster, and ${configured}: Warden changes nothing. Set compute.onViolation.cluster to 'scale-to-zero' or 'delete' to quarantine such clusters.`;
    }
    return mode === 'report'
      ? `Report mode: Warden would ${remedyText(remedy, kind)} (${configured}); nothing is changed.`
      : `Warden remedies this: ${remedyText(remedy, kind)} (${configured}).`;
  };
  const common = { computeType: compute.computeType, workspaceId: compute.workspaceId, remediation: remedy, exempt };

  if (!identity.ok) {
    const summary =
      identity.reason === 'none'
        ? `${capitalise(w)} runs without a managed identity, so its jobs use stored credentials.`
        : `${capitalise(w)} runs under user-assigned identity ${identity.identities.join(', ')}, which the policy does not allow (it requires ${describeIdentity(policy.identity)}).`;
    const fix =
      kind === 'cluster'
        ? `To fix it yourself: az ml compute update --name ${compute.name} --workspace-name ${parseMlResourceId(compute.id)?.workspace ?? ''} --resource-group ${parseMlResourceId(compute.id)?.resourceGroup ?? ''} ${policy.identity.type === 'SystemAssigned' ? '--identity-type system_assigned' : `--identity-type user_assigned --user-assigned-identities ${policy.identity.id}`}`
        : `An instance's identity is set at creation: recreate it with ${describeIdentity(policy.identity)} (az ml compute create --type ComputeInstance ${policy.identity.type === 'SystemAssigned' ? '--identity-type SystemAssigned' : `--identity-type UserAssigned --user-assigned-identities ${policy.identity.id}`}).`;
    plan.findings.push(
      finding(FINDING_IDENTITY_MISSING, compute.id, exempt, summary, {
        ...common,
        identityType: compute.identity.type,
        userAssignedIdentities: [...compute.identity.userAssignedIdentities].sort(),
        reason: identity.reason,
        requiredIdentity: policy.identity,
      }, [remedyAction(true), fix]),
    );
  }
  if (auth.length > 0) {
    const what = [auth.includes('localAuth') ? 'local authentication (keys)' : '', auth.includes('publicSsh') ? 'public SSH access' : ''].filter(Boolean).join(' and ');
    plan.findings.push(
      finding(FINDING_LOCAL_AUTH_ENABLED, compute.id, exempt, `${capitalise(w)} has ${what} enabled; the policy requires both off.`, {
        ...common,
        disableLocalAuth: compute.disableLocalAuth,
        sshPublicAccess: (kind === 'cluster' ? compute.remoteLoginPortPublicAccess : compute.sshPublicAccess) ?? null,
      }, [
        remedyAction(remedy !== 'assign-identity'),
        `These settings are fixed at creation: recreate the ${kind} with disableLocalAuth true and SSH public access disabled.`,
      ]),
    );
  }
  return { plan };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function finding(type: string, subject: string, exempt: boolean, summary: string, details: Record<string, unknown>, actions: string[]): Finding {
  return { type, subject, severity: exempt ? 'info' : 'warning', summary, details, actions };
}
