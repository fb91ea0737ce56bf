/**
 * The pure RBAC planner: desired role assignments (from resolved bindings) against the actual ones
 * at each resource's own scope → creates, deletes and findings. No I/O, so every rule is tested by
 * table and by property:
 *
 * - Only assignments whose `scope` is the resource itself are Warden's to manage. Inherited ones
 *   (from a resource group or subscription) satisfy nothing and are never touched.
 * - A desired (scope, role, principal) already present at the resource's scope — whoever made it —
 *   is satisfied; otherwise it is created under a deterministic name with `description`
 *   `warden:<binding id>` and `principalType` set.
 * - Deletes: only assignments marked `warden:<id>` that no binding wants (and only with
 *   `prune: managed`), plus those a `forbidden` rule with `action: remove` matches.
 * - An exempt resource is reported (findings, skipped entries), never changed.
 */
import type { Change, Finding } from '../capability';
import type { Compute } from '../ports/ml';
import { roleDefinitionIdFor, roleGuidOf, type PrincipalType, type RoleAssignment, type RoleAssignmentSpec } from '../ports/rbac';
import { uuidV5 } from '../uuid';

const MARK_RE = /^warden:([A-Za-z0-9][A-Za-z0-9._-]{0,62})$/;

/** The binding id a Warden-made assignment carries in its description, or undefined for anyone else's. */
export function markOf(description: string | undefined | null): string | undefined {
  if (!description) return undefined;
  return MARK_RE.exec(description.trim())?.[1];
}

export function markFor(bindingId: string): string {
  return `warden:${bindingId}`;
}

/** Deterministic assignment name: the same (scope, role, principal) always gets the same GUID. */
export function assignmentName(scope: string, roleGuid: string, principalId: string): string {
  return uuidV5(`roleAssignment|${scope.replace(/\/+$/, '').toLowerCase()}|${roleGuid.toLowerCase()}|${principalId.toLowerCase()}`);
}

export type PrincipalsMode = 'group' | 'members';

/**
 * The most principals a `members` binding (or `auto` resolving to members) is expanded to. Azure
 * holds at most 4,000 role assignments per subscription, so a binding of more than 2,000 members
 * cannot be applied in full on two workspaces of a subscription (nor beside anything else on
 * them): per-member expansion of such a group is never what the operator wants, and planning it
 * would hold one change per member in memory (100,000 members ≈ 200 MB). Such a binding plans
 * nothing for its members, keeps its existing assignments (a size guard never removes access) and
 * raises `Warden.Rbac.TooManyMembers`; binding the group itself (`principals: "group"`) is the fix.
 */
export const MAX_MEMBER_PRINCIPALS = 2_000;

/** The finding of a members binding whose group has more enabled members than Warden expands. */
export function tooManyMembersFinding(input: {
  bindingId: string;
  groupId: string;
  /** Principals as listed: at least `limit + 1`. */
  count: number;
  limit: number;
  /** As written in the policy. */
  principals: 'auto' | 'members';
  securityEnabled: boolean;
}): Finding {
  const fix =
    input.principals === 'auto' || !input.securityEnabled
      ? 'Make the group security-enabled and bind it with principals "group" (or "auto")'
      : 'Bind the group itself with principals "group" (it is security-enabled)';
  return {
    type: 'Warden.Rbac.TooManyMembers',
    subject: input.groupId,
    severity: 'warning',
    summary:
      `Binding ${input.bindingId}: group ${input.groupId} has ${input.count} enabled members, more than the ${input.limit} Warden assigns one by one; ` +
      `no assignments are planned for its members and the existing ones are left as they are. ${fix}: one assignment per resource covers every member.`,
    // The count stays out of the details: they decide when an alert is new, and a large group's count changes all the time.
    details: { bindingId: input.bindingId, group: input.groupId, limit: input.limit, principals: input.principals, securityEnabled: input.securityEnabled },
    actions: [
      `${fix}.`,
      `Or split the group into groups of at most ${input.limit} members.`,
    ],
  };
}

export interface BindingPrincipal {
  id: string;
  type: 'User' | 'Group' | 'ServicePrincipal';
}

/** A policy binding with its role, group and principals resolved (the I/O happened before). */
export interface ResolvedBinding {
  id: string;
  groupId: string;
  roleGuid: string;
  roleName: string;
  mode: PrincipalsMode;
  /** `group`: the group itself; `members`: its enabled transitive users and service principals. */
  principals: readonly BindingPrincipal[];
}

export interface DesiredAssignment {
  scope: string;
  roleGuid: string;
  roleName: string;
  principalId: string;
  principalType: PrincipalType;
  bindingId: string;
}

