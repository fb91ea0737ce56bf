/**
 * In-memory {@link RoleAssignments}, {@link Directory} and {@link ResourceCatalog} for unit tests of
 * RBAC use cases (and anyone else's). They behave like the services where Warden depends on it:
 * `409 RoleAssignmentExists` for the same (scope, role, principal) under another name, idempotent
 * re-PUT of the same name, `PrincipalNotFound` for principals made "not yet replicated", delta
 * tokens over a change log, subscriptions that expire. Every call is recorded in `calls`.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import type { MlResources, Workspace } from '../ports/ml';
import { WORKSPACE_TYPE } from '../policy';
import {
  DeltaExpiredError,
  type Directory,
  type DirectoryMember,
  type DirectoryObjectType,
  type GraphSubscription,
  type GroupDeltaChange,
  type NewGraphSubscription,
  type PrincipalMembership,
} from '../ports/directory';
import { inScopes } from '../ports/ml';
import {
  roleGuidOf,
  sameId,
  type GovernedResource,
  type ResourceCatalog,
  type RoleAssignment,
  type RoleAssignments,
  type RoleAssignmentSpec,
  type RoleDefinition,
} from '../ports/rbac';

/** An error shaped like the SDKs' (statusCode + code), so `classifyError` and the retries see the real thing. */
export function serviceError(statusCode: number, code: string, message = code, headers?: Record<string, string>): Error {
  const err = Object.assign(new Error(message), { statusCode, code });
  if (headers) Object.assign(err, { response: { headers: new Headers(headers) } });
  return err;
}

