import type { AzureClients } from './azure/clients';
import type { Clock } from './clock';
import type { Limiter } from './concurrency';
import type { Logger } from './logging';
import type { Policy } from './policy';
import type { Settings } from './settings';

/**
 * What the composition root hands every capability factory. Capabilities build their port adapters
 * from `clients`; nothing else reaches an SDK.
 */
export interface CoreDeps {
  settings: Settings;
  policy: Readonly<Policy>;
  clients: AzureClients;
  clock: Clock;
  /** Bounds Azure/Graph calls in flight (`WARDEN_CONCURRENCY`). */
  limiter: Limiter;
  /** Process-level logger; per-invocation loggers are children of the context's logger. */
  logger: Logger;
}
