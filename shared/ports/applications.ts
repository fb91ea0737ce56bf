/**
 * Entra app registrations as the credentials capability sees them: credential metadata (never a
 * secret), owners' mail addresses, and the two password actions. The Graph adapter lives in
 * `shared/ports/azure/applications.ts`.
 */

export type CredentialKind = 'password' | 'certificate';

/** One password or key credential of an application: metadata only. */
export interface AppCredential {
  kind: CredentialKind;
  /** Lower-case GUID. */
  keyId: string;
  displayName: string | null;
  /** ISO 8601, or null when Graph did not say. */
  startDateTime: string | null;
  /** ISO 8601; null means it does not expire. */
  endDateTime: string | null;
  /** Certificates: `AsymmetricX509Cert`, `Symmetric`…; undefined for passwords. */
  type?: string;
}

export interface AppRegistration {
  /** Object id. */
  id: string;
  /** Application (client) id, lower case. */
  appId: string;
  displayName: string;
  passwords: AppCredential[];
  certificates: AppCredential[];
}

/**
 * One entry of an `applications/delta` page. Graph may leave out properties that did not change,
 * so everything except `id` is optional; `removed` marks a deleted application.
 */
export interface AppDelta {
  id: string;
  removed: boolean;
  appId?: string;
  displayName?: string;
  passwords?: AppCredential[];
  certificates?: AppCredential[];
}

export interface DeltaRound {
  changes: AppDelta[];
  /** The link that resumes after this round. */
  deltaLink: string;
  /** Graph requests the round took (one per page). */
  pages: number;
}

/** The stored delta link is no longer accepted (410 Gone / sync state lost): start a full round. */
export class DeltaExpiredError extends Error {
  constructor(message = 'The delta link has expired; a full synchronisation is needed', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeltaExpiredError';
  }
}

/** What `addPassword` returns. `secretText` is the only copy of the secret there will ever be. */
export interface NewPassword {
  keyId: string;
  displayName: string | null;
  startDateTime: string;
  endDateTime: string;
  secretText: string;
}

export interface Applications {
  /**
   * One delta round: every application when `deltaLink` is undefined (the paged full scan), else
   * only what changed since the link. Throws {@link DeltaExpiredError} when the link is refused.
   */
  delta(deltaLink: string | undefined): Promise<DeltaRound>;
  /** One application by its application (client) id, or undefined when there is none. */
  getByAppId(appId: string): Promise<AppRegistration | undefined>;
  /** One application by its object id, or undefined when there is none. */
  getByObjectId(objectId: string): Promise<AppRegistration | undefined>;
  /** Mail addresses of the application's owners that are users (service principals have none). */
  ownerMails(objectId: string): Promise<string[]>;
  /**
   * Adds a client secret. The adapter registers `secretText` with the redactor before returning.
   * @example const p = await apps.addPassword(objectId, { displayName: 'warden:kv1/app-secret', endDateTime })
   */
  addPassword(objectId: string, password: { displayName: string; endDateTime: Date }): Promise<NewPassword>;
  /** Removes a password; `absent` when the application no longer has it. */
  removePassword(objectId: string, keyId: string): Promise<'removed' | 'absent'>;
}
