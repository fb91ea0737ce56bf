/**
 * The work pipeline: triggers queue work items on `warden-work`; the `work` function hands each message
 * to {@link WorkPipeline.handle}, which coalesces per target (see `coalesce.ts`), runs at most one
 * reconcile and decides retries from the error class:
 * - throttled / transient: thrown, so the host retries after its visibility timeout;
 * - terminal: recorded in the audit trail, alerted, message completed (retrying cannot help);
 * - the last try (`dequeueCount` = `maxDequeueCount`) still failing: `Warden.Work.Failed` is alerted,
 *   then the error is thrown and the host moves the message to `warden-work-poison`.
 * Nothing is dropped silently: an unparsable message is terminal too (recorded and alerted).
 */
import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import { CAPABILITIES, type CapabilityName, type Finding, type Trigger } from '../capability';
import { systemClock, type Clock } from '../clock';
import { classifyError, codeOf, messageOf, TerminalError, TransientError, type ErrorClass } from '../errors';
import type { Logger } from '../logging';
import type { Mode } from '../policy';
import type { Alerter } from '../ports/alerts';
import type { AuditLog, AuditRecord } from '../ports/audit';
import { redact } from '../redact';
import { ConflictError, decide, emptyState, TargetStateStore, type TargetState } from './coalesce';
import { QUEUE_DEFAULTS } from './hostConfig';
import { decodeWorkMessage, newWorkItem, WORK_POISON_QUEUE, type WorkItem, type WorkRequest } from './item';
import { enqueueWork, sendWorkItems, settleLimited } from './queue';

/** What a reconciler gets besides the item. */
export interface ReconcileContext {
  invocationId: string;
  /** 1 on the first try. */
  dequeueCount: number;
  logger: Logger;
  /** Aborted when this host lost the target's claim (its lease ran out and another host took over). */
  signal: AbortSignal;
}

/** What a reconcile reports. `ReconcileReport` from `shared/reconcile.ts` satisfies it. */
export interface ReconcileOutcome {
  /** One line for the log. */
  summary?: string;
  /** Some change failed in a way a retry can fix: the pipeline retries the whole reconcile. */
  retryable?: boolean;
}

export type Reconciler = (item: WorkItem, ctx: ReconcileContext) => Promise<ReconcileOutcome | void>;
export type Reconcilers = Partial<Record<CapabilityName, Reconciler>>;
/** Every target of a capability, for the sweep. */
export type TargetListers = Partial<Record<CapabilityName, () => Promise<string[]>>>;

export interface WorkPipelineDeps {
  /** The `warden-work` queue. */
  queue: QueueClient;
  /** The coalescing table (`wardenwork`); created on first use. */
  table: TableClient;
  reconcilers: Reconcilers;
  /** Target listers for the sweep; a capability without one is not swept. */
  targets?: TargetListers;
  alerter: Alerter;
  /** Where terminal and exhausted failures are recorded, with the policy's mode. */
  audit?: { log: AuditLog; mode: Mode };
  logger: Logger;
  clock?: Clock;
  classify?: (err: unknown) => ErrorClass;
  /** The host's `maxDequeueCount` (host.json `extensions.queues`, see `loadHostConfig`). Default 5. */
  maxDequeueCount?: number;
  /** After a successful reconcile, new work for that target waits up to this long, folded into one follow-up. Default 5 s. */
  coalesceWindowMs?: number;
  /** A claim not renewed for this long belongs to a dead host and is taken over. Default 60 s. */
  leaseMs?: number;
  /** Messages sent at once by `enqueue`. Default 16. */
  sendConcurrency?: number;
}

export interface HandleMeta {
  /** From `context.triggerMetadata.dequeueCount`. */
  dequeueCount: number;
  invocationId: string;
  /** The invocation's logger (`loggerFromContext`); defaults to the pipeline's. */
  logger?: Logger;
  /** Queue message id, named in the alert for an unparsable message. */
  messageId?: string;
}

export type WorkStatus =
  /** This message ran a reconcile. */
  | 'reconciled'
  /** A reconcile that started after this message was queued covers it. */
  | 'covered'
  /** A follow-up reconcile is already promised. */
  | 'coalesced'
  /** Handed over to one follow-up (the target was reconciled moments ago, or is being reconciled now). */
  | 'deferred'
  /** Terminal failure: recorded, alerted, completed. */
  | 'failed'
  /** Unparsable message: recorded, alerted, completed. */
  | 'invalid';

