/**
 * Emulated Key Vault secrets: one HTTPS listener per vault (the composition starts them with service
 * name `keyvault` and no `authorize` hook — the routes run the challenge-based auth themselves), plus
 * the vault's system-topic events on the shared EventBus and a control for tests.
 */
import { z } from 'zod';
import type { EgEvent, EventBus } from '../core/eventbus';
import type { Router } from '../core/router';
import type { EmuContext } from '../core/server';
import {
  fullSecretEventType,
  NEAR_EXPIRY_WINDOW_SECONDS,
  secretEventData,
  vaultTopic,
  type SecretEventCasing,
  type SecretEventType,
} from './events';
import { createVaultRouter } from './routes';
import { SECRET_NAME, VaultState, type StoredSecret, type StoredVersion } from './vault';

export { SECRET_EVENT_TYPES, secretEventData, vaultTopic, type SecretEventCasing, type SecretEventType } from './events';

/** Vault names: 3–24 letters, digits and dashes, starting with a letter (ARM naming rules). */
const VAULT_NAME = /^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;

/** An instant in the tenant file: ISO 8601 with offset, Unix seconds, or a Date (programmatic use). */
const instantSchema = z
  .union([z.iso.datetime({ offset: true }), z.number().int().nonnegative(), z.date()])
  .transform((v) => (typeof v === 'number' ? v : Math.floor(new Date(v).getTime() / 1000)));

const seedSecretSchema = z.object({
  name: z.string().regex(SECRET_NAME, 'Secret names are 1-127 letters, digits and dashes.'),
  value: z.string(),
  expiresOn: instantSchema.optional(),
  notBefore: instantSchema.optional(),
  contentType: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  enabled: z.boolean().optional(),
});

const seedVaultSchema = z.object({
  name: z.string().regex(VAULT_NAME, 'Vault names are 3-24 letters, digits and dashes, starting with a letter.'),
  secrets: z.array(seedSecretSchema).optional(),
});

/** The tenant file's `vaults` section; `{ vaults: [...] }` and an absent section are accepted too. */
export const vaultsSectionSchema = z
  .union([z.array(seedVaultSchema), z.object({ vaults: z.array(seedVaultSchema) }), z.undefined(), z.null()])
  .transform((v) => (Array.isArray(v) ? v : (v?.vaults ?? [])))
  .refine((vaults) => new Set(vaults.map((v) => v.name.toLowerCase())).size === vaults.length, {
    message: 'Vault names must be unique.',
  });

export type VaultSeed = z.infer<typeof seedVaultSchema>;

/** A secret version as the test control shows it, value included (tests check where values go). */
export interface SecretVersionView {
  name: string;
  version: string;
  /** `{vaultUrl}/secrets/{name}/{version}` (the `https://{vault}.vault.azure.net` form before the listener starts). */
  id: string;
  value: string;
  enabled: boolean;
  contentType: string | undefined;
  tags: Record<string, string>;
  expiresOn: Date | undefined;
  notBefore: Date | undefined;
  createdOn: Date;
  updatedOn: Date;
}

export interface SetSecretOptions {
  expiresOn?: Date;
  notBefore?: Date;
  contentType?: string;
  tags?: Record<string, string>;
  enabled?: boolean;
  /** Publish `SecretNewVersionCreated` as a write through the API would (default false: seeding is silent). */
  emitEvent?: boolean;
}

export interface KeyVaultControl {
  /** Called by the composition once the vault's listener runs. */
  setVaultUrl(vault: string, url: string): void;
  /** The vault's listener URL (throws for an unknown vault or before the listener started). */
  vaultUrl(vault: string): string;
  vaultNames(): string[];
  /** The current version of a live secret, or undefined. */
  getSecret(vault: string, name: string): SecretVersionView | undefined;
  /** Every version of a live secret, oldest first ([] when absent). */
  versions(vault: string, name: string): SecretVersionView[];
  /** Names of the live secrets in a vault. */
  secretNames(vault: string): string[];
  isDeleted(vault: string, name: string): boolean;
  /** Writes a new version directly (no HTTP call, nothing recorded). */
  setSecret(vault: string, name: string, value: string, opts?: SetSecretOptions): SecretVersionView;
  /** Disables or re-enables one version (or the current one). */
  setEnabled(vault: string, name: string, enabled: boolean, version?: string): void;
  /**
   * Scans every enabled version with an expiry against the emulator clock: within 30 days of `exp`
   * → `SecretNearExpiry`, past `exp` → `SecretExpired`, each at most once per version and scan state
   * (a version that jumps past the window between two scans gets only `SecretExpired`).
   */
  checkExpiry(opts?: { casing?: SecretEventCasing }): EgEvent[];
  /** Publishes one secret event for the current (or given) version in the chosen payload casing. */
  emitSecretEvent(
    vault: string,
    name: string,
    type: SecretEventType | `Microsoft.KeyVault.${SecretEventType}`,
    opts?: { casing?: SecretEventCasing; version?: string },
  ): EgEvent;
  /** Casing of events the vault publishes by itself (on set and in `checkExpiry`); default `pascal`. */
  setEventCasing(casing: SecretEventCasing): void;
  /** The next `n` writes (set, update, delete, purge, recover) to this vault answer `status`. */
  failNextWrites(vault: string, n: number, status: number, opts?: { retryAfterSeconds?: number }): void;
}

export interface KeyVaultServiceDeps {
  ctx: EmuContext;
  events: EventBus;
  tenantId: string;
  subscriptionId: string;
}

