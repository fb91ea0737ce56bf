/**
 * RBAC sync as a {@link Capability}: reads the truth through the ports, plans with the pure planner,
 * applies through the ports.
 *
 * Targets:
 * - a resource id (a workspace, or any resource type a binding selects): every binding that matches
 *   it. A compute id stands for its workspace. `listTargets()` returns these (see below).
 * - a group object id: every resource its bindings — and the bindings of bound groups that hold it —
 *   reach; that group's membership is read fresh. Notifications and the delta catch-up queue these.
 * - `delta`: the Graph delta catch-up (queues the group targets whose membership changed).
 *
 * Why the sweep lists resource ids: each resource's role assignments are listed exactly once per
 * sweep (one `atScope()` list each), while roles, groups and member lists are resolved once per
 * process and shared by every reconcile through TTL caches (concurrent reconciles share one load).
 * The sweep's own listing of workspaces (one paged list per scope, with tags) is kept as a snapshot,
 * so a resource's reconcile does not read the resource again. Group ids as sweep targets would list
 * a workspace's assignments once per binding that reaches it, and would never revisit assignments
 * of bindings removed from the policy, nor forbidden ones on workspaces no binding selects.
 *
 * Every plan covers whole resources (all bindings that match them), so a member who loses one
 * binding but still holds another with the same role keeps the assignment.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { emptyPlan, type Capability, type Change, type ChangeOutcome, type Finding, type Plan } from '../capability';
import { mapSettled } from '../concurrency';
import type { CoreDeps } from '../deps';
import { InputError, statusOf } from '../errors';
import type { Logger } from '../logging';
import { WORKSPACE_TYPE, type Binding } from '../policy';
import type { Directory, DirectoryGroup, PrincipalMembership } from '../ports/directory';
import { inScopes, parseMlResourceId, type Compute, type MlResources } from '../ports/ml';
import { GUID_RE, parseResourceId, sameId, type GovernedResource, type ResourceCatalog, type RoleAssignments } from '../ports/rbac';
import type { StateStore } from '../ports/state';
import { failedOutcome } from '../reconcile';
import type { WorkRequest } from '../work/item';
import { TtlCache } from './cache';
import { bindingMatches, isExempt } from './match';
import type { NestingMap } from './nesting';
import {
  CREATE_ACTION,
  DELETE_ACTION,
  STOP_ACTION,
  desiredFor,
  plan as planAssignments,
  planOffboarding,
  toChanges,
  type BindingPrincipal,
  type DesiredAssignment,
  type ForbiddenMatcher,
  type PlannedStop,
  type RbacPlan,
  type ResolvedBinding,
  tooManyMembersFinding,
} from './plan';
import { withRetries, type RetryPolicy } from './retry';
import {
  P_MEMBERS,
  P_OFFBOARD,
  listEntries,
  membersRecordSchema,
  offboardKey,
  offboardRecordSchema,
  readEntry,
  type OffboardRecord,
} from './store';
import { DELTA_TARGET, catchUp, type CatchUpResult } from './delta';

export type Enqueue = (items: WorkRequest[]) => Promise<void>;

export interface RbacTuning {
  /** How long the sweep's listing of resources stands in for reading each resource again. */
  snapshotTtlMs: number;
  /** Member lists shared between reconciles (checked against the last fresh read's fingerprint). */
  membersTtlMs: number;
  groupTtlMs: number;
  roleTtlMs: number;
  nestingTtlMs: number;
  /** The webhook's in-memory copy of the nesting map. */
  nestingMemoryTtlMs: number;
  /** A pending offboarding nobody could settle is dropped after this long. */
  offboardingTtlMs: number;
  retry: RetryPolicy;
  /** Lifetime asked for the Graph subscription (Graph's maximum for groups is 41,760 minutes). */
  subscriptionLifetimeMinutes: number;
  /** Renew the subscription when less than this is left. */
  renewBeforeMs: number;
  /** A `members` binding whose group has more enabled members plans none (default `MAX_MEMBER_PRINCIPALS` in plan.ts). */
  maxMemberPrincipals: number;
}

export interface RbacPorts {
  roleAssignments: RoleAssignments;
  directory: Directory;
  ml: MlResources;
  catalog: ResourceCatalog;
}

export interface EngineDeps {
  core: CoreDeps;
  state: StateStore;
  enqueue: Enqueue;
  ports: RbacPorts;
  tuning: RbacTuning;
  nesting: NestingMap;
}

