/**
 * The emulated Entra ID directory behind the Graph routes.
 *
 * The tenant file's `directory` section (validated by `directorySectionSchema`):
 *
 * ```jsonc
 * {
 *   "callerAppId": "…",            // optional: the appId Graph attributes subscriptions to (Warden's app);
 *                                  // Event Grid partner events use source `/tenants/{tenantId}/applications/{callerAppId}`
 *   "users": [{ "id", "displayName", "userPrincipalName", "mail"?, "accountEnabled"? (true), "userType"? ("Member") }],
 *   "servicePrincipals": [{ "id", "appId", "displayName", "accountEnabled"? (true) }],
 *   "groups": [{
 *     "id", "displayName", "description"?, "securityEnabled"? (true), "mailEnabled"? (false),
 *     "members"?: ["<user, service principal or group id>", …],      // nesting allowed, cycles tolerated
 *     "generatedMembers"?: { "idPrefix": "aaaaaaaa-0000-4000-8000-", "count": 100000,
 *                            "displayNamePrefix"?: "Member", "upnPrefix"?: "member", "domain"?: "contoso.example" }
 *   }],
 *   "applications": [{
 *     "id" (object id), "appId", "displayName", "owners"?: [ids],
 *     "passwordCredentials"?: [{ "keyId", "displayName"?, "startDateTime", "endDateTime", "hint"?, "secretText"? }],
 *     "keyCredentials"?: [{ "keyId", "displayName"?, "startDateTime", "endDateTime", "type", "usage" }]
 *   }]
 * }
 * ```
 *
 * `generatedMembers` describes up to millions of users without storing them: user `i` has the id
 * `idPrefix + i` in 12 hex digits (a well-formed GUID), so a 100,000-member group costs a few bytes.
 * Seeded `secretText`s are kept for the control surface only; no read ever returns them (as Graph).
 */
import { z } from 'zod';

const isoDate = z.string().refine((v) => !Number.isNaN(Date.parse(v)), { message: 'expected an ISO 8601 date-time' });
const GUID_PREFIX = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-$/i;

export const userSeedSchema = z.strictObject({
  id: z.string().min(1),
  displayName: z.string(),
  userPrincipalName: z.string().min(1),
  mail: z.string().nullable().optional(),
  accountEnabled: z.boolean().default(true),
  userType: z.enum(['Member', 'Guest']).default('Member'),
});

export const servicePrincipalSeedSchema = z.strictObject({
  id: z.string().min(1),
  appId: z.string().min(1),
  displayName: z.string(),
  accountEnabled: z.boolean().default(true),
});

export const generatedMembersSchema = z.strictObject({
  idPrefix: z.string().regex(GUID_PREFIX, 'idPrefix must be the first 24 characters of a GUID, ending with "-"'),
  count: z.number().int().min(0).max(16 ** 12 - 1),
  displayNamePrefix: z.string().default('Generated user'),
  upnPrefix: z.string().default('user'),
  domain: z.string().default('contoso.example'),
});

export const groupSeedSchema = z.strictObject({
  id: z.string().min(1),
  displayName: z.string(),
  description: z.string().nullable().optional(),
  securityEnabled: z.boolean().default(true),
  mailEnabled: z.boolean().default(false),
  members: z.array(z.string().min(1)).default([]),
  generatedMembers: generatedMembersSchema.optional(),
});

export const passwordCredentialSeedSchema = z.strictObject({
  keyId: z.string().min(1),
  displayName: z.string().nullable().optional(),
  startDateTime: isoDate,
  endDateTime: isoDate,
  hint: z.string().nullable().optional(),
  secretText: z.string().optional(),
});

export const keyCredentialSeedSchema = z.strictObject({
  keyId: z.string().min(1),
  displayName: z.string().nullable().optional(),
  startDateTime: isoDate,
  endDateTime: isoDate,
  type: z.enum(['AsymmetricX509Cert', 'Symmetric', 'X509CertAndPassword']).default('AsymmetricX509Cert'),
  usage: z.enum(['Verify', 'Sign']).default('Verify'),
});

export const applicationSeedSchema = z.strictObject({
  id: z.string().min(1),
  appId: z.string().min(1),
  displayName: z.string(),
  owners: z.array(z.string().min(1)).default([]),
  passwordCredentials: z.array(passwordCredentialSeedSchema).default([]),
  keyCredentials: z.array(keyCredentialSeedSchema).default([]),
});

