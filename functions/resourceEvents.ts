/**
 * `resourceEvents` (SPEC §4): ARM `ResourceWriteSuccess` / `ResourceDeleteSuccess` events for Azure ML
 * workspaces, computes and datastores, in the Event Grid schema or as CloudEvents. Thin: the event is
 * parsed, mapped to work items and queued by one use case; an event that is out of scope, of another type
 * or unparsable is logged and completes (no redelivery loop). Only a failure to queue fails the
 * invocation, so Event Grid delivers the event again.
 */
import type { EventGridEvent, InvocationContext } from '@azure/functions';
import { handleResourceEvent } from '../shared/events/resource';
import { loggerFromContext } from '../shared/logging';
import { fn } from '../shared/registration';

export async function resourceEvents(event: EventGridEvent, context: InvocationContext): Promise<void> {
  try {
    const { getRuntime } = await import('../shared/runtime');
    const runtime = await getRuntime();
    await handleResourceEvent(event, {
      policy: runtime.core.policy,
      enqueue: (items) => runtime.enqueue(items),
      logger: loggerFromContext(context, { trigger: 'event' }),
    });
  } catch (err) {
    context.error(err);
    throw err;
  }
}

fn.eventGrid('resourceEvents', { handler: resourceEvents });
