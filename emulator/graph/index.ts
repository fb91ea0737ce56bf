/**
 * The Microsoft Graph v1.0 part of the emulator. `createGraphService` validates the tenant file's
 * `directory` section (see state.ts), and returns the router the composition serves under
 * `/v1.0/...`, the typed control tests use, and the principal directory ARM consults.
 */
import type { EventBus } from '../core/eventbus';
import type { Pusher } from '../core/push';
import type { Router } from '../core/router';
import type { EmuContext } from '../core/server';
import { addApplicationRoutes } from './applications';
import { addBatchRoute } from './batch';
import { DeltaEngine } from './delta';
import { addDirectoryRoutes } from './directory-routes';
import { addMailRoute, type SentMail } from './mail';
import { wrap } from './paging';
import { GraphRouter } from './router';
import {
  Directory,
  DirectoryError,
  directorySectionSchema,
  type ApplicationSeed,
  type GroupSeed,
  type KeyCredential,
  type PrincipalType,
  type ServicePrincipal,
  type ServicePrincipalSeed,
  type User,
  type UserSeed,
} from './state';
import { Subscriptions, type GraphSubscription, type LifecycleEvent, type LostNotification } from './subscriptions';

export type { SentMail } from './mail';
export type { GraphSubscription, LifecycleEvent, LostNotification, PartnerTopic } from './subscriptions';
export { MAX_DIRECTORY_EXPIRATION_MINUTES, GROUP_SUBSCRIPTION_QUOTA } from './subscriptions';
export { directorySectionSchema, DirectoryError } from './state';
export type { ApplicationSeed, DirectorySection, GroupSeed, PrincipalType, ServicePrincipalSeed, UserSeed } from './state';

/** The appId subscriptions are attributed to when the tenant file names none. */
export const DEFAULT_CALLER_APP_ID = '00000000-0000-4000-8000-00000000a11d';

export interface PrincipalDirectory {
  lookup(id: string): { type: PrincipalType } | undefined;
}

/** An application as the control shows it: credentials without secret values. */
export interface ApplicationView {
  id: string;
  appId: string;
  displayName: string;
  owners: string[];
  passwordCredentials: Array<{ keyId: string; displayName: string | null; startDateTime: string; endDateTime: string; hint: string | null }>;
  keyCredentials: KeyCredential[];
}

export interface GroupView {
  id: string;
  displayName: string;
  /** Direct members (explicit and generated). */
  memberCount: number;
}

/** In-process control of the emulated directory and Graph behaviour. Mutations notify subscribers. */
export interface GraphControl {
  addUser(user: UserSeed): User;
  addServicePrincipal(sp: ServicePrincipalSeed): ServicePrincipal;
  /** `generatedMembers` adds a cheap range of users (ids `idPrefix` + 12 hex digits) as members. */
  addGroup(group: GroupSeed): GroupView;
  updateGroup(id: string, patch: { displayName?: string; description?: string | null }): void;
  deleteGroup(id: string): void;
  /** False when it already was a direct member. Throws for unknown ids. */
  addMember(groupId: string, memberId: string): boolean;
  /** False when it was not a direct member. */
  removeMember(groupId: string, memberId: string): boolean;
  setAccountEnabled(id: string, enabled: boolean): void;
  /** Ids of every transitive member (users, service principals, groups) — fine for test-sized groups. */
  transitiveMemberIds(groupId: string): string[];
  addApplication(app: ApplicationSeed): ApplicationView;
  deleteApplication(appIdOrObjectId: string): void;
  /** Moves a password credential's end (e.g. to just ahead of now, to trigger rotation). */
  expirePasswordSoon(appIdOrObjectId: string, keyId: string, endDateTime: string | Date): void;
  listApplications(): ApplicationView[];
  getApplication(appIdOrObjectId: string): ApplicationView | undefined;
  /** The secret value issued by addPassword (or seeded), for tests that compare it with Key Vault. */
  secretText(appIdOrObjectId: string, keyId: string): string | undefined;
  subscriptions(): GraphSubscription[];
  outbox(): SentMail[];
  /** Change notifications lost on purpose so far. */
  lostNotifications(): LostNotification[];
  /** Loses the next `n` change notifications (the delta log still has the changes). */
  dropNextNotifications(n: number): void;
  /** Removes a subscription silently (as Graph does when it expires or drops it). */
  dropSubscription(id: string): boolean;
  /** Sends a lifecycle notification; false when there is nowhere to send it. */
  sendLifecycle(subscriptionId: string, event: LifecycleEvent): boolean;
  /** Delay before each change notification is delivered (ms). */
  notificationDelayMs: number;
  /** Time a subscription's validation handshake may take (ms; Graph: 10,000). */
  validationTimeoutMs: number;
  /** Invalidates every delta token issued so far (their next use answers 410). */
  resetDeltaTokens(): void;
  /** The CloudEvent source of Graph partner-topic events (for EventBus subscriptions). */
  partnerTopicSource(): string;
}

export interface GraphDeps {
  ctx: EmuContext;
  pusher: Pusher;
  events: EventBus;
  tenantId: string;
}

