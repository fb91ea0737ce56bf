/**
 * The credentials module (SPEC capability 4): finds app registration secrets and certificates that
 * expire soon or have expired, alerts their owners, and rotates the client secrets of the apps the
 * policy names into Key Vault with a managed overlap window.
 *
 * @example
 * const credentials = createCredentialsModule({ ...core, state, alerter, enqueue });
 * capabilities.credentials = credentials.capability;
 * await credentials.handleKeyVaultEvent(event);   // functions/keyVaultEvents.ts
 */
import type { Trigger } from '../capability';
import type { CoreDeps } from '../deps';
import type { Alerter } from '../ports/alerts';
import { createGraphApplications } from '../ports/azure/applications';
import { createKeyVaultSecrets } from '../ports/azure/secrets';
import type { StateStore } from '../ports/state';
import type { WorkRequest } from '../work/item';
import { createCredentialsCapability, type CredentialsCapability, type CredentialsPorts } from './capability';
import { handleKeyVaultEvent, type KeyVaultEventResult } from './events';
import type { InventorySnapshot } from './inventory';
import type { Logger } from '../logging';

export type { CredentialsCapability, CredentialsPorts } from './capability';
export type { KeyVaultEventResult } from './events';
export type { InventorySnapshot } from './inventory';
export { FINDING as CREDENTIAL_FINDINGS } from './plan';

export interface CredentialsModuleDeps extends CoreDeps {
  state: StateStore;
  alerter: Alerter;
  enqueue: (items: WorkRequest[], options?: { delayMs?: number }) => Promise<void>;
}

export interface CredentialsModule {
  capability: CredentialsCapability;
  /**
   * `keyVaultEvents`: turns a `SecretNearExpiry` / `SecretExpired` event (Event Grid schema or
   * CloudEvent, either casing of the data) into a queued reconcile of the app it belongs to.
   * Throws InputError for input that is not a Key Vault secret event.
   */
  handleKeyVaultEvent(event: unknown, options?: { trigger?: Trigger; logger?: Logger }): Promise<KeyVaultEventResult>;
  /** Runs one delta round of the credential inventory (the sweep does this through `listTargets`). */
  syncInventory(): Promise<InventorySnapshot>;
}

export function createCredentialsModule(deps: CredentialsModuleDeps, ports: Partial<CredentialsPorts> = {}): CredentialsModule {
  const resolved: CredentialsPorts = {
    applications: ports.applications ?? createGraphApplications(deps.clients, deps.limiter),
    secrets: ports.secrets ?? createKeyVaultSecrets(deps.clients, deps.limiter),
  };
  const logger = deps.logger.child({ capability: 'credentials' });
  const capability = createCredentialsCapability({ policy: deps.policy, clock: deps.clock, logger, state: deps.state, ports: resolved, enqueue: deps.enqueue });
  return {
    capability,
    handleKeyVaultEvent: (event, options = {}) =>
      handleKeyVaultEvent(
        event,
        { policy: deps.policy.credentials, secrets: resolved.secrets, clock: deps.clock, logger: options.logger ?? logger, enqueue: deps.enqueue },
        options.trigger,
      ),
    syncInventory: () => capability.inventory.sync(),
  };
}
