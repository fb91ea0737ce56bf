/**
 * The trigger options of the `work` and `sweep` functions, shared by `functions/work.ts`,
 * `functions/sweep.ts` and the host tests, so the tests exercise exactly what is registered.
 */
import type { StorageQueueFunctionOptions, TimerFunctionOptions } from '@azure/functions';
import { loggerFromContext } from '../logging';
import { WORK_QUEUE } from './item';
import type { WorkPipeline } from './pipeline';

/** The storage connection app setting, as the host names it. */
export const STORAGE_CONNECTION = 'AzureWebJobsStorage';
/** The sweep's schedule, resolved from app settings by the host (SPEC §3). */
export const SWEEP_SCHEDULE = '%WARDEN_SWEEP_SCHEDULE%';

function dequeueCountOf(meta: Record<string, unknown> | undefined): number {
  const n = Number(meta?.dequeueCount);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/**
 * `work`: storage queue trigger on `warden-work`. One message, at most one reconcile; throws only what
 * the host must retry (see `pipeline.ts`).
 */
export function workFunctionOptions(getPipeline: () => Promise<WorkPipeline>, queueName: string = WORK_QUEUE): StorageQueueFunctionOptions {
  return {
    queueName,
    connection: STORAGE_CONNECTION,
    handler: async (entry, context) => {
      const pipeline = await getPipeline();
      const meta = context.triggerMetadata;
      const messageId = typeof meta?.id === 'string' ? meta.id : undefined;
      const logger = loggerFromContext(context, { trigger: 'queue' });
      await pipeline.handle(entry, {
        dequeueCount: dequeueCountOf(meta),
        invocationId: context.invocationId,
        logger,
        ...(messageId ? { messageId } : {}),
      });
    },
  };
}

/** `sweep`: timer on `%WARDEN_SWEEP_SCHEDULE%`; queues every target of every capability. */
export function sweepFunctionOptions(getPipeline: () => Promise<WorkPipeline>, schedule: string = SWEEP_SCHEDULE): TimerFunctionOptions {
  return {
    schedule,
    handler: async (timer, context) => {
      const pipeline = await getPipeline();
      const logger = loggerFromContext(context, { trigger: 'schedule' });
      const report = await pipeline.sweep({ kind: 'schedule', id: context.invocationId }, logger);
      const total = Object.values(report.queued).reduce((a, b) => a + b, 0);
      logger.info(`Sweep queued ${total} target(s)`, { queued: report.queued, isPastDue: timer.isPastDue });
    },
  };
}
