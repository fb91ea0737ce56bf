/**
 * The work pipeline end to end on the host runner: the real `work` function options on a queue, a
 * burst of 1,000 items for one target, two hosts sharing a queue, and poison with an alert on
 * `warden-work` after the configured tries. Reconcilers are in-memory fakes (our own domain functions).
 */
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { TransientError } from '../../shared/errors';
import { createLogger, memorySink } from '../../shared/logging';
import { MemoryAlerter } from '../../shared/ports/alerts';
import { MemoryAuditLog } from '../../shared/ports/audit';
import { decodeWorkMessage, WORK_POISON_QUEUE, WORK_QUEUE, type WorkItem } from '../../shared/work/item';
import { createWorkPipeline, type Reconciler, type WorkPipeline, type WorkResult } from '../../shared/work/pipeline';
import { startHost, type Host, type StartHostOptions } from '../../host/host';
import { startAzurite } from '../helpers/azurite';
import { useWorkPipeline } from './fixtures/functions';
import { APP_ROOT, captureLogs, FIXTURE_MODULE, testStorage, uniqueQueue, waitFor } from './helpers';

const FAST_QUEUES = { extensions: { queues: { maxPollingInterval: '00:00:00.200', visibilityTimeout: '00:00:01', maxDequeueCount: 3, batchSize: 32, newBatchThreshold: 16 } } };
const TARGET = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/burst';

function hostOn(storage: string, queue: string, extra: Partial<StartHostOptions> = {}): Promise<Host> {
  return startHost({
    port: 0,
    env: { AzureWebJobsStorage: storage, FIXTURE_WORK_QUEUE: queue },
    appRoot: APP_ROOT,
    localSettings: false,
    functionsModule: FIXTURE_MODULE,
    functions: ['work'],
    hostJson: FAST_QUEUES,
    exportEnv: false,
    logSink: () => undefined,
    ...extra,
  });
}

interface Rig {
  pipeline: WorkPipeline;
  results: WorkResult[];
  alerter: MemoryAlerter;
  audit: MemoryAuditLog;
  queue: QueueClient;
}

function rig(storage: string, queueName: string, reconciler: Reconciler, maxDequeueCount = 3, windowMs = 2000): Rig {
  const queue = new QueueClient(storage, queueName);
  const table = TableClient.fromConnectionString(storage, `work${randomBytes(5).toString('hex')}`, { allowInsecureConnection: true });
  const alerter = new MemoryAlerter();
  const audit = new MemoryAuditLog();
  const inner = createWorkPipeline({
    queue,
    table,
    reconcilers: { workspaces: reconciler, rbac: reconciler },
    alerter,
    audit: { log: audit, mode: 'enforce' },
    logger: createLogger(memorySink()),
    maxDequeueCount,
    coalesceWindowMs: windowMs,
    sendConcurrency: 32,
  });
  const results: WorkResult[] = [];
  // Observe what the real work function settles each message to.
  const pipeline: WorkPipeline = {
    ...inner,
    handle: async (entry, meta) => {
      const r = await inner.handle(entry, meta);
      results.push(r);
      return r;
    },
  };
  useWorkPipeline(pipeline);
  return { pipeline, results, alerter, audit, queue };
}

async function drained(queue: QueueClient): Promise<boolean> {
  return ((await queue.getProperties()).approximateMessagesCount ?? 0) === 0;
}

afterEach(() => useWorkPipeline(undefined));