export const directorySectionSchema = z.strictObject({
  callerAppId: z.string().min(1).optional(),
  users: z.array(userSeedSchema).default([]),
  servicePrincipals: z.array(servicePrincipalSeedSchema).default([]),
  groups: z.array(groupSeedSchema).default([]),
  applications: z.array(applicationSeedSchema).default([]),
});

export type UserSeed = z.input<typeof userSeedSchema>;
export type ServicePrincipalSeed = z.input<typeof servicePrincipalSeedSchema>;
export type GroupSeed = z.input<typeof groupSeedSchema>;
export type ApplicationSeed = z.input<typeof applicationSeedSchema>;
export type DirectorySection = z.output<typeof directorySectionSchema>;

export type PrincipalType = 'User' | 'Group' | 'ServicePrincipal';

export interface User {
  id: string;
  displayName: string;
  userPrincipalName: string;
  mail: string | null;
  accountEnabled: boolean;
  userType: 'Member' | 'Guest';
  createdDateTime: string;
}

export interface ServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  accountEnabled: boolean;
  createdDateTime: string;
}

export interface UserRange {
  idPrefix: string;
  count: number;
  displayNamePrefix: string;
  upnPrefix: string;
  domain: string;
}

export interface Group {
  id: string;
  displayName: string;
  description: string | null;
  securityEnabled: boolean;
  mailEnabled: boolean;
  createdDateTime: string;
  /** Explicit members in insertion order, keyed by lower-case id. */
  members: Map<string, string>;
  /** Generated members: every index of the range except the removed ones. */
  ranges: Array<{ range: UserRange; removed: Set<number> }>;
}

export interface PasswordCredential {
  keyId: string;
  displayName: string | null;
  startDateTime: string;
  endDateTime: string;
  hint: string | null;
  /** Kept for the control surface only; never returned by a read. */
  secretText?: string;
}

export interface KeyCredential {
  keyId: string;
  displayName: string | null;
  startDateTime: string;
  endDateTime: string;
  type: string;
  usage: string;
}

export interface Application {
  id: string;
  appId: string;
  displayName: string;
  createdDateTime: string;
  owners: string[];
  passwordCredentials: PasswordCredential[];
  keyCredentials: KeyCredential[];
}

export type DirectoryObject =
  | { type: 'User'; value: User }
  | { type: 'Group'; value: Group }
  | { type: 'ServicePrincipal'; value: ServicePrincipal };

/** One entry of the change log that delta queries and their tokens are built on. */
export type ChangeEntry =
  | { seq: number; kind: 'group'; id: string; what: 'created' | 'updated' | 'deleted' }
  | { seq: number; kind: 'member'; id: string; memberId: string; op: 'add' | 'remove' }
  | { seq: number; kind: 'app'; id: string; what: 'created' | 'updated' | 'deleted' };

/** What subscribers (change notifications) hear about. */
export type DirectoryChange =
  | {
      resource: 'group';
      id: string;
      changeType: 'updated' | 'deleted';
      membersDelta?: Array<{ id: string; removed: boolean }>;
      seq: number;
    }
  | { resource: 'user'; id: string; changeType: 'updated' | 'deleted'; seq: number };

/**
 * A group's (transitive) members flattened for paging: explicit ids first, then generated ranges.
 * Positions are "raw": `at(pos)` is undefined for a generated index that is excluded, so a page
 * walks positions and skips holes without ever materialising the whole list.
 */
export interface FlatMembers {
  readonly size: number;
  at(pos: number): string | undefined;
}

class Flat implements FlatMembers {
  readonly size: number;
  constructor(
    private readonly explicit: string[],
    private readonly ranges: Array<{ range: UserRange; excluded: Set<number> }>,
  ) {
    this.size = explicit.length + ranges.reduce((n, r) => n + r.range.count, 0);
  }

  at(pos: number): string | undefined {
    if (pos < this.explicit.length) return this.explicit[pos];
    let p = pos - this.explicit.length;
    for (const r of this.ranges) {
      if (p < r.range.count) return r.excluded.has(p) ? undefined : generatedId(r.range, p);
      p -= r.range.count;
    }
    return undefined;
  }
}

export function generatedId(range: UserRange, index: number): string {
  return range.idPrefix + index.toString(16).padStart(12, '0');
}

export class DirectoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryError';
  }
}

/**
 * Users, service principals, groups and applications, plus the change log that delta tokens point
 * into. Every mutation goes through a method here, so the log and the notification listeners always
 * see it.
 */
