/**
 * `host.json` as the Functions host reads it: the file at the app root, then app settings named
 * `AzureFunctionsJobHost__<path>` (e.g. `AzureFunctionsJobHost__extensions__queues__maxDequeueCount`)
 * overriding single values, exactly like the real host. The project's host runner and the work
 * pipeline read the same values from here, so "after N tries it is poison" means the same N to both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/** Storage-queue trigger settings (host.json `extensions.queues`), times in milliseconds. */
export interface QueuesConfig {
  /** Messages fetched per poll (1–32). */
  batchSize: number;
  /** When this few messages are still running, the next batch is fetched. */
  newBatchThreshold: number;
  /** Longest wait between polls of an empty queue. */
  maxPollingIntervalMs: number;
  /** How long a failed message stays invisible before its next try. */
  visibilityTimeoutMs: number;
  /** Tries before a message moves to `<queue>-poison`. */
  maxDequeueCount: number;
  messageEncoding: 'base64' | 'none';
}

export interface HostConfig {
  /** `functionTimeout`; undefined = unlimited. */
  functionTimeoutMs: number | undefined;
  /** `extensions.http.routePrefix` (default `api`). */
  routePrefix: string;
  queues: QueuesConfig;
}

/** The host's own defaults (Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x). */
export const QUEUE_DEFAULTS = {
  batchSize: 16,
  maxPollingIntervalMs: 60_000,
  visibilityTimeoutMs: 0,
  maxDequeueCount: 5,
  messageEncoding: 'base64',
} as const;

const OVERRIDE_PREFIX = 'azurefunctionsjobhost__';

/**
 * Parses a .NET TimeSpan as host.json writes it: `hh:mm:ss`, `hh:mm:ss.fff` or `d.hh:mm:ss`.
 * Returns milliseconds; `-1` (unlimited) returns undefined.
 */
export function parseTimeSpan(value: string): number | undefined {
  const v = value.trim();
  if (v === '-1') return undefined;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(v);
  if (!m) throw new Error(`"${value}" is not a TimeSpan (expected hh:mm:ss)`);
  const [, d, h, min, s, frac] = m;
  const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
  return ((Number(d ?? 0) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(s) * 1000 + ms;
}

const timeSpan = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return typeof v === 'number' ? v : parseTimeSpan(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: e instanceof Error ? e.message : String(e) });
    return z.NEVER;
  }
});
const whole = (min: number, max: number): z.ZodCoercedNumber => z.coerce.number().int().min(min).max(max);

const hostJsonSchema = z.looseObject({
  version: z.string().optional(),
  functionTimeout: timeSpan.optional(),
  extensions: z
    .looseObject({
      http: z.looseObject({ routePrefix: z.string().optional() }).optional(),
      queues: z
        .looseObject({
          batchSize: whole(1, 32).optional(),
          newBatchThreshold: whole(0, 10_000).optional(),
          maxPollingInterval: timeSpan.optional(),
          visibilityTimeout: timeSpan.optional(),
          maxDequeueCount: whole(1, 10_000).optional(),
          messageEncoding: z
            .string()
            .transform((s) => s.toLowerCase())
            .pipe(z.enum(['base64', 'none']))
            .optional(),
        })
        .optional(),
    })
    .optional(),
});

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets `path` in `target`, matching existing keys case-insensitively like the host's configuration. */
function setPath(target: JsonObject, path: string[], value: string): void {
  let node = target;
  path.forEach((seg, i) => {
    const key = Object.keys(node).find((k) => k.toLowerCase() === seg.toLowerCase()) ?? seg;
    if (i === path.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (isObject(next)) node = next;
    else {
      const created: JsonObject = {};
      node[key] = created;
      node = created;
    }
  });
}

function deepMerge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const existing = Object.keys(out).find((x) => x.toLowerCase() === k.toLowerCase()) ?? k;
    const cur = out[existing];
    out[existing] = isObject(cur) && isObject(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/** The folder holding `host.json`, searched upwards from `start` (the app root, source or built). */
export function findAppRoot(start: string = __dirname): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'host.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

export interface LoadHostConfigOptions {
  /** Folder of `host.json`; default: found upwards from this module. */
  appRoot?: string;
  /** App settings; `AzureFunctionsJobHost__…` keys override host.json values. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values merged over the file before the overrides (tests shorten timeouts this way). */
  override?: JsonObject;
}

/**
 * Reads host.json with the host's defaults and app-setting overrides. Throws naming the bad key.
 * @example const { queues } = loadHostConfig({ env: process.env }); queues.maxDequeueCount // 5
 */
export function loadHostConfig(opts: LoadHostConfigOptions = {}): HostConfig {
  const root = opts.appRoot ?? findAppRoot();
  let raw: JsonObject = {};
  const file = root ? join(root, 'host.json') : undefined;
  if (file && existsSync(file)) {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!isObject(parsed)) throw new Error(`${file} must hold a JSON object`);
    raw = parsed;
  }
  if (opts.override) raw = deepMerge(raw, opts.override);
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined || !k.toLowerCase().startsWith(OVERRIDE_PREFIX)) continue;
    const path = k.slice(OVERRIDE_PREFIX.length).split('__').filter(Boolean);
    if (path.length > 0) setPath(raw, path, v);
  }
  const res = hostJsonSchema.safeParse(raw);
  if (!res.success) {
    const issues = res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid host.json: ${issues}`);
  }
  const q = res.data.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? QUEUE_DEFAULTS.batchSize;
  return {
    functionTimeoutMs: res.data.functionTimeout,
    routePrefix: (res.data.extensions?.http?.routePrefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    queues: {
      batchSize,
      // The host's default is N * batchSize / 2 for N processors.
      newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2) * availableParallelism(),
      maxPollingIntervalMs: q.maxPollingInterval ?? QUEUE_DEFAULTS.maxPollingIntervalMs,
      visibilityTimeoutMs: q.visibilityTimeout ?? QUEUE_DEFAULTS.visibilityTimeoutMs,
      maxDequeueCount: q.maxDequeueCount ?? QUEUE_DEFAULTS.maxDequeueCount,
      messageEncoding: q.messageEncoding ?? QUEUE_DEFAULTS.messageEncoding,
    },
  };
}