/** Enabled users and service principals of a group (transitively), and the groups nested in it. */
export interface MemberSet {
  /** Empty when `overLimit`: such a group's members are counted, never kept. */
  principals: BindingPrincipal[];
  /** Enabled principals (past the limit as listed, so at least `limit + 1` when `overLimit`). */
  count: number;
  /** More than `maxMemberPrincipals`: members bindings of this group plan nothing for its members. */
  overLimit: boolean;
  nested: string[];
  /** Order-free digest of the principals, to tell whether a cached list is still current. */
  fingerprint: string;
}

type ParsedTarget = { kind: 'delta' } | { kind: 'group'; id: string } | { kind: 'resource'; id: string; type: string };

const createData = z.object({
  scope: z.string(),
  name: z.string(),
  roleDefinitionId: z.string(),
  principalId: z.string(),
  principalType: z.enum(['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device']),
  description: z.string(),
});
const deleteData = z.object({ scope: z.string(), name: z.string() });
const stopData = z.object({ computeId: z.string(), workspaceId: z.string(), principalId: z.string(), principalType: z.enum(['User', 'ServicePrincipal']) });

/** Per-plan memo: each group, member list, membership and compute list is read at most once per plan. */
class Session {
  readonly groups = new Map<string, Promise<DirectoryGroup | undefined>>();
  readonly members = new Map<string, Promise<MemberSet>>();
  readonly bindings = new Map<string, Promise<BindingResolution>>();
  readonly forbidden = new Map<string, Promise<ForbiddenMatcher[]>>();
  readonly memberships = new Map<string, Promise<PrincipalMembership>>();
  fingerprints: Promise<Map<string, string>> | undefined;
  offboard: Promise<Array<{ key: string; value: OffboardRecord }>> | undefined;
  constructor(readonly fresh: ReadonlySet<string>) {}
}

/**
 * A binding resolved for planning, or one whose desired state is not planned this time: its
 * assignments are kept as they are. `reachGroup`: a group whose members may still hold access through
 * it (they are not offboarded while they are in that group).
 */
type BindingResolution = { ok: true; binding: ResolvedBinding } | { ok: false; finding: Finding; reachGroup?: string };

function memo<K, V>(map: Map<K, Promise<V>>, key: K, load: () => Promise<V>): Promise<V> {
  let p = map.get(key);
  if (!p) {
    p = load();
    map.set(key, p);
  }
  return p;
}

/** Order-free digest of ids, built as they stream past: XOR of their MD5s, and their number. */
class Fingerprint {
  private readonly acc = Buffer.alloc(16);
  private n = 0;

  add(id: string): void {
    const h = createHash('md5').update(id).digest();
    for (let i = 0; i < 16; i++) this.acc[i] = (this.acc[i] as number) ^ (h[i] as number);
    this.n++;
  }

  toString(): string {
    return `${this.n}:${this.acc.toString('hex')}`;
  }
}

/** Rethrows the first failure of a settled batch (the whole plan fails and the work pipeline retries it). */
function throwFirstRejection(results: ReadonlyArray<PromiseSettledResult<unknown>>): void {
  const r = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (r) throw r.reason;
}

