/**
 * Queueing work items: base64 JSON (the Functions host's default `messageEncoding`), messages that
 * never expire, sent with bounded concurrency (Storage queues have no batch send).
 */
import type { QueueClient } from '@azure/storage-queue';
import { messageOf } from '../errors';
import { encodeWorkItem, newWorkItem, type WorkItem, type WorkRequest } from './item';

export interface EnqueueOptions {
  /** Keep the messages invisible this long (follow-ups, delayed retries). */
  delayMs?: number;
  /** Messages sent at once. Default 16. */
  concurrency?: number;
  /** The enqueue time stamped on the items. Default now. */
  now?: Date;
}

const MAX_VISIBILITY_S = 7 * 24 * 3600;

/** Runs `fns` with at most `limit` in flight; returns every outcome. */
export async function settleLimited<T>(fns: ReadonlyArray<() => Promise<T>>, limit: number): Promise<PromiseSettledResult<T>[]> {
  const results: PromiseSettledResult<T>[] = new Array<PromiseSettledResult<T>>(fns.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < fns.length) {
      const i = next++;
      const f = fns[i] as () => Promise<T>;
      try {
        results[i] = { status: 'fulfilled', value: await f() };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, fns.length)) }, worker));
  return results;
}

/** Sends ready-made items. Throws an AggregateError naming how many were not queued (the rest were). */
export async function sendWorkItems(queue: QueueClient, items: readonly WorkItem[], options: EnqueueOptions = {}): Promise<void> {
  const delay = options.delayMs && options.delayMs > 0 ? Math.min(Math.ceil(options.delayMs / 1000), MAX_VISIBILITY_S) : undefined;
  const results = await settleLimited(
    items.map((item) => () =>
      queue.sendMessage(encodeWorkItem(item), {
        // -1: the message never expires, so queued work cannot vanish after the default 7 days.
        messageTimeToLive: -1,
        ...(delay ? { visibilityTimeout: delay } : {}),
      }),
    ),
    options.concurrency ?? 16,
  );
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length > 0) {
    throw new AggregateError(failed, `Could not queue ${failed.length} of ${items.length} work item(s): ${messageOf(failed[0])}`);
  }
}

/**
 * Queues work requests on `queue` (normally `warden-work`) and returns the items with their ids.
 * @example await enqueueWork(queue, [{ capability: 'compute', target: computeId, reason: 'compute written', trigger: { kind: 'event', id } }]);
 */
export async function enqueueWork(queue: QueueClient, requests: readonly WorkRequest[], options: EnqueueOptions = {}): Promise<WorkItem[]> {
  const at = options.now ?? new Date();
  const items = requests.map((r) => newWorkItem(r, at));
  if (items.length > 0) await sendWorkItems(queue, items, options);
  return items;
}