export class Directory {
  readonly users = new Map<string, User>();
  readonly servicePrincipals = new Map<string, ServicePrincipal>();
  readonly groups = new Map<string, Group>();
  readonly applications = new Map<string, Application>();
  private readonly ranges = new Map<string, UserRange>();
  private readonly log: ChangeEntry[] = [];
  private seqCounter = 0;
  private version = 0;
  private readonly flatCache = new Map<string, { version: number; flat: FlatMembers }>();
  private readonly listeners: Array<(c: DirectoryChange) => void> = [];

  constructor(private readonly now: () => number) {}

  get seq(): number {
    return this.seqCounter;
  }

  onChange(listener: (c: DirectoryChange) => void): void {
    this.listeners.push(listener);
  }

  load(section: DirectorySection): void {
    const iso = this.iso();
    const ids = new Set<string>();
    for (const o of [...section.users, ...section.servicePrincipals, ...section.groups]) {
      const key = o.id.toLowerCase();
      if (ids.has(key)) throw new DirectoryError(`Directory object id ${o.id} is used more than once.`);
      ids.add(key);
    }
    for (const u of section.users) this.users.set(u.id.toLowerCase(), { ...u, mail: u.mail ?? null, createdDateTime: iso });
    for (const sp of section.servicePrincipals) this.servicePrincipals.set(sp.id.toLowerCase(), { ...sp, createdDateTime: iso });
    for (const g of section.groups) {
      const group: Group = {
        id: g.id,
        displayName: g.displayName,
        description: g.description ?? null,
        securityEnabled: g.securityEnabled,
        mailEnabled: g.mailEnabled,
        createdDateTime: iso,
        members: new Map(),
        ranges: [],
      };
      if (g.generatedMembers) group.ranges.push({ range: this.registerRange(g.generatedMembers), removed: new Set() });
      this.groups.set(g.id.toLowerCase(), group);
    }
    // Members are resolved after every object exists, so seeds may reference groups declared later.
    for (const g of section.groups) {
      const group = this.groups.get(g.id.toLowerCase());
      for (const m of g.members) {
        const found = this.lookup(m);
        if (!found) throw new DirectoryError(`Group ${g.id}: member ${m} is not a user, service principal or group of the directory.`);
        group?.members.set(found.value.id.toLowerCase(), found.value.id);
      }
    }
    for (const a of section.applications) {
      for (const o of a.owners) {
        if (!this.lookup(o)) throw new DirectoryError(`Application ${a.id}: owner ${o} is not in the directory.`);
      }
      this.applications.set(a.id.toLowerCase(), {
        id: a.id,
        appId: a.appId,
        displayName: a.displayName,
        createdDateTime: iso,
        owners: [...a.owners],
        passwordCredentials: a.passwordCredentials.map((p) => ({
          keyId: p.keyId,
          displayName: p.displayName ?? null,
          startDateTime: p.startDateTime,
          endDateTime: p.endDateTime,
          hint: p.hint ?? p.secretText?.slice(0, 3) ?? null,
          ...(p.secretText !== undefined ? { secretText: p.secretText } : {}),
        })),
        keyCredentials: a.keyCredentials.map((k) => ({ ...k, displayName: k.displayName ?? null })),
      });
    }
    this.version++;
  }

  // ---- lookups ----

  /** Any directory object by id (case-insensitive), generated users included. */
  lookup(id: string): DirectoryObject | undefined {
    const key = id.toLowerCase();
    const u = this.users.get(key);
    if (u) return { type: 'User', value: u };
    const g = this.groups.get(key);
    if (g) return { type: 'Group', value: g };
    const sp = this.servicePrincipals.get(key);
    if (sp) return { type: 'ServicePrincipal', value: sp };
    const gen = this.generatedUser(key);
    return gen ? { type: 'User', value: gen } : undefined;
  }

  /** A user by object id or user principal name. */
  user(idOrUpn: string): User | undefined {
    const found = this.lookup(idOrUpn);
    if (found?.type === 'User') return found.value;
    const upn = idOrUpn.toLowerCase();
    for (const u of this.users.values()) if (u.userPrincipalName.toLowerCase() === upn) return u;
    const m = /^(.*?)([0-9]+)@(.+)$/.exec(upn);
    if (!m) return undefined;
    for (const r of this.ranges.values()) {
      if (r.upnPrefix.toLowerCase() === m[1] && r.domain.toLowerCase() === m[3]) {
        const idx = Number(m[2]);
        if (idx < r.count) return this.user(generatedId(r, idx));
      }
    }
    return undefined;
  }

