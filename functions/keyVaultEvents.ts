/**
 * `keyVaultEvents` (SPEC §4): `Microsoft.KeyVault.SecretNearExpiry` / `SecretExpired` from a vault's
 * system topic, in the Event Grid schema or as CloudEvents, in either casing of the data. Thin: one
 * use case matches the secret to the app the policy rotates into it and queues a reconcile. An event
 * that is not for Warden, or cannot be parsed, is logged and completes (redelivering it cannot help);
 * a failure to read Key Vault or to queue fails the invocation, so Event Grid delivers it again.
 */
import type { EventGridEvent, InvocationContext } from '@azure/functions';
import { InputError } from '../shared/errors';
import { loggerFromContext } from '../shared/logging';
import { fn } from '../shared/registration';

export async function keyVaultEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
  const logger = loggerFromContext(context, { trigger: 'event' });
  try {
    const { getRuntime } = await import('../shared/runtime');
    const runtime = await getRuntime();
    const result = await runtime.credentials.handleKeyVaultEvent(event, { logger });
    context.info(`keyVaultEvents: ${result.outcome} (${result.reason})`);
  } catch (err) {
    if (err instanceof InputError) {
      logger.warn('Ignored an event that is not a Key Vault secret event', { error: err });
      return;
    }
    context.error(err);
    throw err;
  }
}

fn.eventGrid('keyVaultEvents', { handler: keyVaultEvents });