function fulfilled<T>(results: ReadonlyArray<PromiseSettledResult<T>>): T[] {
  return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

export class RbacEngine implements Capability {
  readonly name = 'rbac' as const;
  private readonly log: Logger;
  private readonly now = (): number => this.d.core.clock.now().getTime();
  private readonly snapshots: TtlCache<string, GovernedResource[]>;
  private readonly roles: TtlCache<string, { guid: string; name: string } | undefined>;
  private readonly groupCache: TtlCache<string, DirectoryGroup | undefined>;
  private readonly memberCache: TtlCache<string, MemberSet>;

  constructor(private readonly d: EngineDeps) {
    this.log = d.core.logger.child({ capability: 'rbac' });
    const t = d.tuning;
    this.snapshots = new TtlCache(t.snapshotTtlMs, this.now);
    this.roles = new TtlCache(t.roleTtlMs, this.now);
    this.groupCache = new TtlCache(t.groupTtlMs, this.now);
    this.memberCache = new TtlCache(t.membersTtlMs, this.now);
  }

  private get policy(): CoreDeps['policy'] {
    return this.d.core.policy;
  }

  /** Bound group ids, lower case, sorted. */
  boundGroups(): string[] {
    return [...new Set(this.policy.rbac.bindings.map((b) => b.group.toLowerCase()))].sort();
  }

  /** Resource types Warden governs: workspaces always (forbidden rules, pruning), plus any a binding selects. */
  private governedTypes(): string[] {
    const out = new Map<string, string>([[WORKSPACE_TYPE.toLowerCase(), WORKSPACE_TYPE]]);
    for (const b of this.policy.rbac.bindings) out.set(b.resourceType.toLowerCase(), b.resourceType);
    return [...out.values()];
  }

  // ------------------------------------------------------------------ targets

  parseTarget(target: string): string {
    const p = this.parse(target);
    return p.kind === 'delta' ? DELTA_TARGET : p.id;
  }

  private parse(target: string): ParsedTarget {
    const t = target.trim();
    if (t.toLowerCase() === DELTA_TARGET) return { kind: 'delta' };
    if (GUID_RE.test(t)) return { kind: 'group', id: t.toLowerCase() };
    const ml = parseMlResourceId(t);
    if (ml) return { kind: 'resource', id: ml.workspaceId, type: WORKSPACE_TYPE };
    const r = parseResourceId(t);
    if (r) return { kind: 'resource', id: t.replace(/\/+$/, ''), type: r.type };
    throw new InputError('InvalidTarget', 'An rbac target is a resource id, a group object id (GUID) or "delta".');
  }

  inScope(target: string): boolean {
    const p = this.parse(target);
    // A group's reach is decided by the bindings; the plan finds none for an unbound, un-nested group.
    if (p.kind !== 'resource') return true;
    return inScopes(p.id, this.policy.scopes);
  }

  async listTargets(): Promise<string[]> {
    const resources = await this.allResources(this.governedTypes(), true);
    const ids = resources.map((r) => r.id).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    return this.policy.rbac.bindings.length > 0 ? [...ids, DELTA_TARGET] : ids;
  }

  // ------------------------------------------------------------------ resources

  private async listScope(scope: string, type: string, force: boolean): Promise<GovernedResource[]> {
    return this.snapshots.load(
      `${scope.toLowerCase()}|${type.toLowerCase()}`,
      async () => {
        try {
          return await this.d.ports.catalog.listResources(scope, type);
        } catch (err) {
          if (statusOf(err) === 404) {
            this.log.warn('A policy scope does not exist; nothing to govern there', { scope, resourceType: type });
            return [];
          }
          throw err;
        }
      },
      force,
    );
  }

  /** Every governed resource of these types in the policy's scopes (deduplicated; scopes may overlap). */
  private async allResources(types: readonly string[], force: boolean): Promise<GovernedResource[]> {
    const jobs = this.policy.scopes.flatMap((scope) => types.map((type) => ({ scope, type })));
    const results = await mapSettled(jobs, this.d.core.settings.concurrency, (j) => this.listScope(j.scope, j.type, force));
    throwFirstRejection(results);
    const byId = new Map<string, GovernedResource>();
    for (const list of fulfilled(results)) for (const r of list) if (inScopes(r.id, this.policy.scopes)) byId.set(r.id.toLowerCase(), r);
    return [...byId.values()];
  }

  /** A resource from a fresh snapshot of the sweep's listing, else read on its own. */
  private async findResource(id: string, type: string): Promise<GovernedResource | undefined> {
    for (const scope of this.policy.scopes) {
      if (!inScopes(id, [scope])) continue;
      const snap = this.snapshots.peek(`${scope.toLowerCase()}|${type.toLowerCase()}`);
      if (!snap) continue;
      const list = await snap.catch(() => undefined);
      const hit = list?.find((r) => sameId(r.id, id));
      if (hit) return hit;
    }
    return this.d.ports.catalog.getResource(id, type);
  }

  /** Workspaces reached by the bindings of these bound groups (for offboarding records of the catch-up). */
  async workspacesReachedBy(groups: ReadonlySet<string>): Promise<GovernedResource[]> {
    const bindings = this.policy.rbac.bindings.filter((b) => groups.has(b.group.toLowerCase()) && b.resourceType.toLowerCase() === WORKSPACE_TYPE.toLowerCase());
    if (bindings.length === 0) return [];
    const all = await this.allResources([WORKSPACE_TYPE], false);
    return all.filter((r) => bindings.some((b) => bindingMatches(b, r)));
  }

  // ------------------------------------------------------------------ resolution

  private async resolveRole(subscriptionId: string, ref: string): Promise<{ guid: string; name: string } | undefined> {
    return this.roles.load(`${subscriptionId.toLowerCase()}|${ref.toLowerCase()}`, async () => {
      const scope = `/subscriptions/${subscriptionId}`;
      if (GUID_RE.test(ref)) {
        const def = await this.d.ports.roleAssignments.getRoleDefinition(scope, ref.toLowerCase());
        return def ? { guid: def.guid, name: def.roleName || ref } : undefined;
      }
      const defs = (await this.d.ports.roleAssignments.findRoleDefinitions(scope, ref)).filter((r) => r.roleName.toLowerCase() === ref.toLowerCase());
      const pick = defs.find((r) => (r.roleType ?? '').toLowerCase() === 'builtinrole') ?? defs[0];
      return pick ? { guid: pick.guid, name: pick.roleName } : undefined;
    });
  }

  private getGroup(s: Session, id: string): Promise<DirectoryGroup | undefined> {
    return memo(s.groups, id, () => this.groupCache.load(id, () => this.d.ports.directory.getGroup(id), s.fresh.has(id)));
  }

  /**
   * Streams a group's transitive members. Pages are consumed as they arrive: only ids and types are
   * kept, never a page's raw objects, and past `maxMemberPrincipals` nothing more is kept at all (the
   * rest is only counted and folded into the fingerprint), so a huge group costs no more memory than
   * the limit. Graph lists each member once; duplicates are dropped up to the limit.
   */
  private async expandMembers(groupId: string): Promise<MemberSet> {
    const limit = this.d.tuning.maxMemberPrincipals;
    const seen = new Set<string>();
    let principals: BindingPrincipal[] = [];
    const nested = new Set<string>();
    const fingerprint = new Fingerprint();
    let count = 0;
    let pages = 0;
    for await (const page of this.d.ports.directory.transitiveMembers(groupId)) {
      pages++;
      for (const m of page) {
        if (m.type === 'Group') nested.add(m.id);
        else if ((m.type === 'User' || m.type === 'ServicePrincipal') && m.accountEnabled !== false && !seen.has(m.id)) {
          count++;
          fingerprint.add(m.id);
          if (count <= limit) {
            seen.add(m.id);
            principals.push({ id: m.id, type: m.type });
          } else if (principals.length > 0) {
            seen.clear();
            principals = [];
          }
        }
      }
    }
    const overLimit = count > limit;
    this.log.debug('Expanded group members', { group: groupId, principals: count, overLimit, nestedGroups: nested.size, pages });
    return { principals, count, overLimit, nested: [...nested].sort(), fingerprint: fingerprint.toString() };
  }

  private async loadMembers(groupId: string, force: boolean): Promise<MemberSet> {
    return this.memberCache.load(
      groupId,
      async () => {
        const m = await this.expandMembers(groupId);
        const stored = await readEntry(this.d.state, P_MEMBERS, groupId, membersRecordSchema);
        if (stored?.value.fingerprint !== m.fingerprint) {
          await this.d.state.put(P_MEMBERS, groupId, { fingerprint: m.fingerprint, count: m.count, updatedAt: this.d.core.clock.now().toISOString() });
        }
        await this.d.nesting.note(groupId, m.nested, this.boundGroups()).catch((err: unknown) => {
          this.log.warn('Could not update the group nesting map', { group: groupId, error: err });
        });
        return m;
      },
      force,
    );
  }

  /**
   * Members of a bound group: read fresh when the plan is about this group; otherwise shared from
   * the process cache while its fingerprint equals the one stored by the last fresh read anywhere
   * (so another instance's newer read invalidates this instance's copy).
   */
  private members(s: Session, groupId: string): Promise<MemberSet> {
    return memo(s.members, groupId, async () => {
      if (s.fresh.has(groupId)) return this.loadMembers(groupId, true);
      const hit = this.memberCache.peek(groupId);
      const cached = hit ? await hit.catch(() => undefined) : undefined;
      if (!cached) return this.loadMembers(groupId, false);
      s.fingerprints ??= listEntries(this.d.state, P_MEMBERS, membersRecordSchema).then((es) => new Map(es.map((e) => [e.key, e.value.fingerprint])));
      const stored = (await s.fingerprints).get(groupId);
      return stored === undefined || stored === cached.fingerprint ? cached : this.loadMembers(groupId, true);
    });
  }

  private resolveBinding(s: Session, subscriptionId: string, b: Binding): Promise<BindingResolution> {
    return memo(s.bindings, `${subscriptionId.toLowerCase()}|${b.id}`, async (): Promise<BindingResolution> => {
      const groupId = b.group.toLowerCase();
      const [role, group] = await Promise.all([this.resolveRole(subscriptionId, b.role), this.getGroup(s, groupId)]);
      if (!role) {
        return {
          ok: false,
          finding: {
            type: 'Warden.Rbac.RoleNotFound',
            subject: groupId,
            severity: 'critical',
            summary: `Binding ${b.id}: role '${b.role}' does not exist in subscription ${subscriptionId}; its assignments are left as they are`,
            details: { bindingId: b.id, role: b.role, subscriptionId },
            actions: ['Fix the role name or GUID in rbac.bindings.'],
          },
        };
      }
      if (!group) {
        return {
          ok: false,
          finding: {
            type: 'Warden.Rbac.GroupNotFound',
            subject: groupId,
            severity: 'critical',
            summary: `Binding ${b.id}: group ${groupId} does not exist; its assignments are left as they are`,
            details: { bindingId: b.id, group: groupId },
            actions: ['Restore the group or remove the binding from the policy.'],
          },
        };
      }
      const mode = b.principals === 'auto' ? (group.securityEnabled ? 'group' : 'members') : b.principals;
      if (mode === 'group') {
        return { ok: true, binding: { id: b.id, groupId, roleGuid: role.guid, roleName: role.name, mode, principals: [{ id: groupId, type: 'Group' }] } };
      }
      const members = await this.members(s, groupId);
      if (members.overLimit) {
        const limit = this.d.tuning.maxMemberPrincipals;
        const principals = b.principals === 'auto' ? 'auto' : 'members';
        const finding = tooManyMembersFinding({ bindingId: b.id, groupId, count: members.count, limit, principals, securityEnabled: group.securityEnabled });
        return { ok: false, finding, reachGroup: groupId };
      }
      return { ok: true, binding: { id: b.id, groupId, roleGuid: role.guid, roleName: role.name, mode, principals: members.principals } };
    });
  }

  private forbiddenFor(s: Session, subscriptionId: string): Promise<ForbiddenMatcher[]> {
    return memo(s.forbidden, subscriptionId.toLowerCase(), async () => {
      const out: ForbiddenMatcher[] = [];
      for (const rule of this.policy.rbac.forbidden) {
        const role = await this.resolveRole(subscriptionId, rule.role);
        if (!role) {
          this.log.warn('A forbidden rule names a role that does not exist; it matches nothing', { role: rule.role, subscriptionId });
          continue;
        }
        out.push({ role: rule.role, roleGuids: new Set([role.guid]), principalTypes: rule.principalTypes, action: rule.action });
      }
      return out;
    });
  }

  // ------------------------------------------------------------------ plan

  async plan(target: string): Promise<Plan> {
    const t = this.parse(target);
    const id = t.kind === 'delta' ? DELTA_TARGET : t.id;
    const log = this.log.child({ target: id });
    if (t.kind === 'delta') {
      await this.catchUp(log);
      return emptyPlan('rbac', DELTA_TARGET);
    }
    if (t.kind === 'resource') {
      if (!this.governedTypes().some((g) => g.toLowerCase() === t.type.toLowerCase())) {
        return { ...emptyPlan('rbac', id), skipped: [{ resource: id, reason: `No binding selects resources of type ${t.type}` }] };
      }
      const resource = await this.findResource(id, t.type);
      if (!resource) return { ...emptyPlan('rbac', id), skipped: [{ resource: id, reason: 'The resource does not exist (any more)' }] };
      return this.planResources(new Session(new Set()), [resource], id, log);
    }
    return this.planGroup(t.id, log);
  }

  private async planGroup(groupId: string, log: Logger): Promise<Plan> {
    const bound = new Set(this.boundGroups());
    const holders = (await this.d.ports.directory.groupMemberOf(groupId)).filter((g) => bound.has(g));
    const relevant = new Set([...(bound.has(groupId) ? [groupId] : []), ...holders]);
    if (relevant.size === 0) {
      log.info('The group is neither bound nor nested in a bound group; nothing to do');
      return { ...emptyPlan('rbac', groupId), skipped: [{ resource: groupId, reason: 'The group is neither bound nor nested in a bound group' }] };
    }
    const bindings = this.policy.rbac.bindings.filter((b) => relevant.has(b.group.toLowerCase()));
    const types = [...new Set(bindings.map((b) => b.resourceType))];
    const resources = (await this.allResources(types, false)).filter((r) => bindings.some((b) => bindingMatches(b, r)));
    log.info(`Group reaches ${resources.length} resource(s) through ${bindings.length} binding(s)`, { boundGroups: [...relevant], resources: resources.length });
    return this.planResources(new Session(relevant), resources, groupId, log);
  }

  private async planResources(s: Session, resources: readonly GovernedResource[], target: string, log: Logger): Promise<Plan> {
    const results = await mapSettled(resources, this.d.core.settings.concurrency, (r) => this.planResource(s, r, log));
    throwFirstRejection(results);
    const out = emptyPlan('rbac', target);
    const seenFindings = new Set<string>();
    for (const r of fulfilled(results)) {
      out.changes.push(...toChanges(target, r.rbac, r.stops));
      out.skipped.push(...r.rbac.skipped, ...r.skipped);
      for (const f of [...r.resolution, ...r.rbac.findings, ...r.offboarding]) {
        const key = `${f.type}|${f.subject.toLowerCase()}|${JSON.stringify(f.details)}`;
        if (seenFindings.has(key)) continue;
        seenFindings.add(key);
        out.findings.push(f);
      }
    }
    return out;
  }

  private async planResource(
    s: Session,
    r: GovernedResource,
    log: Logger,
  ): Promise<{ rbac: RbacPlan; stops: PlannedStop[]; resolution: Finding[]; offboarding: Finding[]; skipped: Plan['skipped'] }> {
    const matching = this.policy.rbac.bindings.filter((b) => bindingMatches(b, r));
    const [resolutions, forbidden, assignments] = await Promise.all([
      Promise.all(matching.map((b) => this.resolveBinding(s, r.subscriptionId, b))),
      this.forbiddenFor(s, r.subscriptionId),
      this.d.ports.roleAssignments.listForResource(r.id),
    ]);
    const resolved: ResolvedBinding[] = [];
    const resolution: Finding[] = [];
    const keep = new Set<string>();
    const reachGroups: string[] = [];
    resolutions.forEach((res, i) => {
      if (res.ok) resolved.push(res.binding);
      else {
        resolution.push(res.finding);
        keep.add(matching[i]?.id ?? '');
        if (res.reachGroup) reachGroups.push(res.reachGroup);
      }
    });
    // Bindings that are in the policy but not resolvable anywhere, or not planned (too many members),
    // keep their assignments; bindings that select nothing here are simply not wanted here (their
    // assignments are pruned).
    const exempt = isExempt(r, this.policy.compute.exemptTag);
    const desired = desiredFor(r.id, resolved);
    const roleNames = new Map<string, string>([...resolved.map((b) => [b.roleGuid, b.roleName] as const), ...forbidden.flatMap((f) => [...f.roleGuids].map((g) => [g, f.role] as const))]);
    const rbac = planAssignments(desired, { resources: [r.id], assignments }, {
      prune: this.policy.rbac.prune,
      forbidden,
      exempt: exempt ? new Set([r.id.toLowerCase()]) : new Set<string>(),
      roleNames,
      keepBindings: keep,
    });
    const off = await this.planOffboardingFor(s, r, rbac, desired, resolved, reachGroups, exempt, log);
    return { rbac, stops: off.stops, resolution, offboarding: off.findings, skipped: off.skipped };
  }

  private membership(s: Session, principalId: string, type: 'User' | 'ServicePrincipal'): Promise<PrincipalMembership> {
    return memo(s.memberships, principalId, () => this.d.ports.directory.membershipOf(principalId, type));
  }

  /**
   * Principals that may have lost this workspace: those whose Warden-made assignment is being
   * removed, and those the delta catch-up saw leave a watched group (pending records). One that no
   * longer reaches the workspace through any binding has its running compute instances stopped.
   */
  private async planOffboardingFor(
    s: Session,
    r: GovernedResource,
    rbac: RbacPlan,
    desired: readonly DesiredAssignment[],
    resolved: readonly ResolvedBinding[],
    reachGroups: readonly string[],
    exempt: boolean,
    log: Logger,
  ): Promise<{ stops: PlannedStop[]; findings: Finding[]; skipped: Plan['skipped'] }> {
    const none = { stops: [], findings: [], skipped: [] };
    if (r.type.toLowerCase() !== WORKSPACE_TYPE.toLowerCase()) return none;
    const wanted = new Set(desired.map((d) => d.principalId.toLowerCase()));
    const candidates = new Map<string, { type: 'User' | 'ServicePrincipal'; recordKey?: string }>();
    for (const d of rbac.deletes) {
      const a = d.assignment;
      const pid = a.principalId.toLowerCase();
      if (d.reason !== 'unwanted' || wanted.has(pid)) continue;
      if (a.principalType === 'User' || a.principalType === 'ServicePrincipal') candidates.set(pid, { type: a.principalType });
    }
    s.offboard ??= listEntries(this.d.state, P_OFFBOARD, offboardRecordSchema);
    const now = this.now();
    for (const rec of await s.offboard) {
      if (!sameId(rec.value.workspaceId, r.id)) continue;
      if (now - Date.parse(rec.value.since) > this.d.tuning.offboardingTtlMs) {
        await this.d.state.delete(P_OFFBOARD, rec.key);
        continue;
      }
      const pid = rec.value.principalId.toLowerCase();
      candidates.set(pid, { type: rec.value.principalType, recordKey: rec.key });
    }
    if (candidates.size === 0) return none;

    // Members of a group bound as a whole, or of a members binding left as it is (too many members to
    // plan), still reach the workspace.
    const viaGroups = [...resolved.filter((b) => b.mode === 'group').map((b) => b.groupId), ...reachGroups];
    const gone: Array<{ id: string; type: 'User' | 'ServicePrincipal' }> = [];
    for (const [pid, c] of candidates) {
      let reaches = wanted.has(pid);
      if (!reaches && viaGroups.length > 0) {
        const m = await this.membership(s, pid, c.type);
        reaches = m.exists && m.accountEnabled && m.groups.some((g) => viaGroups.includes(g));
      }
      if (!reaches) gone.push({ id: pid, type: c.type });
    }
    let computes: Compute[] = [];
    if (gone.length > 0) computes = await this.d.ports.ml.listComputes(r.id);
    const { stops, findings } = planOffboarding(gone.map((g) => ({ workspaceId: r.id, principalId: g.id, principalType: g.type, computes })));
    // A pending record that needs nothing (still reaches, or nothing running) is settled now.
    const stopping = new Set(stops.map((x) => x.principalId));
    for (const [pid, c] of candidates) {
      if (c.recordKey && !stopping.has(pid)) await this.d.state.delete(P_OFFBOARD, c.recordKey);
    }
    if (gone.length > 0) log.info(`${gone.length} principal(s) no longer reach the workspace; ${stops.length} compute instance(s) to stop`, { workspace: r.id });
    if (exempt) {
      return { stops: [], findings, skipped: stops.map((x) => ({ resource: x.computeId, reason: `Exempt workspace: would stop compute instance ${x.computeName} of ${x.principalId}` })) };
    }
    return { stops, findings, skipped: [] };
  }

  // ------------------------------------------------------------------ apply

  async apply(plan: Plan): Promise<ChangeOutcome[]> {
    const log = this.log.child({ target: plan.target });
    const conc = this.d.core.settings.concurrency;
    const onRetry = (change: Change) => (e: { reason: string; attempt: number; waitMs: number }) =>
      log.warn(e.reason === 'principalNotFound' ? 'The principal is not yet known to ARM; retrying' : 'Throttled; retrying after the requested wait', {
        changeId: change.id,
        resource: change.resource,
        attempt: e.attempt,
        waitMs: e.waitMs,
      });

    const stops = plan.changes.filter((c) => c.action === STOP_ACTION);
    // Remember who is being offboarded before their assignment goes, so a failed stop is retried
    // by the next reconcile even though the assignment that revealed it is gone.
    const pending = new Map<string, OffboardRecord>();
    for (const c of stops) {
      const d = stopData.safeParse(c.data);
      if (!d.success) continue;
      pending.set(offboardKey(d.data.workspaceId, d.data.principalId), {
        workspaceId: d.data.workspaceId,
        principalId: d.data.principalId,
        principalType: d.data.principalType,
        reason: 'lost every binding to the workspace',
        since: this.d.core.clock.now().toISOString(),
      });
    }
    for (const [key, rec] of pending) await this.d.state.put(P_OFFBOARD, key, rec);

    const run = async (change: Change): Promise<ChangeOutcome> => {
      try {
        switch (change.action) {
          case CREATE_ACTION: {
            const spec = createData.parse(change.data);
            const res = await withRetries(() => this.d.ports.roleAssignments.create(spec), this.d.tuning.retry, onRetry(change));
            return res === 'created' ? { change, outcome: 'applied', result: 'created' } : { change, outcome: 'unchanged', result: 'exists' };
          }
          case DELETE_ACTION: {
            const { scope, name } = deleteData.parse(change.data);
            const res = await withRetries(() => this.d.ports.roleAssignments.delete(scope, name), this.d.tuning.retry, onRetry(change));
            return res === 'deleted' ? { change, outcome: 'applied', result: 'deleted' } : { change, outcome: 'unchanged', result: 'absent' };
          }
          case STOP_ACTION: {
            const { computeId } = stopData.parse(change.data);
            await withRetries(() => this.d.ports.ml.stopCompute(computeId), this.d.tuning.retry, onRetry(change));
            return { change, outcome: 'applied', result: 'stopped' };
          }
          default:
            return { change, outcome: 'skipped', result: `unknown action ${change.action}` };
        }
      } catch (err) {
        return failedOutcome(change, err);
      }
    };

    // Deletes before creates: a forbidden assignment removed and re-granted under Warden's name must
    // be gone before its replacement is made (ARM refuses a second one for the same triple).
    const byId = new Map<string, ChangeOutcome>();
    for (const action of [DELETE_ACTION, CREATE_ACTION, STOP_ACTION]) {
      const batch = plan.changes.filter((c) => c.action === action);
      for (const r of await mapSettled(batch, conc, run)) if (r.status === 'fulfilled') byId.set(r.value.change.id, r.value);
    }
    const others = plan.changes.filter((c) => ![DELETE_ACTION, CREATE_ACTION, STOP_ACTION].includes(c.action));
    for (const r of await mapSettled(others, conc, run)) if (r.status === 'fulfilled') byId.set(r.value.change.id, r.value);

    // Settle the offboarding records whose every stop succeeded.
    const failedKeys = new Set<string>();
    for (const c of stops) {
      const d = stopData.safeParse(c.data);
      if (d.success && byId.get(c.id)?.outcome === 'failed') failedKeys.add(offboardKey(d.data.workspaceId, d.data.principalId));
    }
    for (const key of pending.keys()) if (!failedKeys.has(key)) await this.d.state.delete(P_OFFBOARD, key);

    return plan.changes.map((c) => byId.get(c.id) ?? { change: c, outcome: 'failed', error: { code: 'Unknown', message: 'The change was not run', retryable: true } });
  }

  // ------------------------------------------------------------------ delta

  /**
   * Groups nested in a bound group. A members-mode group's expansion already lists them, and the
   * reconciles of the same run share it; a group-mode group asks Graph for its nested groups only.
   */
  private async nestedOf(groupId: string): Promise<string[]> {
    const bindings = this.policy.rbac.bindings.filter((b) => b.group.toLowerCase() === groupId);
    let members = bindings.some((b) => b.principals === 'members');
    if (!members && bindings.some((b) => b.principals === 'auto')) {
      const group = await this.groupCache.load(groupId, () => this.d.ports.directory.getGroup(groupId));
      members = group !== undefined && !group.securityEnabled;
    }
    if (!members) return this.d.ports.directory.nestedGroups(groupId);
    const hit = this.memberCache.peek(groupId);
    const cached = hit ? await hit.catch(() => undefined) : undefined;
    return (cached ?? (await this.loadMembers(groupId, false))).nested;
  }

  /** The Graph delta catch-up over the bound groups and the groups nested in them. */
  catchUp(log: Logger = this.log): Promise<CatchUpResult> {
    return catchUp({
      directory: this.d.ports.directory,
      state: this.d.state,
      clock: this.d.core.clock,
      enqueue: this.d.enqueue,
      nesting: this.d.nesting,
      bound: this.boundGroups(),
      workspacesReachedBy: (groups) => this.workspacesReachedBy(groups),
      nestedOf: (group) => this.nestedOf(group),
      invalidate: (groups) => {
        for (const g of groups) this.memberCache.delete(g);
      },
      log,
    });
  }
}