function tripleKey(scope: string, roleGuid: string, principalId: string): string {
  return `${scope.replace(/\/+$/, '').toLowerCase()}|${roleGuid.toLowerCase()}|${principalId.toLowerCase()}`;
}

/**
 * What the bindings want on one resource: one assignment per (role, principal). When two bindings
 * want the same one, the binding with the smallest id names it (deterministic).
 */
export function desiredFor(resourceId: string, bindings: readonly ResolvedBinding[]): DesiredAssignment[] {
  const out = new Map<string, DesiredAssignment>();
  const sorted = [...bindings].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const b of sorted) {
    for (const p of b.principals) {
      const key = tripleKey(resourceId, b.roleGuid, p.id);
      if (out.has(key)) continue;
      out.set(key, { scope: resourceId, roleGuid: b.roleGuid.toLowerCase(), roleName: b.roleName, principalId: p.id, principalType: p.type, bindingId: b.id });
    }
  }
  return [...out.values()];
}

/** A `rbac.forbidden` rule with its role resolved to GUIDs. */
export interface ForbiddenMatcher {
  role: string;
  roleGuids: ReadonlySet<string>;
  principalTypes: readonly string[] | undefined;
  action: 'alert' | 'remove';
}

/** The rule an assignment breaks; `remove` wins over `alert` when several match. */
export function forbiddenRuleFor(
  a: { roleGuid: string; principalType: string | undefined },
  rules: readonly ForbiddenMatcher[],
): ForbiddenMatcher | undefined {
  let found: ForbiddenMatcher | undefined;
  for (const r of rules) {
    if (!r.roleGuids.has(a.roleGuid.toLowerCase())) continue;
    if (r.principalTypes && !r.principalTypes.some((t) => t.toLowerCase() === (a.principalType ?? '').toLowerCase())) continue;
    if (!found || (found.action === 'alert' && r.action === 'remove')) found = r;
  }
  return found;
}

export interface PlanPolicy {
  prune: 'managed' | 'none';
  forbidden: readonly ForbiddenMatcher[];
  /** Lower-case ids of resources carrying the exemption tag. */
  exempt?: ReadonlySet<string>;
  /** Role names by lower-case GUID, for readable descriptions of deletes. */
  roleNames?: ReadonlyMap<string, string>;
  /**
   * Bindings whose desired state is unknown this time (role or group not found): their assignments
   * are neither pruned nor counted as unwanted.
   */
  keepBindings?: ReadonlySet<string>;
}

export interface ActualState {
  /** The resources this plan covers; an assignment is "own" when its scope is one of them. */
  resources: readonly string[];
  /** As listed with `atScope()`: own and inherited. */
  assignments: readonly RoleAssignment[];
}

export interface PlannedCreate {
  spec: RoleAssignmentSpec;
  bindingId: string;
  roleName: string;
}

export interface PlannedDelete {
  assignment: RoleAssignment;
  reason: 'unwanted' | 'forbidden';
  roleName: string;
  /** The Warden binding that made it (for `unwanted`). */
  bindingId?: string;
  /** The forbidden rule's role (for `forbidden`). */
  rule?: string;
}

export interface RbacPlan {
  creates: PlannedCreate[];
  deletes: PlannedDelete[];
  findings: Finding[];
  skipped: Array<{ resource: string; reason: string }>;
}

function subscriptionOf(scope: string): string {
  return /^\/subscriptions\/([^/]+)/i.exec(scope)?.[1] ?? '';
}

export function resourceLabel(id: string): string {
  const parts = id.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] || id;
}

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/**
 * Plans one or more resources. Pure and deterministic: the same input gives the same output, in the
 * same order. Applying the result and planning again yields no creates and no deletes.
 */