export function createKeyVaultService(
  deps: KeyVaultServiceDeps,
  section: unknown,
): { vaults: Array<{ name: string; router: Router }>; control: KeyVaultControl } {
  const parsed = vaultsSectionSchema.safeParse(section);
  if (!parsed.success) {
    throw new Error(`Invalid "vaults" section: ${z.prettifyError(parsed.error)}`);
  }
  const states = new Map<string, VaultState>();
  let casing: SecretEventCasing = 'pascal';

  const vaultState = (name: string): VaultState => {
    const v = states.get(name.toLowerCase());
    if (!v) throw new Error(`Unknown emulated vault: ${name}`);
    return v;
  };
  const urlOf = (v: VaultState): string => v.url ?? `https://${v.name}.vault.azure.net`;

  const publish = (
    v: VaultState,
    secret: StoredSecret,
    version: StoredVersion,
    type: `Microsoft.KeyVault.${SecretEventType}`,
    eventCasing: SecretEventCasing,
  ): EgEvent => {
    const data = secretEventData(
      { vaultName: v.name, vaultUrl: urlOf(v), secretName: secret.name, version: version.version, nbf: version.nbf, exp: version.exp },
      eventCasing,
    );
    const ev = deps.events.event({ topic: vaultTopic(deps.subscriptionId, v.name), subject: secret.name, eventType: type, data });
    deps.events.publish([ev]);
    return ev;
  };

  const view = (v: VaultState, s: StoredSecret, x: StoredVersion): SecretVersionView => ({
    name: s.name,
    version: x.version,
    id: `${urlOf(v)}/secrets/${s.name}/${x.version}`,
    value: x.value,
    enabled: x.enabled,
    contentType: x.contentType,
    tags: { ...(x.tags ?? {}) },
    expiresOn: x.exp === undefined ? undefined : new Date(x.exp * 1000),
    notBefore: x.nbf === undefined ? undefined : new Date(x.nbf * 1000),
    createdOn: new Date(x.created * 1000),
    updatedOn: new Date(x.updated * 1000),
  });

  const vaults: Array<{ name: string; router: Router }> = [];
  for (const seed of parsed.data) {
    const state = new VaultState(seed.name, deps.ctx.clock);
    for (const s of seed.secrets ?? []) {
      state.set(s.name, {
        value: s.value,
        enabled: s.enabled,
        contentType: s.contentType,
        tags: s.tags,
        nbf: s.notBefore,
        exp: s.expiresOn,
      });
    }
    states.set(seed.name.toLowerCase(), state);
    const router = createVaultRouter(state, {
      tenantId: deps.tenantId,
      onNewVersion: (secret, version) => publish(state, secret, version, 'Microsoft.KeyVault.SecretNewVersionCreated', casing),
    });
    vaults.push({ name: seed.name, router });
  }

  const toSeconds = (d: Date | undefined): number | undefined => (d === undefined ? undefined : Math.floor(d.getTime() / 1000));

  const control: KeyVaultControl = {
    setVaultUrl(vault, url) {
      vaultState(vault).url = url.replace(/\/+$/, '');
    },
    vaultUrl(vault) {
      const v = vaultState(vault);
      if (!v.url) throw new Error(`The listener of vault ${vault} has not started.`);
      return v.url;
    },
    vaultNames: () => [...states.values()].map((v) => v.name),
    getSecret(vault, name) {
      const v = vaultState(vault);
      const s = v.find(name);
      const latest = s?.versions.at(-1);
      return s && !s.deleted && latest ? view(v, s, latest) : undefined;
    },
    versions(vault, name) {
      const v = vaultState(vault);
      const s = v.find(name);
      return s && !s.deleted ? s.versions.map((x) => view(v, s, x)) : [];
    },
    secretNames: (vault) => vaultState(vault).live().map((s) => s.name),
    isDeleted: (vault, name) => vaultState(vault).find(name)?.deleted !== undefined,
    setSecret(vault, name, value, opts = {}) {
      const v = vaultState(vault);
      const { secret, version } = v.set(name, {
        value,
        enabled: opts.enabled,
        contentType: opts.contentType,
        tags: opts.tags,
        nbf: toSeconds(opts.notBefore),
        exp: toSeconds(opts.expiresOn),
      });
      if (opts.emitEvent) publish(v, secret, version, 'Microsoft.KeyVault.SecretNewVersionCreated', casing);
      return view(v, secret, version);
    },
    setEnabled(vault, name, enabled, version) {
      vaultState(vault).update(name, version, { enabled });
    },
    checkExpiry(opts = {}) {
      const out: EgEvent[] = [];
      for (const v of states.values()) {
        const now = v.nowSeconds();
        for (const s of v.live()) {
          for (const x of s.versions) {
            if (!x.enabled || x.exp === undefined) continue;
            if (x.exp <= now) {
              if (x.notified.expired) continue;
              x.notified.expired = true;
              x.notified.nearExpiry = true;
              out.push(publish(v, s, x, 'Microsoft.KeyVault.SecretExpired', opts.casing ?? casing));
            } else if (x.exp - now <= NEAR_EXPIRY_WINDOW_SECONDS && !x.notified.nearExpiry) {
              x.notified.nearExpiry = true;
              out.push(publish(v, s, x, 'Microsoft.KeyVault.SecretNearExpiry', opts.casing ?? casing));
            }
          }
        }
      }
      return out;
    },
    emitSecretEvent(vault, name, type, opts = {}) {
      const v = vaultState(vault);
      const s = v.require(name);
      const x = opts.version ? v.version(name, opts.version) : v.latest(name);
      return publish(v, s, x, fullSecretEventType(type), opts.casing ?? casing);
    },
    setEventCasing(c) {
      casing = c;
    },
    failNextWrites(vault, n, status, opts = {}) {
      vaultState(vault).writeFailures =
        opts.retryAfterSeconds === undefined
          ? { remaining: n, status }
          : { remaining: n, status, retryAfterSeconds: opts.retryAfterSeconds };
    },
  };

  return { vaults, control };
}