  group(id: string): Group | undefined {
    return this.groups.get(id.toLowerCase());
  }

  servicePrincipal(id: string): ServicePrincipal | undefined {
    return this.servicePrincipals.get(id.toLowerCase());
  }

  application(objectId: string): Application | undefined {
    return this.applications.get(objectId.toLowerCase());
  }

  applicationByAppId(appId: string): Application | undefined {
    const key = appId.toLowerCase();
    for (const a of this.applications.values()) if (a.appId.toLowerCase() === key) return a;
    return undefined;
  }

  /** Object id or appId. */
  applicationByRef(ref: string): Application | undefined {
    return this.application(ref) ?? this.applicationByAppId(ref);
  }

  private generatedUser(key: string): User | undefined {
    if (key.length !== 36) return undefined;
    const range = this.ranges.get(key.slice(0, 24));
    if (!range) return undefined;
    const idx = parseInt(key.slice(24), 16);
    if (!Number.isInteger(idx) || idx >= range.count || !/^[0-9a-f]{12}$/.test(key.slice(24))) return undefined;
    const upn = `${range.upnPrefix}${idx}@${range.domain}`;
    return {
      id: key,
      displayName: `${range.displayNamePrefix} ${idx}`,
      userPrincipalName: upn,
      mail: upn,
      accountEnabled: true,
      userType: 'Member',
      createdDateTime: new Date(0).toISOString(),
    };
  }

  private registerRange(input: z.input<typeof generatedMembersSchema>): UserRange {
    const r = generatedMembersSchema.parse(input);
    const key = r.idPrefix.toLowerCase();
    const existing = this.ranges.get(key);
    if (existing) {
      if (existing.count !== r.count) throw new DirectoryError(`Generated range ${r.idPrefix} is already registered with another count.`);
      return existing;
    }
    const range: UserRange = { ...r, idPrefix: key };
    this.ranges.set(key, range);
    return range;
  }

  /** The range and index of a generated user id, if it is one. */
  private rangeIndex(id: string): { range: UserRange; index: number } | undefined {
    const key = id.toLowerCase();
    if (key.length !== 36) return undefined;
    const range = this.ranges.get(key.slice(0, 24));
    if (!range) return undefined;
    const index = parseInt(key.slice(24), 16);
    return index < range.count ? { range, index } : undefined;
  }

  // ---- membership ----

  /** Direct membership test (explicit or generated). */
  isDirectMember(group: Group, id: string): boolean {
    const key = id.toLowerCase();
    if (group.members.has(key)) return true;
    const ri = this.rangeIndex(key);
    return !!ri && group.ranges.some((r) => r.range === ri.range && !r.removed.has(ri.index));
  }

  directMembers(groupId: string): FlatMembers | undefined {
    const g = this.group(groupId);
    if (!g) return undefined;
    return new Flat([...g.members.values()], g.ranges.map((r) => ({ range: r.range, excluded: r.removed })));
  }

  /** Users, service principals and groups reachable through nesting, each once, the root excluded. */
  transitiveMembers(groupId: string): FlatMembers | undefined {
    const root = this.group(groupId);
    if (!root) return undefined;
    const cached = this.flatCache.get(root.id.toLowerCase());
    if (cached && cached.version === this.version) return cached.flat;
    const seen = new Set<string>([root.id.toLowerCase()]);
    const explicit: string[] = [];
    const ranges = new Map<UserRange, Set<number>>();
    const queue: Group[] = [root];
    for (let i = 0; i < queue.length; i++) {
      const g = queue[i];
      if (!g) continue;
      for (const [key, m] of g.members) {
        if (seen.has(key)) continue;
        seen.add(key);
        explicit.push(m);
        const nested = this.group(key);
        if (nested) queue.push(nested);
      }
      for (const r of g.ranges) {
        const excluded = ranges.get(r.range);
        // An index is a member when any group includes it: the exclusions intersect.
        if (!excluded) ranges.set(r.range, new Set(r.removed));
        else for (const idx of [...excluded]) if (!r.removed.has(idx)) excluded.delete(idx);
      }
    }
    const rangeList = [...ranges].map(([range, excluded]) => ({ range, excluded }));
    const deduped = explicit.filter((id) => {
      const ri = this.rangeIndex(id);
      return !ri || !rangeList.some((r) => r.range === ri.range && !r.excluded.has(ri.index));
    });
    const flat = new Flat(deduped, rangeList);
    this.flatCache.set(root.id.toLowerCase(), { version: this.version, flat });
    return flat;
  }