export function plan(desired: readonly DesiredAssignment[], actual: ActualState, policy: PlanPolicy): RbacPlan {
  const covered = new Set(actual.resources.map((r) => r.replace(/\/+$/, '').toLowerCase()));
  for (const d of desired) covered.add(d.scope.replace(/\/+$/, '').toLowerCase());
  const exempt = policy.exempt ?? new Set<string>();
  const isExemptScope = (scope: string): boolean => exempt.has(scope.replace(/\/+$/, '').toLowerCase());
  const roleName = (guid: string): string => policy.roleNames?.get(guid) ?? guid;

  const own = actual.assignments.filter((a) => covered.has(a.scope.replace(/\/+$/, '').toLowerCase()));

  const creates: PlannedCreate[] = [];
  const deletes: PlannedDelete[] = [];
  const findings: Finding[] = [];
  const skipped: RbacPlan['skipped'] = [];
  const deleted = new Set<string>();

  for (const a of own) {
    const guid = roleGuidOf(a.roleDefinitionId);
    const rule = forbiddenRuleFor({ roleGuid: guid, principalType: a.principalType }, policy.forbidden);
    if (!rule) continue;
    const ex = isExemptScope(a.scope);
    const remove = rule.action === 'remove' && !ex;
    findings.push({
      type: 'Warden.Rbac.ForbiddenAssignment',
      subject: a.scope,
      severity: 'critical',
      summary: `Forbidden role assignment: '${rule.role}' for ${a.principalType ?? 'principal'} ${a.principalId} on ${resourceLabel(a.scope)}${ex ? ' (resource exempt: left alone)' : ''}`,
      details: {
        assignmentId: a.id,
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType ?? null,
        rule: rule.role,
        action: rule.action,
        managedByWarden: markOf(a.description) !== undefined,
      },
      actions: remove
        ? ['Warden removes this assignment (policy rbac.forbidden action "remove").']
        : ['Remove the assignment, or change rbac.forbidden if it is intended.'],
    });
    if (remove) {
      deletes.push({ assignment: a, reason: 'forbidden', roleName: rule.role, rule: rule.role });
      deleted.add(a.id.toLowerCase());
    }
  }

  // What this plan removes satisfies nothing.
  const present = new Set(own.filter((a) => !deleted.has(a.id.toLowerCase())).map((a) => tripleKey(a.scope, roleGuidOf(a.roleDefinitionId), a.principalId)));
  const wanted = new Set<string>();
  const forbiddenWanted = new Map<string, { scope: string; bindingId: string; rule: string; count: number }>();
  for (const d of desired) {
    const key = tripleKey(d.scope, d.roleGuid, d.principalId);
    const rule = forbiddenRuleFor({ roleGuid: d.roleGuid, principalType: d.principalType }, policy.forbidden);
    if (rule) {
      const fk = `${d.scope.toLowerCase()}|${d.bindingId}`;
      const f = forbiddenWanted.get(fk) ?? { scope: d.scope, bindingId: d.bindingId, rule: rule.role, count: 0 };
      f.count++;
      forbiddenWanted.set(fk, f);
      continue;
    }
    wanted.add(key);
    if (present.has(key)) continue;
    const sub = subscriptionOf(d.scope);
    const spec: RoleAssignmentSpec = {
      scope: d.scope,
      name: assignmentName(d.scope, d.roleGuid, d.principalId),
      roleDefinitionId: roleDefinitionIdFor(sub, d.roleGuid),
      principalId: d.principalId,
      principalType: d.principalType,
      description: markFor(d.bindingId),
    };
    if (isExemptScope(d.scope)) {
      skipped.push({ resource: d.scope, reason: `Exempt resource: would create role assignment '${d.roleName}' for ${d.principalType} ${d.principalId} (binding ${d.bindingId})` });
    } else {
      creates.push({ spec, bindingId: d.bindingId, roleName: d.roleName });
    }
  }
  for (const f of forbiddenWanted.values()) {
    findings.push({
      type: 'Warden.Rbac.ForbiddenBinding',
      subject: f.scope,
      severity: 'warning',
      summary: `Binding ${f.bindingId} would grant '${f.rule}', which rbac.forbidden forbids, to ${f.count} principal(s) on ${resourceLabel(f.scope)}; not granted`,
      details: { bindingId: f.bindingId, rule: f.rule, principals: f.count },
      actions: ['Change the binding or the forbidden rule.'],
    });
  }

  if (policy.prune === 'managed') {
    for (const a of own) {
      if (deleted.has(a.id.toLowerCase())) continue;
      const bindingId = markOf(a.description);
      if (bindingId === undefined || policy.keepBindings?.has(bindingId)) continue;
      const guid = roleGuidOf(a.roleDefinitionId);
      if (wanted.has(tripleKey(a.scope, guid, a.principalId))) continue;
      if (isExemptScope(a.scope)) {
        skipped.push({ resource: a.scope, reason: `Exempt resource: would delete role assignment '${roleName(guid)}' of ${a.principalType ?? 'principal'} ${a.principalId} (binding ${bindingId})` });
        continue;
      }
      deletes.push({ assignment: a, reason: 'unwanted', roleName: roleName(guid), bindingId });
    }
  }

  creates.sort(byKey((c) => `${c.spec.scope.toLowerCase()}|${c.spec.name}`));
  deletes.sort(byKey((d) => `${d.assignment.scope.toLowerCase()}|${d.assignment.name.toLowerCase()}`));
  return { creates, deletes, findings, skipped };
}