export interface WorkResult {
  status: WorkStatus;
  item?: WorkItem;
  detail: string;
}

export interface SweepReport {
  queued: Partial<Record<CapabilityName, number>>;
}

export interface WorkPipeline {
  /**
   * Queues work items (base64 JSON, never expiring); returns them with their ids. Throws AggregateError
   * naming what was not queued. With `delayMs`, a request whose capability and target this process
   * already queued, still invisible and due no later, is not queued again: its item is returned for it.
   */
  enqueue(requests: readonly WorkRequest[], options?: { delayMs?: number }): Promise<WorkItem[]>;
  /** Runs one queue message. Throws only for what the host must retry. */
  handle(entry: unknown, meta: HandleMeta): Promise<WorkResult>;
  /** Queues every target of every capability; a failing lister does not stop the others (AggregateError at the end). */
  sweep(trigger: Trigger, logger?: Logger): Promise<SweepReport>;
  readonly maxDequeueCount: number;
}

const WORK_FAILED = 'Warden.Work.Failed';
/** The longest visibility delay Storage queues accept (7 days), in seconds. */
const MAX_VISIBILITY_S = 7 * 24 * 3600;
/**
 * An invisible item covers new requests only until this long before it is due: the queue counts its
 * delay from when it received the message, never earlier than our estimate, and this leaves room for
 * clocks that tick in coarser steps.
 */
const INVISIBLE_LEAD_MS = 250;

/** A delayed item this process queued (or is queueing), not visible yet. */
interface InvisibleItem {
  item: WorkItem;
  /** Its `enqueuedAt`, on the pipeline's clock: when it becomes visible. */
  enqueuedAt: number;
  /** When it becomes visible at the earliest, on this process's monotonic clock (`performance.now()`). */
  visibleAtReal: number;
  /** Whether the send succeeded (a request it covers is queued after all when it did not). */
  sent: Promise<boolean>;
}

/**
 * Builds the pipeline from its ports. Call once per process (composition root).
 * @example
 * const work = createWorkPipeline({ queue, table, reconcilers, targets, alerter, audit: { log, mode }, logger });
 * await work.enqueue([{ capability: 'rbac', target: groupId, reason: 'group changed', trigger: { kind: 'notification', id } }]);
 */
