/**
 * Runs one function invocation the way the Functions host does: a real `InvocationContext` whose
 * `logHandler` writes one-line logs, "Executing"/"Executed" lines around it, `functionTimeout`
 * applied, and every in-flight invocation tracked so a graceful stop can wait for them.
 */
import { randomUUID } from 'node:crypto';
import { InvocationContext, trigger as triggers, type FunctionTrigger, type LogLevel, type TriggerMetadata } from '@azure/functions';
import type { RegisteredFunction } from '../shared/registration';
import { formatArgs, type HostLogger, type HostLogLevel } from './log';

export type InvocationResult = { ok: true; value: unknown; invocationId: string } | { ok: false; error: unknown; invocationId: string };

export interface InvokeRequest {
  fn: RegisteredFunction;
  input: unknown;
  /** Why it runs, as the host says it: "New queue message detected on 'warden-work'." */
  reason: string;
  triggerMetadata?: TriggerMetadata;
  /** `%SETTING%` values of the trigger, resolved from app settings. */
  resolved?: { queueName?: string; schedule?: string };
}

const LEVELS: Record<LogLevel, HostLogLevel> = {
  trace: 'trace',
  debug: 'debug',
  information: 'information',
  warning: 'warning',
  error: 'error',
  critical: 'critical',
  none: 'trace',
};

/** The trigger binding as the worker would describe it in `context.options.trigger`. */
export function triggerOf(fn: RegisteredFunction, resolved?: { queueName?: string; schedule?: string }): FunctionTrigger {
  switch (fn.kind) {
    case 'http':
      return fn.options.trigger ?? triggers.http({
        ...(fn.options.authLevel ? { authLevel: fn.options.authLevel } : {}),
        ...(fn.options.methods ? { methods: fn.options.methods } : {}),
        ...(fn.options.route !== undefined ? { route: fn.options.route } : {}),
      });
    case 'eventGrid':
      return fn.options.trigger ?? triggers.eventGrid({});
    case 'timer':
      return fn.options.trigger ?? triggers.timer({ schedule: resolved?.schedule ?? fn.options.schedule });
    case 'storageQueue':
      return fn.options.trigger ?? triggers.storageQueue({ queueName: resolved?.queueName ?? fn.options.queueName, connection: fn.options.connection });
  }
}

class TimeoutError extends Error {
  constructor(name: string, ms: number) {
    super(`Timeout value of ${ms} ms exceeded by function '${name}'`);
    this.name = 'FunctionTimeoutError';
  }
}

export class Invoker {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly log: HostLogger,
    private readonly timeoutMs: number | undefined,
  ) {}

  get activeCount(): number {
    return this.inflight.size;
  }

  /** Never throws: the outcome says whether the handler failed. */
  invoke(req: InvokeRequest): Promise<InvocationResult> {
    const p = this.run(req);
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  /** Resolves when every running invocation has finished, or after `ms` (returns how many still run). */
  async drain(ms: number): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.inflight.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inflight]),
        new Promise((r) => {
          timer = setTimeout(r, Math.max(0, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
    }
    return this.inflight.size;
  }

  private async run(req: InvokeRequest): Promise<InvocationResult> {
    const invocationId = randomUUID();
    const name = req.fn.name;
    const ref = { functionName: name, invocationId };
    const context = new InvocationContext({
      invocationId,
      functionName: name,
      logHandler: (level, ...args) => this.log.emit({ level: LEVELS[level], category: 'function', message: formatArgs(args), ...ref }),
      ...(req.triggerMetadata ? { triggerMetadata: req.triggerMetadata } : {}),
      options: { trigger: triggerOf(req.fn, req.resolved), extraInputs: [], extraOutputs: [] },
    });
    const started = Date.now();
    this.log.info(`Executing 'Functions.${name}' (Reason='${req.reason}', Id=${invocationId})`, ref);
    const handler = req.fn.options.handler as (input: unknown, ctx: InvocationContext) => unknown;
    const work = Promise.resolve().then(() => handler(req.input, context));
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      const value = await (this.timeoutMs === undefined
        ? work
        : Promise.race([
            work,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                timedOut = true;
                reject(new TimeoutError(name, this.timeoutMs as number));
              }, this.timeoutMs);
            }),
          ]).finally(() => clearTimeout(timer)));
      this.log.info(`Executed 'Functions.${name}' (Succeeded, Id=${invocationId}, Duration=${Date.now() - started}ms)`, ref);
      return { ok: true, value, invocationId };
    } catch (error) {
      if (!timedOut) {
        this.log.error(`Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms): ${formatArgs([error])}`, ref);
        return { ok: false, error, invocationId };
      }
      // The real host restarts the worker after a timeout, which ends the invocation. In one process we
      // cannot end it: it runs on, is tracked (drain waits for it) and logged as executed when it returns.
      this.log.error(`${formatArgs([error])} (Id=${invocationId}); the trigger treats it as failed, and the handler runs on in this process until it returns`, ref);
      const rest = work.then(
        () => this.log.warn(`Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms): timed out, then returned`, ref),
        (err: unknown) => this.log.error(`Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms): timed out, then ${formatArgs([err])}`, ref),
      );
      this.inflight.add(rest);
      void rest.finally(() => this.inflight.delete(rest));
      return { ok: false, error, invocationId };
    }
  }
}