describe('work pipeline on the host', () => {
  it('runs a burst of 1,000 work items for one target as at most 5 reconciles, settling every message', async () => {
    const name = uniqueQueue('burst');
    let reconciles = 0;
    // The production coalescing window (5 s).
    const r = rig(testStorage(), name, async () => {
      reconciles++;
      await new Promise((res) => setTimeout(res, 200));
      return { summary: 'reconciled' };
    }, 3, 5000);
    const host = await hostOn(testStorage(), name);
    try {
      // 1,000 separate events, each queued on its own while the host already works the queue, as
      // Event Grid would deliver them: their enqueue times spread over the whole burst.
      const items: WorkItem[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next < 1000) {
            const i = next++;
            items.push(...(await r.pipeline.enqueue([{ capability: 'workspaces', target: TARGET, reason: `event ${i}`, trigger: { kind: 'event', id: `e-${i}` } }])));
          }
        }),
      );
      expect(items).toHaveLength(1000);
      await waitFor('the queue to drain', () => drained(r.queue), 40_000, 200);
      const settledIds = new Set(r.results.flatMap((x) => (x.item && x.item.trigger.kind !== 'followup' ? [x.item.id] : [])));
      expect(settledIds.size).toBe(1000);
      expect(reconciles).toBeGreaterThanOrEqual(1);
      expect(reconciles).toBeLessThanOrEqual(5);
      expect(r.results.filter((x) => x.status === 'reconciled')).toHaveLength(reconciles);
      expect(r.alerter.sent).toHaveLength(0);
    } finally {
      await host.stop({ drainMs: 5000 });
    }
  }, 60_000);

  it('never runs one target’s reconcile twice at once when two hosts share the queue', async () => {
    const name = uniqueQueue('two');
    const active = new Map<string, number>();
    let maxActive = 0;
    const perTarget = new Map<string, number>();
    const r = rig(testStorage(), name, async (item) => {
      const n = (active.get(item.target) ?? 0) + 1;
      active.set(item.target, n);
      maxActive = Math.max(maxActive, n);
      perTarget.set(item.target, (perTarget.get(item.target) ?? 0) + 1);
      await new Promise((res) => setTimeout(res, 100));
      active.set(item.target, (active.get(item.target) ?? 1) - 1);
      return {};
    }, 3, 300);
    const logsA = captureLogs();
    const logsB = captureLogs();
    const a = await hostOn(testStorage(), name, { logSink: logsA });
    const b = await hostOn(testStorage(), name, { logSink: logsB });
    try {
      const targets = ['t-1', 't-2', 't-3'].map((t) => `${TARGET}-${t}`);
      await r.pipeline.enqueue(
        Array.from({ length: 180 }, (_, i) => ({ capability: 'workspaces' as const, target: targets[i % 3] as string, reason: 'x', trigger: { kind: 'event' as const } })),
      );
      await waitFor('the queue to drain', () => drained(r.queue), 40_000, 200);
      expect(maxActive).toBe(1);
      for (const t of targets) expect(perTarget.get(t)).toBeGreaterThanOrEqual(1);
      const executed = (logs: ReturnType<typeof captureLogs>): number => logs.records.filter((x) => x.message.startsWith("Executing 'Functions.work'")).length;
      expect(executed(logsA)).toBeGreaterThan(0);
      expect(executed(logsB)).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.stop({ drainMs: 5000 }), b.stop({ drainMs: 5000 })]);
    }
  }, 60_000);

  it('ends a work item that always fails in warden-work-poison after the configured tries, with a Warden.Work.Failed alert', async () => {
    // Its own Azurite, so the real queue names cannot collide with other tests.
    const azurite = await startAzurite();
    let tries = 0;
    const logs = captureLogs();
    const r = rig(azurite.connectionString, WORK_QUEUE, async () => {
      tries++;
      throw new TransientError('ServiceUnavailable', 'ARM answered 503');
    });
    const host = await hostOn(azurite.connectionString, WORK_QUEUE, { logSink: logs });
    try {
      expect(host.config.queues.maxDequeueCount).toBe(3);
      const [item] = await r.pipeline.enqueue([{ capability: 'rbac', target: 'group-1', reason: 'group changed', trigger: { kind: 'notification', id: 'n-1' } }]);
      const poison = new QueueClient(azurite.connectionString, WORK_POISON_QUEUE);
      const msg = await waitFor('the poison message', async () => (await poison.exists()) && (await poison.peekMessages()).peekedMessageItems[0], 20_000, 100);
      const decoded = decodeWorkMessage(Buffer.from(msg.messageText, 'base64').toString('utf8'));
      expect(decoded).toEqual({ ok: true, item });
      expect(tries).toBe(3);
      expect(r.alerter.sent).toEqual([
        expect.objectContaining({
          type: 'Warden.Work.Failed',
          subject: 'group-1',
          severity: 'critical',
          summary: expect.stringContaining('failed 3 times; the message moves to warden-work-poison'),
        }),
      ]);
      expect(r.audit.records).toEqual([expect.objectContaining({ capability: 'rbac', target: 'group-1', outcome: 'failed' })]);
      expect(await drained(r.queue)).toBe(true);
      expect(logs.text()).toMatch(/moved to 'warden-work-poison'/);
    } finally {
      await host.stop({ drainMs: 2000 });
      await azurite.stop();
    }
  }, 60_000);
});