export function createWorkPipeline(deps: WorkPipelineDeps): WorkPipeline {
  const clock = deps.clock ?? systemClock;
  const classify = deps.classify ?? classifyError;
  const maxDequeueCount = deps.maxDequeueCount ?? QUEUE_DEFAULTS.maxDequeueCount;
  const windowMs = deps.coalesceWindowMs ?? 5000;
  const leaseMs = deps.leaseMs ?? 60_000;
  const store = new TargetStateStore(deps.table);
  const now = (): number => clock.now().getTime();
  let queueReady: Promise<unknown> | undefined;

  const ensureQueue = (): Promise<unknown> => {
    queueReady ??= deps.queue.createIfNotExists().catch((err: unknown) => {
      queueReady = undefined;
      throw err;
    });
    return queueReady;
  };

  async function send(items: WorkItem[], delayMs: number | undefined): Promise<void> {
    await ensureQueue();
    await sendWorkItems(deps.queue, items, { ...(delayMs !== undefined ? { delayMs } : {}), concurrency: deps.sendConcurrency ?? 16 });
  }

  /**
   * Delayed work this process queued, per capability and target, until it becomes visible. A new
   * delayed request for the same target is not queued while one is still invisible and will become
   * visible no later than the new one would: nobody can have received it yet, and it is stamped with
   * the time it becomes visible (below), so the coalescing in `handle` treats it as queued after the
   * new request. Whatever reconcile it leads to therefore starts after the request came, and reads
   * the change the request is about. A burst of notifications for one target thus costs one queue
   * message per delay, not one per notification.
   */
  const invisible = new Map<string, InvisibleItem>();

  function coveringItem(key: string, clockNow: number, realNow: number, delayS: number): InvisibleItem | undefined {
    const p = invisible.get(key);
    if (!p) return undefined;
    if (p.visibleAtReal - INVISIBLE_LEAD_MS <= realNow || p.enqueuedAt - INVISIBLE_LEAD_MS <= clockNow) {
      invisible.delete(key);
      return undefined;
    }
    // It must run no later than this request asks to: a long-delayed item does not cover a short delay.
    return p.visibleAtReal <= realNow + delayS * 1000 ? p : undefined;
  }

  async function enqueue(requests: readonly WorkRequest[], options: { delayMs?: number } = {}): Promise<WorkItem[]> {
    await ensureQueue();
    const concurrency = deps.sendConcurrency ?? 16;
    const delayS = options.delayMs !== undefined && options.delayMs > 0 ? Math.min(Math.ceil(options.delayMs / 1000), MAX_VISIBILITY_S) : 0;
    if (delayS === 0) return enqueueWork(deps.queue, requests, { ...options, now: clock.now(), concurrency });

    const clockNow = now();
    const realNow = performance.now();
    for (const [key, p] of invisible) if (p.visibleAtReal <= realNow) invisible.delete(key);
    const out: WorkItem[] = new Array<WorkItem>(requests.length);
    const fresh: Array<{ index: number; key: string; pending: InvisibleItem; settle: (sent: boolean) => void }> = [];
    const covered: Array<{ index: number; pending: InvisibleItem }> = [];
    requests.forEach((req, index) => {
      const key = `${req.capability}|${req.target.trim().toLowerCase()}`;
      const p = coveringItem(key, clockNow, realNow, delayS);
      if (p) {
        covered.push({ index, pending: p });
        return;
      }
      // Stamped with the time it becomes visible (the queue counts the delay from when it receives the
      // message, which is later than now), so coalescing never counts it as older than it is.
      const item = newWorkItem(req, new Date(clockNow + delayS * 1000));
      let settle: (sent: boolean) => void = () => undefined;
      const sent = new Promise<boolean>((resolve) => (settle = resolve));
      const pending: InvisibleItem = { item, enqueuedAt: clockNow + delayS * 1000, visibleAtReal: realNow + delayS * 1000, sent };
      // Registered before anything is awaited, so concurrent requests see it at once.
      invisible.set(key, pending);
      fresh.push({ index, key, pending, settle });
      out[index] = item;
    });

    const results = await settleLimited(
      fresh.map((f) => () => sendWorkItems(deps.queue, [f.pending.item], { delayMs: delayS * 1000, concurrency: 1 })),
      concurrency,
    );
    const failed: unknown[] = [];
    results.forEach((r, i) => {
      const f = fresh[i];
      if (!f) return;
      if (r.status === 'rejected') {
        failed.push(r.reason);
        if (invisible.get(f.key) === f.pending) invisible.delete(f.key);
      }
      f.settle(r.status === 'fulfilled');
    });

    // A request covered by an item whose send failed is queued after all (it may find another one).
    const retry: Array<{ index: number; req: WorkRequest }> = [];
    for (const c of covered) {
      if (await c.pending.sent) out[c.index] = c.pending.item;
      else retry.push({ index: c.index, req: requests[c.index] as WorkRequest });
    }
    if (retry.length > 0) {
      try {
        const again = await enqueue(
          retry.map((r) => r.req),
          options,
        );
        retry.forEach((r, i) => (out[r.index] = again[i] as WorkItem));
      } catch (err) {
        failed.push(...(err instanceof AggregateError ? (err.errors as unknown[]) : [err]));
      }
    }
    if (failed.length > 0) {
      throw new AggregateError(failed, `Could not queue ${failed.length} of ${requests.length} work item(s): ${messageOf(failed[0])}`);
    }
    return out;
  }

  function followUpOf(item: WorkItem): WorkItem {
    return newWorkItem(
      { capability: item.capability, target: item.target, reason: `follow-up: ${item.reason}`.slice(0, 1024), trigger: { kind: 'followup', id: item.id } },
      clock.now(),
    );
  }

  async function recordAndAlert(
    subject: { capability: CapabilityName | 'work'; target: string; trigger: Trigger },
    err: unknown,
    summary: string,
    details: Record<string, unknown>,
    meta: HandleMeta,
  ): Promise<void> {
    const error = { code: codeOf(err) ?? (err instanceof Error ? err.name : 'Error'), message: redact(messageOf(err)) };
    if (deps.audit) {
      const rec: AuditRecord = {
        time: clock.now().toISOString(),
        capability: subject.capability,
        target: subject.target,
        action: 'reconcile',
        outcome: 'failed',
        trigger: subject.trigger,
        mode: deps.audit.mode,
        invocationId: meta.invocationId,
        summary,
        error,
        details,
      };
      await deps.audit.log.record([rec]);
    }
    const finding: Finding = {
      type: WORK_FAILED,
      subject: subject.target,
      severity: 'critical',
      summary,
      details: { ...details, capability: subject.capability, error, invocationId: meta.invocationId },
      actions: [
        'Look up the invocation id in the logs, fix the cause, then run /api/remediate for this target ' +
          `(or move the message back from ${WORK_POISON_QUEUE}).`,
      ],
    };
    await deps.alerter.send([finding]);
  }

  /** Writes `next` over the stored state; false when someone else wrote first. */
  async function tryWrite(item: WorkItem, next: TargetState, etag: string | undefined): Promise<boolean> {
    try {
      await store.write(item.capability, next, etag);
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
  }

  /** Renews the claim's lease while the reconcile runs; aborts `ac` when the claim was taken over. */
  function startHeartbeat(item: WorkItem, ac: AbortController, log: Logger): () => Promise<void> {
    let beating: Promise<void> = Promise.resolve();
    const beat = async (): Promise<void> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await store.read(item.capability, item.target);
        if (!cur || !cur.state.running || cur.state.claimId !== item.id) {
          ac.abort(new Error('Another host took over this target'));
          return;
        }
        if (await tryWrite(item, { ...cur.state, leaseUntil: now() + leaseMs }, cur.etag)) return;
      }
    };
    const timer = setInterval(() => {
      beating = beating.then(beat).catch((err: unknown) => log.warn('Could not renew the claim on the target', { error: err }));
    }, Math.max(50, Math.floor(leaseMs / 3)));
    timer.unref();
    return async () => {
      clearInterval(timer);
      await beating;
    };
  }

  /** Releases the claim; queues the follow-up someone asked for while we ran. */
  async function finish(item: WorkItem, startedAt: number, succeeded: boolean, error: string, log: Logger): Promise<void> {
    let followUp: WorkItem | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = await store.read(item.capability, item.target);
      if (!cur || cur.state.claimId !== item.id || !cur.state.running) {
        log.warn('The claim on the target was taken over while reconciling; leaving the state to the new claimant');
        return;
      }
      if (cur.state.followUp === 'requested' && !followUp) {
        followUp = followUpOf(item);
        // The follow-up waits out the rest of the window, so a burst costs one reconcile per window.
        await send([followUp], Math.max(0, startedAt + windowMs - now()));
      }
      const next: TargetState = {
        ...cur.state,
        running: false,
        claimId: '',
        leaseUntil: undefined,
        lastSuccessStartedAt: succeeded ? startedAt : cur.state.lastSuccessStartedAt,
        followUp: followUp ? 'queued' : cur.state.followUp === 'requested' ? 'none' : cur.state.followUp,
        followUpId: followUp ? followUp.id : cur.state.followUpId,
        followUpBy: followUp ? item.id : cur.state.followUpBy,
        lastOutcome: succeeded ? 'succeeded' : 'failed',
        lastError: error,
        lastFinishedAt: now(),
      };
      if (await tryWrite(item, next, cur.etag)) {
        if (followUp) log.info('Queued one follow-up reconcile for work that arrived during this one', { followUpId: followUp.id });
        return;
      }
    }
    throw new TransientError('WorkStateContention', `Could not release the claim on ${item.capability} target ${item.target}`);
  }

  /**
   * Work items this process is reconciling right now. A message can come back while its own run is
   * still going here (the invocation outlived the host's function timeout and the host redelivered
   * it): taking over would run the same writes twice at once, so the live run is asked for a
   * follow-up instead. (Under the real Functions host a timeout restarts the worker, so the set is
   * empty and the redelivered message takes over at once.)
   */
  const inProgress = new Set<string>();

  async function run(item: WorkItem, meta: HandleMeta, log: Logger): Promise<WorkResult> {
    const reconciler = deps.reconcilers[item.capability];
    if (!reconciler) throw new TerminalError('NoReconciler', `No reconciler is registered for capability "${item.capability}"`);
    for (let attempt = 0; attempt < 20; attempt++) {
      const stored = await store.read(item.capability, item.target);
      const state = stored?.state;
      const t = now();
      const d = decide(state, { id: item.id, enqueuedAt: Date.parse(item.enqueuedAt), isFollowUp: item.trigger.kind === 'followup' }, t, windowMs);
      switch (d.kind) {
        case 'covered':
          return { status: 'covered', item, detail: d.by === 'running' ? 'a reconcile that started after it is running' : 'a later reconcile succeeded' };
        case 'alreadyRequested':
          return { status: 'coalesced', item, detail: 'a follow-up reconcile is already promised' };
        case 'requestFollowUp': {
          if (!state || !(await tryWrite(item, { ...state, followUp: 'requested' }, stored.etag))) continue;
          return { status: 'deferred', item, detail: 'the running reconcile queues one follow-up when it finishes' };
        }
        case 'defer': {
          if (!state) continue;
          const f = followUpOf(item);
          const ours = state.followUp === 'queued' && state.followUpBy === item.id;
          // Promise first, then queue: concurrent messages see the promise and queue nothing more. If
          // queueing fails, this message is retried, finds its own promise and queues it again.
          if (!ours && !(await tryWrite(item, { ...state, followUp: 'queued', followUpId: f.id, followUpBy: item.id }, stored.etag))) continue;
          await send([f], d.delayMs);
          return { status: 'deferred', item, detail: `one follow-up reconcile in ${Math.ceil(d.delayMs / 1000)} s` };
        }
        case 'claim': {
          if (d.takeover && state?.claimId === item.id && inProgress.has(item.id)) {
            if (state.followUp === 'requested') return { status: 'coalesced', item, detail: 'its own run is still going here; a follow-up is promised' };
            if (!(await tryWrite(item, { ...state, followUp: 'requested' }, stored?.etag))) continue;
            log.warn('The message came back while its own reconcile is still running here; the running reconcile queues one follow-up');
            return { status: 'deferred', item, detail: 'its own run is still going; the running reconcile queues one follow-up when it finishes' };
          }
          const base = state ?? emptyState(item.target);
          const claimed: TargetState = {
            ...base,
            target: item.target,
            running: true,
            claimId: item.id,
            runStartedAt: t,
            leaseUntil: t + leaseMs,
            followUp: 'none',
            followUpId: '',
            followUpBy: '',
            runs: base.runs + 1,
          };
          if (!(await tryWrite(item, claimed, stored?.etag))) continue;
          if (d.takeover) log.warn('Took over the target from a reconcile that never finished');
          const ac = new AbortController();
          const stopHeartbeat = startHeartbeat(item, ac, log);
          let outcome: ReconcileOutcome | void;
          inProgress.add(item.id);
          try {
            outcome = await reconciler(item, { invocationId: meta.invocationId, dequeueCount: meta.dequeueCount, logger: log, signal: ac.signal });
          } catch (err) {
            inProgress.delete(item.id);
            await stopHeartbeat();
            await finish(item, t, false, redact(messageOf(err)), log);
            throw err;
          }
          inProgress.delete(item.id);
          await stopHeartbeat();
          if (outcome?.retryable) {
            const err = new TransientError('ReconcileIncomplete', `Some changes failed and will be retried${outcome.summary ? `: ${outcome.summary}` : ''}`);
            await finish(item, t, false, err.message, log);
            throw err;
          }
          await finish(item, t, true, '', log);
          return { status: 'reconciled', item, detail: outcome?.summary ?? 'reconciled' };
        }
      }
    }
    throw new TransientError('WorkStateContention', `Too many concurrent updates of ${item.capability} target ${item.target}`);
  }

  async function handle(entry: unknown, meta: HandleMeta): Promise<WorkResult> {
    const base = meta.logger ?? deps.logger;
    const decoded = decodeWorkMessage(entry);
    if (!decoded.ok) {
      const err = new TerminalError('InvalidWorkItem', `Unparsable work item: ${decoded.error}`);
      const summary = `Warden dropped an unparsable work message${meta.messageId ? ` (${meta.messageId})` : ''}: ${decoded.error}`;
      base.error(summary, { messageId: meta.messageId, dequeueCount: meta.dequeueCount });
      await recordAndAlert({ capability: 'work', target: meta.messageId ?? 'unknown', trigger: { kind: 'event' } }, err, summary, { dequeueCount: meta.dequeueCount }, meta);
      return { status: 'invalid', detail: decoded.error };
    }
    const item = decoded.item;
    const log = base.child({
      capability: item.capability,
      target: item.target,
      workItemId: item.id,
      trigger: item.trigger.kind,
      triggerId: item.trigger.id,
      dequeueCount: meta.dequeueCount,
    });
    try {
      const res = await run(item, meta, log);
      if (res.status === 'reconciled') log.info(`Reconciled ${item.capability} target: ${res.detail}`);
      else log.debug(`Completed work without a reconcile (${res.status}): ${res.detail}`);
      return res;
    } catch (err) {
      const cls = classify(err);
      const why = redact(messageOf(err));
      const details = { reason: item.reason, trigger: item.trigger, workItemId: item.id, dequeueCount: meta.dequeueCount, errorClass: cls };
      if (cls === 'terminal') {
        const summary = `Reconcile of ${item.capability} target ${item.target} failed and will not be retried: ${why}`;
        log.error(summary, { error: err, errorClass: cls });
        await recordAndAlert(item, err, summary, details, meta);
        return { status: 'failed', item, detail: why };
      }
      if (meta.dequeueCount >= maxDequeueCount) {
        const summary = `Reconcile of ${item.capability} target ${item.target} failed ${meta.dequeueCount} times; the message moves to ${WORK_POISON_QUEUE}: ${why}`;
        log.error(summary, { error: err, errorClass: cls });
        try {
          await recordAndAlert(item, err, summary, details, meta);
        } catch (alertErr) {
          log.error('Could not alert the failed work item; it is still in the poison queue', { error: alertErr });
        }
      } else {
        log.warn(`Reconcile failed (${cls}); the host retries it (try ${meta.dequeueCount} of ${maxDequeueCount})`, { error: err, errorClass: cls });
      }
      throw err;
    }
  }

  async function sweep(trigger: Trigger, logger?: Logger): Promise<SweepReport> {
    const log = logger ?? deps.logger;
    const listers = deps.targets ?? {};
    const caps = CAPABILITIES.filter((c) => listers[c] !== undefined);
    // The sweep is also the periodic retry of alerts a sink failed to take (a one-off finding never
    // comes up again to retry it); alongside the queueing, so neither waits for the other.
    const flushed = flushAlertOutbox(log);
    const results = await Promise.allSettled(
      caps.map(async (capability) => {
        const list = listers[capability] as () => Promise<string[]>;
        const targets = [...new Set(await list())];
        await enqueue(targets.map((target) => ({ capability, target, reason: 'sweep', trigger })));
        log.info(`Queued ${targets.length} ${capability} target(s) for reconcile`, { capability, count: targets.length });
        return [capability, targets.length] as const;
      }),
    );
    const queued: Partial<Record<CapabilityName, number>> = {};
    const errors: unknown[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') queued[r.value[0]] = r.value[1];
      else {
        errors.push(r.reason);
        log.error(`Sweep of ${caps[i] ?? 'unknown'} failed`, { capability: caps[i], error: r.reason });
      }
    });
    await flushed;
    if (errors.length > 0) throw new AggregateError(errors, `The sweep failed for ${errors.length} capability(ies); the others were queued`);
    return { queued };
  }

  async function flushAlertOutbox(log: Logger): Promise<void> {
    try {
      const r = await deps.alerter.flushOutbox();
      if (r.pending > 0 || r.dropped > 0) log.warn('Alerts still waiting for their sinks after the sweep', { ...r });
    } catch (err) {
      // The alerter never throws; this guards the sweep against a broken one all the same.
      log.error('Retrying queued alerts failed', { error: err });
    }
  }

  return { enqueue, handle, sweep, maxDequeueCount };
}