function view(app: { id: string; appId: string; displayName: string; owners: string[]; passwordCredentials: ApplicationView['passwordCredentials']; keyCredentials: KeyCredential[] }): ApplicationView {
  return {
    id: app.id,
    appId: app.appId,
    displayName: app.displayName,
    owners: [...app.owners],
    passwordCredentials: app.passwordCredentials.map((p) => ({
      keyId: p.keyId,
      displayName: p.displayName,
      startDateTime: p.startDateTime,
      endDateTime: p.endDateTime,
      hint: p.hint,
    })),
    keyCredentials: app.keyCredentials.map((k) => ({ ...k })),
  };
}

export function createGraphService(
  deps: GraphDeps,
  section: unknown,
): { router: Router; control: GraphControl; principals: PrincipalDirectory } {
  const parsed = directorySectionSchema.safeParse(section ?? {});
  if (!parsed.success) {
    throw new DirectoryError(`Invalid directory section: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const { clock } = deps.ctx;
  const dir = new Directory(() => clock.now());
  dir.load(parsed.data);
  const callerAppId = parsed.data.callerAppId ?? DEFAULT_CALLER_APP_ID;
  const delta = new DeltaEngine(dir);
  const subs = new Subscriptions({ dir, clock, pusher: deps.pusher, events: deps.events, tenantId: deps.tenantId, callerAppId });
  const outbox: SentMail[] = [];

  const router = new GraphRouter();
  // Specific paths before `:id` patterns: the router takes the first match.
  router.add('GET', '/v1.0/groups/delta', 'graph.groups.delta', wrap((req) => delta.handle(req, 'groups')));
  addBatchRoute(router, deps.ctx.faults);
  addMailRoute(router, dir, clock, outbox);
  addApplicationRoutes(router, dir, delta, clock);
  subs.addRoutes(router);
  addDirectoryRoutes(router, dir);

  const requireApp = (ref: string): NonNullable<ReturnType<Directory['applicationByRef']>> => {
    const app = dir.applicationByRef(ref);
    if (!app) throw new DirectoryError(`Application ${ref} is not in the directory.`);
    return app;
  };

  const control: GraphControl = {
    addUser: (u) => dir.addUser(u),
    addServicePrincipal: (sp) => dir.addServicePrincipal(sp),
    addGroup: (g) => {
      const group = dir.addGroup(g);
      return { id: group.id, displayName: group.displayName, memberCount: dir.directMembers(group.id)?.size ?? 0 };
    },
    updateGroup: (id, patch) => void dir.updateGroup(id, patch),
    deleteGroup: (id) => dir.deleteGroup(id),
    addMember: (g, m) => dir.addMember(g, m),
    removeMember: (g, m) => dir.removeMember(g, m),
    setAccountEnabled: (id, enabled) => dir.setAccountEnabled(id, enabled),
    transitiveMemberIds: (groupId) => {
      const flat = dir.transitiveMembers(groupId);
      if (!flat) throw new DirectoryError(`Group ${groupId} is not in the directory.`);
      const out: string[] = [];
      for (let p = 0; p < flat.size; p++) {
        const id = flat.at(p);
        if (id !== undefined) out.push(id);
      }
      return out;
    },
    addApplication: (a) => view(dir.addApplication(a)),
    deleteApplication: (ref) => dir.deleteApplication(ref),
    expirePasswordSoon: (ref, keyId, end) => {
      const app = requireApp(ref);
      const cred = app.passwordCredentials.find((p) => p.keyId.toLowerCase() === keyId.toLowerCase());
      if (!cred) throw new DirectoryError(`Application ${ref} has no password credential ${keyId}.`);
      cred.endDateTime = (typeof end === 'string' ? new Date(end) : end).toISOString();
      dir.applicationChanged(app);
    },
    listApplications: () => [...dir.applications.values()].map(view),
    getApplication: (ref) => {
      const app = dir.applicationByRef(ref);
      return app ? view(app) : undefined;
    },
    secretText: (ref, keyId) => dir.applicationByRef(ref)?.passwordCredentials.find((p) => p.keyId.toLowerCase() === keyId.toLowerCase())?.secretText,
    subscriptions: () => subs.list().map((s) => ({ ...s })),
    outbox: () => [...outbox],
    lostNotifications: () => [...subs.lost],
    dropNextNotifications: (n) => subs.dropNextNotifications(n),
    dropSubscription: (id) => subs.drop(id),
    sendLifecycle: (id, event) => subs.sendLifecycle(id, event),
    get notificationDelayMs() {
      return subs.notificationDelayMs;
    },
    set notificationDelayMs(ms: number) {
      subs.notificationDelayMs = ms;
    },
    get validationTimeoutMs() {
      return subs.validationTimeoutMs;
    },
    set validationTimeoutMs(ms: number) {
      subs.validationTimeoutMs = ms;
    },
    resetDeltaTokens: () => delta.resetTokens(),
    partnerTopicSource: () => subs.partnerSource(),
  };

  const principals: PrincipalDirectory = {
    lookup: (id) => {
      const o = dir.lookup(id);
      return o ? { type: o.type } : undefined;
    },
  };

  return { router, control, principals };
}
