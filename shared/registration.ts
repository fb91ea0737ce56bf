/**
 * The one place functions register. Each `functions/*.ts` calls `fn.http/eventGrid/timer/storageQueue`
 * with the real `@azure/functions` option types: the registration goes to `app.*` when the real
 * Functions worker is present, and is recorded here either way so the project's host runner
 * (`host/`) serves exactly the same routes, schedules and queues. There is no second copy of them.
 *
 * Outside the worker `@azure/functions` is in "test mode": its `app.*` only print warnings and register
 * nothing (AZURE-API-FACTS §7), so we skip the call there rather than print one warning per function.
 */
import {
  app,
  type EventGridFunctionOptions,
  type HttpFunctionOptions,
  type StorageQueueFunctionOptions,
  type TimerFunctionOptions,
} from '@azure/functions';

export type RegisteredFunction =
  | { kind: 'http'; name: string; options: HttpFunctionOptions }
  | { kind: 'eventGrid'; name: string; options: EventGridFunctionOptions }
  | { kind: 'timer'; name: string; options: TimerFunctionOptions }
  | { kind: 'storageQueue'; name: string; options: StorageQueueFunctionOptions };

export type FunctionKind = RegisteredFunction['kind'];

const registry = new Map<string, RegisteredFunction>();

let runtimePresent: boolean | undefined;

/**
 * True inside the Azure Functions Node worker. `@azure/functions` makes the same check: the worker
 * injects the `@azure/functions-core` module, which no package on npm provides.
 */
export function isFunctionsRuntime(): boolean {
  if (runtimePresent === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous probe, exactly as @azure/functions does it
      require('@azure/functions-core');
      runtimePresent = true;
    } catch {
      runtimePresent = false;
    }
  }
  return runtimePresent;
}

/** Function names follow the host's rule: a letter, then letters, digits, `_` or `-`, at most 127. */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,126}$/;

function record(fnDef: RegisteredFunction, register: () => void): void {
  if (!NAME_RE.test(fnDef.name)) throw new Error(`Invalid function name "${fnDef.name}"`);
  if (registry.has(fnDef.name.toLowerCase())) throw new Error(`Function "${fnDef.name}" is registered twice`);
  registry.set(fnDef.name.toLowerCase(), fnDef);
  if (isFunctionsRuntime()) register();
}

/** Registers functions with the Functions host and the project's host runner at once. */
export const fn = {
  http(name: string, options: HttpFunctionOptions): void {
    record({ kind: 'http', name, options }, () => app.http(name, options));
  },
  eventGrid(name: string, options: EventGridFunctionOptions): void {
    record({ kind: 'eventGrid', name, options }, () => app.eventGrid(name, options));
  },
  /** `schedule` may be a `%SETTING%` expression; the host resolves it from the app settings. */
  timer(name: string, options: TimerFunctionOptions): void {
    record({ kind: 'timer', name, options }, () => app.timer(name, options));
  },
  /** `queueName` may be a `%SETTING%` expression; `connection` names an app setting. */
  storageQueue(name: string, options: StorageQueueFunctionOptions): void {
    record({ kind: 'storageQueue', name, options }, () => app.storageQueue(name, options));
  },
};

/** Every function registered so far in this process, in registration order. */
export function registeredFunctions(): readonly RegisteredFunction[] {
  return [...registry.values()];
}

/** One registered function by name (case-insensitive, like the host). */
export function findFunction(name: string): RegisteredFunction | undefined {
  return registry.get(name.toLowerCase());
}

/**
 * Resolves `%NAME%` binding expressions from app settings, as the Functions host does for timer
 * schedules and queue names. Throws naming the missing setting (the host marks the function in error).
 */
export function resolveAppSettingExpression(value: string, settings: Readonly<Record<string, string | undefined>>): string {
  return value.replace(/%([^%]+)%/g, (_m, key: string) => {
    const v = settings[key];
    if (v === undefined || v === '') throw new Error(`'%${key}%' does not resolve to a value (app setting ${key} is not set)`);
    return v;
  });
}
