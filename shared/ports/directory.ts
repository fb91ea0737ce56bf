/**
 * Microsoft Entra ID (through Graph) in domain terms: groups, their transitive members streamed page
 * by page, who a principal belongs to, the groups delta query, and change-notification subscriptions.
 * The adapter over `@microsoft/microsoft-graph-client` lives in `ports/azure/directory.ts`.
 */

export type DirectoryObjectType = 'User' | 'Group' | 'ServicePrincipal' | 'Device' | 'Other';

export interface DirectoryGroup {
  id: string;
  displayName: string;
  /** Security groups can hold Azure role assignments; Microsoft 365 groups cannot. */
  securityEnabled: boolean;
  mailEnabled: boolean;
}

export interface DirectoryMember {
  id: string;
  type: DirectoryObjectType;
  /** Users and service principals; undefined for other types or when Graph did not say. */
  accountEnabled: boolean | undefined;
}

/** A principal as seen for offboarding: does it exist, can it sign in, which groups hold it (transitively). */
export interface PrincipalMembership {
  id: string;
  exists: boolean;
  accountEnabled: boolean;
  /** Ids of every group it is a transitive member of, lower case. */
  groups: string[];
}

/** One group's change in a delta round. */
export interface GroupDeltaChange {
  groupId: string;
  /** The group itself was deleted. */
  removed: boolean;
  /** Direct membership changes (`members@delta`); removed ones carry `removed: true`. */
  members: Array<{ id: string; type: DirectoryObjectType; removed: boolean }>;
}

/** One page of a groups delta round; the last page carries the `deltaLink` for the next round. */
export interface GroupDeltaPage {
  changes: GroupDeltaChange[];
  deltaLink: string | undefined;
}

/** The delta token is no longer valid (410 SyncStateNotFound): start again from "latest". */
export class DeltaExpiredError extends Error {
  constructor(message = 'The delta token is no longer valid', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeltaExpiredError';
  }
}

export interface GraphSubscription {
  id: string;
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | undefined;
  expirationDateTime: string;
}

export interface NewGraphSubscription {
  resource: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string;
  expirationDateTime: string;
  clientState: string;
}

export interface Directory {
  /** A group, or undefined when it does not exist. */
  getGroup(id: string): Promise<DirectoryGroup | undefined>;
  /**
   * Transitive members (users, service principals, nested groups…) one page at a time, so a
   * 100,000-member group is never held as raw pages. Throws when the group does not exist.
   */
  transitiveMembers(groupId: string): AsyncIterable<DirectoryMember[]>;
  /** Ids of every group nested (transitively) in a group, lower case. */
  nestedGroups(groupId: string): Promise<string[]>;
  /** Whether a user or service principal exists, is enabled, and which groups hold it. */
  membershipOf(principalId: string, type: 'User' | 'ServicePrincipal'): Promise<PrincipalMembership>;
  /** Groups this group is transitively nested in, lower case. */
  groupMemberOf(groupId: string): Promise<string[]>;
  /**
   * One delta round over the given groups (at most 50 ids), from a stored `deltaLink`. Throws
   * {@link DeltaExpiredError} when the link is no longer valid.
   */
  groupsDelta(deltaLink: string): AsyncIterable<GroupDeltaPage>;
  /** A `deltaLink` for "from now on" over these groups (`$deltatoken=latest`), without reading their state. */
  latestGroupsDeltaLink(groupIds: readonly string[]): Promise<string>;
  createSubscription(spec: NewGraphSubscription): Promise<GraphSubscription>;
  /** Undefined when the subscription is gone (expired or removed). */
  getSubscription(id: string): Promise<GraphSubscription | undefined>;
  /** Extends the expiration (which also reauthorizes); undefined when the subscription is gone. */
  renewSubscription(id: string, expirationDateTime: string): Promise<GraphSubscription | undefined>;
  /** False when the subscription is gone. */
  reauthorizeSubscription(id: string): Promise<boolean>;
  /** Deletes a subscription; one already gone is fine. */
  deleteSubscription(id: string): Promise<void>;
}
