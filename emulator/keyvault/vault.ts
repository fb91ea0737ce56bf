import { randomUUID } from 'node:crypto';
import type { EmuClock } from '../core/clock';

/** Key Vault secret names: 1–127 letters, digits and dashes (REST reference). */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** Deleted secrets stay recoverable this long (the vault default). */
export const RECOVERABLE_DAYS = 90;
export const RECOVERY_LEVEL = 'Recoverable+Purgeable';
/** Key Vault allows at most 15 tags per secret. */
export const MAX_TAGS = 15;

/** One version of a secret; times are Unix seconds as on the wire. */
export interface StoredVersion {
  version: string;
  value: string;
  enabled: boolean;
  contentType?: string;
  tags?: Record<string, string>;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  /** Which expiry events this version has produced already (each fires once per version). */
  notified: { nearExpiry: boolean; expired: boolean };
}

export interface StoredSecret {
  /** The name as first written; lookups are case-insensitive as in Key Vault. */
  name: string;
  /** In creation order; the last one is the current version. */
  versions: StoredVersion[];
  deleted?: {
    deletedDate: number;
    scheduledPurgeDate: number;
    /** `GET /deletedsecrets/{name}` answers 404 this many more times: deletion completes asynchronously. */
    pendingPolls: number;
  };
}

export interface SetSecretInput {
  value: string;
  enabled?: boolean | undefined;
  contentType?: string | undefined;
  tags?: Record<string, string> | undefined;
  nbf?: number | undefined;
  exp?: number | undefined;
}

export interface UpdateSecretInput {
  enabled?: boolean | undefined;
  contentType?: string | undefined;
  tags?: Record<string, string> | undefined;
  nbf?: number | undefined;
  exp?: number | undefined;
}

/** A Key Vault error answer: `{ error: { code, message, innererror? } }` with an HTTP status. */
export class KeyVaultError extends Error {
  override readonly name = 'KeyVaultError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }
}

export function secretNotFound(name: string, version?: string): KeyVaultError {
  const what = version ? `${name}/${version}` : name;
  return new KeyVaultError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

/** One vault's secrets, shared by its HTTP routes and the test control. */
export class VaultState {
  private readonly secrets = new Map<string, StoredSecret>();
  /** The listener URL, once the composition has started it. */
  url: string | undefined;
  /** Pending write failures set by `failNextWrites`. */
  writeFailures: { remaining: number; status: number; retryAfterSeconds?: number } | undefined;

  constructor(
    readonly name: string,
    private readonly clock: EmuClock,
  ) {}

  nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  /** Live (not deleted) secrets, sorted by name. */
  live(): StoredSecret[] {
    return [...this.secrets.values()]
      .filter((s) => !s.deleted)
      .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  }

  deletedSecrets(): StoredSecret[] {
    return [...this.secrets.values()]
      .filter((s) => s.deleted)
      .sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
  }

  /** The secret, deleted or not. */
  find(name: string): StoredSecret | undefined {
    return this.secrets.get(name.toLowerCase());
  }

  /** The live secret or a 404. */
  require(name: string): StoredSecret {
    const s = this.find(name);
    if (!s || s.deleted) throw secretNotFound(name);
    return s;
  }

  latest(name: string): StoredVersion {
    const v = this.require(name).versions.at(-1);
    if (!v) throw secretNotFound(name);
    return v;
  }

  version(name: string, version: string): StoredVersion {
    const v = this.require(name).versions.find((x) => x.version.toLowerCase() === version.toLowerCase());
    if (!v) throw secretNotFound(name, version);
    return v;
  }

  /** Adds a new current version (creating the secret when needed). */
  set(name: string, input: SetSecretInput): { secret: StoredSecret; version: StoredVersion } {
    if (!SECRET_NAME.test(name)) throw badName(name);
    const existing = this.find(name);
    if (existing?.deleted) {
      throw new KeyVaultError(
        409,
        'Conflict',
        `Secret ${existing.name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    }
    const now = this.nowSeconds();
    const v: StoredVersion = {
      version: randomUUID().replace(/-/g, ''),
      value: input.value,
      enabled: input.enabled ?? true,
      created: now,
      updated: now,
      notified: { nearExpiry: false, expired: false },
    };
    if (input.contentType !== undefined) v.contentType = input.contentType;
    if (input.tags !== undefined) v.tags = { ...input.tags };
    if (input.nbf !== undefined) v.nbf = input.nbf;
    if (input.exp !== undefined) v.exp = input.exp;
    const secret = existing ?? { name, versions: [] };
    secret.versions.push(v);
    this.secrets.set(name.toLowerCase(), secret);
    return { secret, version: v };
  }

  update(name: string, version: string | undefined, patch: UpdateSecretInput): StoredVersion {
    const v = version ? this.version(name, version) : this.latest(name);
    if (patch.enabled !== undefined) v.enabled = patch.enabled;
    if (patch.contentType !== undefined) v.contentType = patch.contentType;
    if (patch.tags !== undefined) v.tags = { ...patch.tags };
    if (patch.nbf !== undefined) v.nbf = patch.nbf;
    if (patch.exp !== undefined) {
      if (patch.exp !== v.exp) v.notified = { nearExpiry: false, expired: false };
      v.exp = patch.exp;
    }
    v.updated = this.nowSeconds();
    return v;
  }

  delete(name: string): StoredSecret {
    const s = this.require(name);
    const now = this.nowSeconds();
    s.deleted = { deletedDate: now, scheduledPurgeDate: now + RECOVERABLE_DAYS * 86400, pendingPolls: 1 };
    return s;
  }

  /** The deleted secret; 404 while the deletion is still "in progress" or when not deleted. */
  deleted(name: string): StoredSecret {
    const s = this.find(name);
    if (!s?.deleted) throw deletedNotFound(name);
    if (s.deleted.pendingPolls > 0) {
      s.deleted.pendingPolls--;
      throw deletedNotFound(name);
    }
    return s;
  }

  purge(name: string): void {
    const s = this.find(name);
    if (!s?.deleted) throw deletedNotFound(name);
    this.secrets.delete(name.toLowerCase());
  }

  recover(name: string): StoredSecret {
    const s = this.find(name);
    if (!s?.deleted) throw deletedNotFound(name);
    delete s.deleted;
    return s;
  }

  /** Consumes one pending write failure, if any. */
  takeWriteFailure(): { status: number; retryAfterSeconds?: number } | undefined {
    const f = this.writeFailures;
    if (!f || f.remaining <= 0) return undefined;
    f.remaining--;
    if (f.remaining <= 0) this.writeFailures = undefined;
    return f.retryAfterSeconds === undefined ? { status: f.status } : { status: f.status, retryAfterSeconds: f.retryAfterSeconds };
  }
}

export function badName(name: string): KeyVaultError {
  return new KeyVaultError(400, 'BadParameter', `The request URI contains an invalid name: ${name}`);
}

function deletedNotFound(name: string): KeyVaultError {
  return new KeyVaultError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);
}