const BUILT_IN: RoleDefinition[] = [
  { id: '/providers/Microsoft.Authorization/roleDefinitions/f6c7c914-8db3-469d-8ca1-694a8f32e121', guid: 'f6c7c914-8db3-469d-8ca1-694a8f32e121', roleName: 'AzureML Data Scientist', roleType: 'BuiltInRole' },
  { id: '/providers/Microsoft.Authorization/roleDefinitions/e503ece1-11d0-4e8e-8e2c-7a6c3bf38815', guid: 'e503ece1-11d0-4e8e-8e2c-7a6c3bf38815', roleName: 'AzureML Compute Operator', roleType: 'BuiltInRole' },
  { id: '/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7', guid: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', roleName: 'Reader', roleType: 'BuiltInRole' },
  { id: '/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c', guid: 'b24988ac-6180-42a0-ab88-20f7382dd24c', roleName: 'Contributor', roleType: 'BuiltInRole' },
  { id: '/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635', guid: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', roleName: 'Owner', roleType: 'BuiltInRole' },
];

export class MemoryRoleAssignments implements RoleAssignments {
  readonly assignments = new Map<string, RoleAssignment>();
  readonly definitions: RoleDefinition[] = [...BUILT_IN];
  readonly calls: string[] = [];
  /** Principals ARM does not know yet: each create for them fails with PrincipalNotFound this many more times. */
  readonly notReplicated = new Map<string, number>();
  /** Fails the next N calls of an operation (`create`, `delete`, `list`) with this error. */
  private readonly faults: Array<{ op: string; times: number; error: () => Error }> = [];

  fail(op: 'create' | 'delete' | 'list', times: number, error: () => Error): void {
    this.faults.push({ op, times, error });
  }

  private maybeFail(op: string): void {
    const f = this.faults.find((x) => x.op === op && x.times > 0);
    if (!f) return;
    f.times--;
    throw f.error();
  }

  /** Adds an assignment as someone else would (a portal user, a pipeline). */
  seed(a: Omit<RoleAssignment, 'id' | 'name' | 'condition' | 'description'> & { name?: string; description?: string }): RoleAssignment {
    const name = a.name ?? randomUUID();
    const ra: RoleAssignment = {
      id: `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
      name,
      scope: a.scope,
      roleDefinitionId: a.roleDefinitionId,
      principalId: a.principalId,
      principalType: a.principalType,
      description: a.description,
      condition: undefined,
    };
    this.assignments.set(name.toLowerCase(), ra);
    return ra;
  }

  at(scope: string): RoleAssignment[] {
    return [...this.assignments.values()].filter((a) => sameId(a.scope, scope));
  }

  writes(): string[] {
    return this.calls.filter((c) => c.startsWith('create ') || c.startsWith('delete '));
  }

  async listForResource(resourceId: string): Promise<RoleAssignment[]> {
    this.calls.push(`list ${resourceId}`);
    this.maybeFail('list');
    const id = resourceId.toLowerCase();
    return [...this.assignments.values()].filter((a) => {
      const s = a.scope.replace(/\/+$/, '').toLowerCase();
      return s === id || id.startsWith(`${s}/`);
    }).map((a) => ({ ...a }));
  }

  async create(spec: RoleAssignmentSpec): Promise<'created' | 'exists'> {
    this.calls.push(`create ${spec.scope} ${spec.principalId}`);
    this.maybeFail('create');
    const left = this.notReplicated.get(spec.principalId.toLowerCase()) ?? 0;
    if (left > 0) {
      this.notReplicated.set(spec.principalId.toLowerCase(), left - 1);
      throw serviceError(400, 'PrincipalNotFound', `Principal ${spec.principalId.replace(/-/g, '')} does not exist in the directory.`);
    }
    const existing = this.assignments.get(spec.name.toLowerCase());
    const guid = roleGuidOf(spec.roleDefinitionId);
    if (existing) {
      if (sameId(existing.scope, spec.scope) && roleGuidOf(existing.roleDefinitionId) === guid && existing.principalId.toLowerCase() === spec.principalId.toLowerCase()) return 'exists';
      throw serviceError(400, 'RoleAssignmentUpdateNotPermitted');
    }
    const dup = this.at(spec.scope).find((a) => roleGuidOf(a.roleDefinitionId) === guid && a.principalId.toLowerCase() === spec.principalId.toLowerCase());
    // ARM answers 409 RoleAssignmentExists; the port's contract turns that into "exists".
    if (dup) return 'exists';
    this.seed({ ...spec });
    return 'created';
  }

  async delete(scope: string, name: string): Promise<'deleted' | 'absent'> {
    this.calls.push(`delete ${scope} ${name}`);
    this.maybeFail('delete');
    const a = this.assignments.get(name.toLowerCase());
    if (!a || !sameId(a.scope, scope)) return 'absent';
    this.assignments.delete(name.toLowerCase());
    return 'deleted';
  }

  async findRoleDefinitions(scope: string, roleName: string): Promise<RoleDefinition[]> {
    this.calls.push(`findRole ${roleName}`);
    return this.definitions.filter((d) => d.roleName.toLowerCase() === roleName.toLowerCase());
  }

  async getRoleDefinition(scope: string, guid: string): Promise<RoleDefinition | undefined> {
    this.calls.push(`getRole ${guid}`);
    return this.definitions.find((d) => d.guid === guid.toLowerCase());
  }
}

interface MemGroup {
  id: string;
  displayName: string;
  securityEnabled: boolean;
  members: Set<string>;
}

interface MemPrincipal {
  id: string;
  type: 'User' | 'ServicePrincipal';
  accountEnabled: boolean;
}

type ChangeEntry = { seq: number; groupId: string; memberId?: string; removed: boolean; deleted?: boolean };

export class MemoryDirectory implements Directory {
  readonly groups = new Map<string, MemGroup>();
  readonly principals = new Map<string, MemPrincipal>();
  readonly subscriptions = new Map<string, GraphSubscription & { clientState: string }>();
  readonly calls: string[] = [];
  /** Members per page of `transitiveMembers` (small, so tests see paging). */
  pageSize = 2;
  private seq = 0;
  private epoch = 1;
  private readonly log: ChangeEntry[] = [];

  constructor(private readonly clock: Clock = systemClock) {}

  addUser(id: string, accountEnabled = true): this {
    this.principals.set(id.toLowerCase(), { id: id.toLowerCase(), type: 'User', accountEnabled });
    return this;
  }
  addServicePrincipal(id: string, accountEnabled = true): this {
    this.principals.set(id.toLowerCase(), { id: id.toLowerCase(), type: 'ServicePrincipal', accountEnabled });
    return this;
  }
  addGroup(id: string, opts: { securityEnabled?: boolean; members?: string[]; displayName?: string } = {}): this {
    this.groups.set(id.toLowerCase(), {
      id: id.toLowerCase(),
      displayName: opts.displayName ?? id,
      securityEnabled: opts.securityEnabled ?? true,
      members: new Set((opts.members ?? []).map((m) => m.toLowerCase())),
    });
    return this;
  }
  addMember(groupId: string, memberId: string): void {
    this.group(groupId).members.add(memberId.toLowerCase());
    this.log.push({ seq: ++this.seq, groupId: groupId.toLowerCase(), memberId: memberId.toLowerCase(), removed: false });
  }
  removeMember(groupId: string, memberId: string): void {
    this.group(groupId).members.delete(memberId.toLowerCase());
    this.log.push({ seq: ++this.seq, groupId: groupId.toLowerCase(), memberId: memberId.toLowerCase(), removed: true });
  }
  setAccountEnabled(id: string, enabled: boolean): void {
    const p = this.principals.get(id.toLowerCase());
    if (p) p.accountEnabled = enabled;
  }
  /** Invalidates every delta token issued so far. */
  resetDeltaTokens(): void {
    this.epoch++;
  }
  /** Removes a subscription silently (as Graph does when it drops one). */
  dropSubscription(id: string): void {
    this.subscriptions.delete(id);
  }

  private group(id: string): MemGroup {
    const g = this.groups.get(id.toLowerCase());
    if (!g) throw serviceError(404, 'Request_ResourceNotFound');
    return g;
  }

  private typeOf(id: string): DirectoryObjectType {
    if (this.groups.has(id)) return 'Group';
    return this.principals.get(id)?.type ?? 'Other';
  }

  /** Transitive members, each once, nested groups included (cycles tolerated). */
  transitiveIds(groupId: string): string[] {
    const out = new Set<string>();
    const walk = (g: string, seen: Set<string>): void => {
      if (seen.has(g)) return;
      seen.add(g);
      for (const m of this.group(g).members) {
        out.add(m);
        if (this.groups.has(m)) walk(m, seen);
      }
    };
    walk(groupId.toLowerCase(), new Set());
    out.delete(groupId.toLowerCase());
    return [...out];
  }

  private containing(id: string): string[] {
    return [...this.groups.values()].filter((g) => this.transitiveIds(g.id).includes(id.toLowerCase())).map((g) => g.id);
  }

  async getGroup(id: string) {
    this.calls.push(`getGroup ${id}`);
    const g = this.groups.get(id.toLowerCase());
    return g ? { id: g.id, displayName: g.displayName, securityEnabled: g.securityEnabled, mailEnabled: !g.securityEnabled } : undefined;
  }

  async *transitiveMembers(groupId: string): AsyncGenerator<DirectoryMember[]> {
    const ids = this.transitiveIds(groupId);
    for (let i = 0; i < ids.length || i === 0; i += this.pageSize) {
      this.calls.push(`transitiveMembers ${groupId} page ${i / this.pageSize + 1}`);
      yield ids.slice(i, i + this.pageSize).map((id) => ({ id, type: this.typeOf(id), accountEnabled: this.principals.get(id)?.accountEnabled }));
      if (ids.length === 0) break;
    }
  }

  async nestedGroups(groupId: string): Promise<string[]> {
    this.calls.push(`nestedGroups ${groupId}`);
    return this.transitiveIds(groupId).filter((id) => this.groups.has(id));
  }

  async membershipOf(principalId: string): Promise<PrincipalMembership> {
    this.calls.push(`membershipOf ${principalId}`);
    const p = this.principals.get(principalId.toLowerCase());
    if (!p) return { id: principalId.toLowerCase(), exists: false, accountEnabled: false, groups: [] };
    return { id: p.id, exists: true, accountEnabled: p.accountEnabled, groups: this.containing(p.id) };
  }

  async groupMemberOf(groupId: string): Promise<string[]> {
    this.calls.push(`groupMemberOf ${groupId}`);
    return this.containing(groupId);
  }

  private link(seq: number, ids: readonly string[]): string {
    return `memory:delta?epoch=${this.epoch}&seq=${seq}&ids=${ids.join(',')}`;
  }

  async *groupsDelta(deltaLink: string): AsyncGenerator<{ changes: GroupDeltaChange[]; deltaLink: string | undefined }> {
    this.calls.push('groupsDelta');
    const q = new URLSearchParams(deltaLink.slice(deltaLink.indexOf('?') + 1));
    if (Number(q.get('epoch')) !== this.epoch) throw new DeltaExpiredError();
    const since = Number(q.get('seq'));
    const ids = (q.get('ids') ?? '').split(',').filter(Boolean);
    const byGroup = new Map<string, GroupDeltaChange>();
    for (const e of this.log) {
      if (e.seq <= since || !ids.includes(e.groupId)) continue;
      const c = byGroup.get(e.groupId) ?? { groupId: e.groupId, removed: false, members: [] };
      if (e.memberId) c.members.push({ id: e.memberId, type: this.typeOf(e.memberId) === 'Other' ? 'User' : this.typeOf(e.memberId), removed: e.removed });
      byGroup.set(e.groupId, c);
    }
    yield { changes: [...byGroup.values()], deltaLink: this.link(this.seq, ids) };
  }

  async latestGroupsDeltaLink(groupIds: readonly string[]): Promise<string> {
    this.calls.push('latestGroupsDeltaLink');
    return this.link(this.seq, groupIds);
  }

  async createSubscription(spec: NewGraphSubscription): Promise<GraphSubscription> {
    this.calls.push('createSubscription');
    const sub = { id: randomUUID(), resource: spec.resource, changeType: spec.changeType, notificationUrl: spec.notificationUrl, lifecycleNotificationUrl: spec.lifecycleNotificationUrl, expirationDateTime: spec.expirationDateTime, clientState: spec.clientState };
    this.subscriptions.set(sub.id, sub);
    return { ...sub };
  }

  private live(id: string): (GraphSubscription & { clientState: string }) | undefined {
    const s = this.subscriptions.get(id);
    if (s && Date.parse(s.expirationDateTime) <= this.clock.now().getTime()) {
      this.subscriptions.delete(id);
      return undefined;
    }
    return s;
  }

  async getSubscription(id: string): Promise<GraphSubscription | undefined> {
    this.calls.push(`getSubscription ${id}`);
    const s = this.live(id);
    return s ? { ...s } : undefined;
  }

  async renewSubscription(id: string, expirationDateTime: string): Promise<GraphSubscription | undefined> {
    this.calls.push(`renewSubscription ${id}`);
    const s = this.live(id);
    if (!s) return undefined;
    s.expirationDateTime = expirationDateTime;
    return { ...s };
  }

  async deleteSubscription(id: string): Promise<void> {
    this.calls.push(`deleteSubscription ${id}`);
    this.subscriptions.delete(id);
  }

  async reauthorizeSubscription(id: string): Promise<boolean> {
    this.calls.push(`reauthorizeSubscription ${id}`);
    return this.live(id) !== undefined;
  }
}

/** A catalog over an in-memory ML port: workspaces only. */
export function memoryCatalog(ml: MlResources): ResourceCatalog {
  const toResource = (w: Workspace): GovernedResource => ({ id: w.id, name: w.name, type: WORKSPACE_TYPE, subscriptionId: w.subscriptionId, resourceGroup: w.resourceGroup, tags: { ...w.tags } });
  return {
    async listResources(scope, type) {
      if (type.toLowerCase() !== WORKSPACE_TYPE.toLowerCase()) return [];
      return (await ml.listWorkspaces(scope)).filter((w) => inScopes(w.id, [scope])).map(toResource);
    },
    async getResource(id, type) {
      if (type.toLowerCase() !== WORKSPACE_TYPE.toLowerCase()) return undefined;
      const w = await ml.getWorkspace(id);
      return w ? toResource(w) : undefined;
    },
  };
}