/** Compute instance states in which a stop makes sense (anything already stopping or stopped is left). */
const STOPPABLE = new Set(['running', 'jobrunning', 'starting', 'restarting', 'settingup', 'usersettingup', 'resizing', 'idle']);

export interface OffboardingInput {
  workspaceId: string;
  /** A principal that no longer reaches the workspace through any binding. */
  principalId: string;
  principalType: 'User' | 'ServicePrincipal';
  computes: readonly Compute[];
}

export interface PlannedStop {
  workspaceId: string;
  principalId: string;
  principalType: 'User' | 'ServicePrincipal';
  computeId: string;
  computeName: string;
  state: string | undefined;
}

/** Compute instances assigned to principals that lost the workspace: stop them and say so. */
export function planOffboarding(inputs: readonly OffboardingInput[]): { stops: PlannedStop[]; findings: Finding[] } {
  const stops: PlannedStop[] = [];
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const input of inputs) {
    const key = `${input.workspaceId.toLowerCase()}|${input.principalId.toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const mine = input.computes.filter(
      (c) =>
        c.computeType.toLowerCase() === 'computeinstance' &&
        c.assignedUserObjectId?.toLowerCase() === input.principalId.toLowerCase() &&
        STOPPABLE.has((c.state ?? '').toLowerCase()),
    );
    if (mine.length === 0) continue;
    mine.sort(byKey((c) => c.id.toLowerCase()));
    for (const c of mine) {
      stops.push({ workspaceId: input.workspaceId, principalId: input.principalId, principalType: input.principalType, computeId: c.id, computeName: c.name, state: c.state });
    }
    findings.push({
      type: 'Warden.Rbac.PrincipalOffboarded',
      subject: input.workspaceId,
      severity: 'warning',
      summary: `${input.principalId} no longer reaches workspace ${resourceLabel(input.workspaceId)} through any binding; ${mine.length} compute instance(s) assigned to it are stopped`,
      details: { principalId: input.principalId, computeInstances: mine.map((c) => ({ id: c.id, name: c.name, state: c.state ?? null })) },
      actions: mine.map((c) => `Stop compute instance ${c.name}.`),
    });
  }
  return { stops, findings };
}

export const CREATE_ACTION = 'createRoleAssignment';
export const DELETE_ACTION = 'deleteRoleAssignment';
export const STOP_ACTION = 'stopComputeInstance';

/** Turns a planned RBAC result and offboarding stops into the capability's changes (ids deterministic). */
export function toChanges(target: string, p: RbacPlan, stops: readonly PlannedStop[]): Change[] {
  const changes: Change[] = [];
  for (const c of p.creates) {
    const s = c.spec;
    changes.push({
      id: uuidV5(`rbac|${CREATE_ACTION}|${s.scope.toLowerCase()}|${s.name}`),
      capability: 'rbac',
      target,
      action: CREATE_ACTION,
      description: `Create role assignment '${c.roleName}' for ${s.principalType} ${s.principalId} on ${resourceLabel(s.scope)} (binding ${c.bindingId})`,
      resource: s.scope,
      destructive: false,
      data: { ...s, bindingId: c.bindingId, roleName: c.roleName },
    });
  }
  for (const d of p.deletes) {
    const a = d.assignment;
    const why = d.reason === 'forbidden' ? `forbidden by rbac.forbidden '${d.rule ?? d.roleName}'` : `made by binding ${d.bindingId ?? '?'}, which no longer wants it`;
    changes.push({
      id: uuidV5(`rbac|${DELETE_ACTION}|${a.scope.toLowerCase()}|${a.name.toLowerCase()}`),
      capability: 'rbac',
      target,
      action: DELETE_ACTION,
      description: `Delete role assignment '${d.roleName}' of ${a.principalType ?? 'principal'} ${a.principalId} on ${resourceLabel(a.scope)} (${why})`,
      resource: a.scope,
      destructive: true,
      data: {
        scope: a.scope,
        name: a.name,
        id: a.id,
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType ?? null,
        reason: d.reason,
      },
    });
  }
  for (const s of stops) {
    changes.push({
      id: uuidV5(`rbac|${STOP_ACTION}|${s.computeId.toLowerCase()}|${s.principalId.toLowerCase()}`),
      capability: 'rbac',
      target,
      action: STOP_ACTION,
      description: `Stop compute instance ${s.computeName} in ${resourceLabel(s.workspaceId)} (assigned to ${s.principalId}, who no longer reaches the workspace through any binding)`,
      resource: s.computeId,
      destructive: true,
      data: { computeId: s.computeId, workspaceId: s.workspaceId, principalId: s.principalId, principalType: s.principalType, state: s.state ?? null },
    });
  }
  return changes;
}