  /** Every user id, stored users first, then generated ones (materialised overrides not repeated). */
  allUserIds(): FlatMembers {
    const explicit = [...this.users.values()].map((u) => u.id);
    const ranges = [...this.ranges.values()].map((range) => {
      const excluded = new Set<number>();
      for (const id of explicit) {
        const ri = this.rangeIndex(id);
        if (ri?.range === range) excluded.add(ri.index);
      }
      return { range, excluded };
    });
    return new Flat(explicit, ranges);
  }

  /** Groups that contain the object directly or through nesting. */
  transitiveMemberOf(id: string): Group[] {
    const out: Group[] = [];
    const seen = new Set<string>([id.toLowerCase()]);
    let frontier = [id];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const g of this.groups.values()) {
        const key = g.id.toLowerCase();
        if (seen.has(key)) continue;
        if (frontier.some((m) => this.isDirectMember(g, m))) {
          seen.add(key);
          out.push(g);
          next.push(g.id);
        }
      }
      frontier = next;
    }
    return out;
  }

  // ---- mutations ----

  addUser(seed: UserSeed): User {
    const u = userSeedSchema.parse(seed);
    if (this.lookup(u.id)) throw new DirectoryError(`Object ${u.id} already exists.`);
    const user: User = { ...u, mail: u.mail ?? null, createdDateTime: this.iso() };
    this.users.set(u.id.toLowerCase(), user);
    this.emit({ resource: 'user', id: user.id, changeType: 'updated', seq: this.nextSeq() });
    return user;
  }

  addServicePrincipal(seed: ServicePrincipalSeed): ServicePrincipal {
    const s = servicePrincipalSeedSchema.parse(seed);
    if (this.lookup(s.id)) throw new DirectoryError(`Object ${s.id} already exists.`);
    const sp: ServicePrincipal = { ...s, createdDateTime: this.iso() };
    this.servicePrincipals.set(s.id.toLowerCase(), sp);
    return sp;
  }

  addGroup(seed: GroupSeed): Group {
    const s = groupSeedSchema.parse(seed);
    if (this.lookup(s.id)) throw new DirectoryError(`Object ${s.id} already exists.`);
    const members = s.members.map((m) => {
      const found = this.lookup(m);
      if (!found) throw new DirectoryError(`Member ${m} is not in the directory.`);
      return found.value.id;
    });
    const group: Group = {
      id: s.id,
      displayName: s.displayName,
      description: s.description ?? null,
      securityEnabled: s.securityEnabled,
      mailEnabled: s.mailEnabled,
      createdDateTime: this.iso(),
      members: new Map(members.map((m) => [m.toLowerCase(), m])),
      ranges: s.generatedMembers ? [{ range: this.registerRange(s.generatedMembers), removed: new Set() }] : [],
    };
    this.groups.set(s.id.toLowerCase(), group);
    this.version++;
    const seq = this.record({ kind: 'group', id: group.id, what: 'created' });
    this.emit({ resource: 'group', id: group.id, changeType: 'updated', seq });
    return group;
  }

  updateGroup(id: string, patch: { displayName?: string; description?: string | null }): Group {
    const g = this.requireGroup(id);
    if (patch.displayName !== undefined) g.displayName = patch.displayName;
    if (patch.description !== undefined) g.description = patch.description;
    const seq = this.record({ kind: 'group', id: g.id, what: 'updated' });
    this.emit({ resource: 'group', id: g.id, changeType: 'updated', seq });
    return g;
  }

  deleteGroup(id: string): void {
    const g = this.requireGroup(id);
    this.groups.delete(g.id.toLowerCase());
    for (const other of this.groups.values()) {
      if (other.members.has(g.id.toLowerCase())) this.removeMember(other.id, g.id);
    }
    this.version++;
    const seq = this.record({ kind: 'group', id: g.id, what: 'deleted' });
    this.emit({ resource: 'group', id: g.id, changeType: 'deleted', seq });
  }

  /** Returns false when the object already was a direct member (Graph answers 400 then; the control is lenient). */
  addMember(groupId: string, memberId: string): boolean {
    const g = this.requireGroup(groupId);
    const found = this.lookup(memberId);
    if (!found) throw new DirectoryError(`Member ${memberId} is not in the directory.`);
    const id = found.value.id;
    if (id.toLowerCase() === g.id.toLowerCase()) throw new DirectoryError('A group cannot be a member of itself.');
    if (this.isDirectMember(g, id)) return false;
    const ri = this.rangeIndex(id);
    const slot = ri && g.ranges.find((r) => r.range === ri.range);
    if (slot && ri) slot.removed.delete(ri.index);
    else g.members.set(id.toLowerCase(), id);
    this.memberChanged(g, id, 'add');
    return true;
  }

  /** Returns false when the object was not a direct member. */
  removeMember(groupId: string, memberId: string): boolean {
    const g = this.requireGroup(groupId);
    if (!this.isDirectMember(g, memberId)) return false;
    const key = memberId.toLowerCase();
    let removedId = memberId;
    const explicit = g.members.get(key);
    if (explicit !== undefined) {
      g.members.delete(key);
      removedId = explicit;
    }
    const ri = this.rangeIndex(key);
    if (ri) {
      const slot = g.ranges.find((r) => r.range === ri.range);
      if (slot) {
        slot.removed.add(ri.index);
        removedId = key;
      }
    }
    this.memberChanged(g, removedId, 'remove');
    return true;
  }

  setAccountEnabled(id: string, enabled: boolean): void {
    const found = this.lookup(id);
    if (!found || found.type === 'Group') throw new DirectoryError(`${id} is not a user or service principal.`);
    if (found.type === 'ServicePrincipal') {
      found.value.accountEnabled = enabled;
      return;
    }
    // A generated user becomes a stored one so the override sticks.
    const user = this.users.get(found.value.id.toLowerCase()) ?? { ...found.value };
    user.accountEnabled = enabled;
    this.users.set(user.id.toLowerCase(), user);
    this.emit({ resource: 'user', id: user.id, changeType: 'updated', seq: this.nextSeq() });
  }

  addApplication(seed: ApplicationSeed): Application {
    const a = applicationSeedSchema.parse(seed);
    if (this.application(a.id) || this.applicationByAppId(a.appId)) throw new DirectoryError(`Application ${a.id} / ${a.appId} already exists.`);
    const app: Application = {
      id: a.id,
      appId: a.appId,
      displayName: a.displayName,
      createdDateTime: this.iso(),
      owners: [...a.owners],
      passwordCredentials: a.passwordCredentials.map((p) => ({
        keyId: p.keyId,
        displayName: p.displayName ?? null,
        startDateTime: p.startDateTime,
        endDateTime: p.endDateTime,
        hint: p.hint ?? p.secretText?.slice(0, 3) ?? null,
        ...(p.secretText !== undefined ? { secretText: p.secretText } : {}),
      })),
      keyCredentials: a.keyCredentials.map((k) => ({ ...k, displayName: k.displayName ?? null })),
    };
    this.applications.set(a.id.toLowerCase(), app);
    this.record({ kind: 'app', id: app.id, what: 'created' });
    return app;
  }

  /** Records that an application changed (credentials, owners) for application delta queries. */
  applicationChanged(app: Application): void {
    this.record({ kind: 'app', id: app.id, what: 'updated' });
  }

  deleteApplication(ref: string): void {
    const app = this.applicationByRef(ref);
    if (!app) throw new DirectoryError(`Application ${ref} is not in the directory.`);
    this.applications.delete(app.id.toLowerCase());
    this.record({ kind: 'app', id: app.id, what: 'deleted' });
  }

  // ---- change log ----

  /** Log entries with `from < seq <= to`, oldest first. */
  changesBetween(from: number, to: number): ChangeEntry[] {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.log[mid]?.seq ?? 0) <= from) lo = mid + 1;
      else hi = mid;
    }
    const out: ChangeEntry[] = [];
    for (let i = lo; i < this.log.length; i++) {
      const e = this.log[i];
      if (!e || e.seq > to) break;
      out.push(e);
    }
    return out;
  }

  private memberChanged(g: Group, memberId: string, op: 'add' | 'remove'): void {
    this.version++;
    const seq = this.record({ kind: 'member', id: g.id, memberId, op });
    this.emit({ resource: 'group', id: g.id, changeType: 'updated', membersDelta: [{ id: memberId, removed: op === 'remove' }], seq });
  }

  private requireGroup(id: string): Group {
    const g = this.group(id);
    if (!g) throw new DirectoryError(`Group ${id} is not in the directory.`);
    return g;
  }

  private nextSeq(): number {
    return ++this.seqCounter;
  }

  private record(e: DistributiveOmit<ChangeEntry, 'seq'>): number {
    const seq = this.nextSeq();
    this.log.push({ ...e, seq });
    return seq;
  }

  private emit(c: DirectoryChange): void {
    for (const l of this.listeners) l(c);
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
