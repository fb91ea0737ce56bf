/**
 * The tenant file that seeds the emulator. Only the top level is validated here; each service
 * validates its own section (`directory` → Graph, `resources` → ARM, `vaults` → Key Vault), so the
 * format of a section lives beside the code that serves it.
 *
 * ```jsonc
 * {
 *   "tenantId": "<guid>",
 *   "subscriptionId": "<guid>",           // optional: the default subscription (else the first in resources)
 *   "directory": { users, groups, servicePrincipals, applications, callerAppId },   // emulator/graph/state.ts
 *   "resources": { subscriptions: [{ id, resourceGroups: [{ name, location, workspaces, registries }] }],
 *                  roleAssignments, callerObjectId },                                  // emulator/arm/schema.ts
 *   "vaults": [{ name, secrets: [{ name, value, expiresOn }] }],                       // emulator/keyvault/index.ts
 *   "eventSubscriptions": [{ name, topic, endpoint, schema, includedEventTypes }]      // optional, see EventSubscription
 * }
 * ```
 *
 * A time-valued key (its name ends in DateTime, Time, On, Before, After or At: `endDateTime`, `expiresOn`,
 * `notBefore`…) may hold `now`, `now+10d`, `now-5d`, `now+12h` (units s, m, h, d, w): it becomes an ISO
 * time relative to when the file is loaded, so "a secret that expires in ten days" stays true.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

export const EventSubscriptionSpec = z.object({
  name: z.string().min(1),
  topic: z.string().default('*'),
  endpoint: z.url(),
  schema: z.enum(['EventGridSchema', 'CloudEventSchemaV1_0']).default('EventGridSchema'),
  includedEventTypes: z.array(z.string()).optional(),
  subjectBeginsWith: z.string().optional(),
  subjectEndsWith: z.string().optional(),
});

export const TenantFile = z.object({
  tenantId: z.string().min(1),
  subscriptionId: z.string().min(1).optional(),
  directory: z.unknown().optional(),
  resources: z.unknown().optional(),
  vaults: z.unknown().optional(),
  eventSubscriptions: z.array(EventSubscriptionSpec).optional(),
});

/** A tenant file as written (sections are checked by their services). */
export type TenantFile = z.input<typeof TenantFile>;
export type ParsedTenant = z.output<typeof TenantFile>;

/** Where the demo tenant lives (works from `emulator/` under tsx and Jest alike). */
export const DEMO_TENANT_PATH = join(__dirname, 'tenants', 'demo.json');

export class TenantFileError extends Error {
  override name = 'TenantFileError';
}

const RELATIVE = /^now(?:([+-])(\d+(?:\.\d+)?)([smhdw]))?$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

const TIME_KEY = /(DateTime|Time|On|Before|After|At)$/;

function relativeTime(value: string, nowMs: number): string | undefined {
  const m = RELATIVE.exec(value);
  if (!m) return undefined;
  const offset = m[1] ? (m[1] === '-' ? -1 : 1) * Number(m[2]) * (UNIT_MS[m[3] ?? 'd'] ?? 0) : 0;
  return new Date(nowMs + offset).toISOString();
}

/** Replaces `now±N<unit>` under time-valued keys anywhere in a JSON value with ISO times relative to `nowMs`. */
export function resolveRelativeTimes(value: unknown, nowMs: number): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveRelativeTimes(v, nowMs));
  // Only plain JSON objects: Dates and other instances (programmatic tenants) pass through untouched.
  if (typeof value === 'object' && value !== null && [Object.prototype, null].includes(Object.getPrototypeOf(value) as object | null)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, typeof v === 'string' && TIME_KEY.test(k) ? (relativeTime(v, nowMs) ?? v) : resolveRelativeTimes(v, nowMs)]),
    );
  }
  return value;
}

/** Reads (when given a path) and validates a tenant file's top level. */
export function loadTenant(source: TenantFile | string, cwd = process.cwd(), nowMs = Date.now()): ParsedTenant {
  let raw: unknown = source;
  let origin = 'tenant object';
  if (typeof source === 'string') {
    const path = isAbsolute(source) ? source : resolve(cwd, source);
    origin = path;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new TenantFileError(`Cannot read tenant file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  const parsed = TenantFile.safeParse(resolveRelativeTimes(raw, nowMs));
  if (!parsed.success) throw new TenantFileError(`Invalid tenant file (${origin}):\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The default subscription: the file's `subscriptionId`, else the first subscription in `resources`. */
export function defaultSubscriptionId(t: ParsedTenant): string {
  if (t.subscriptionId) return t.subscriptionId;
  const subs = (t.resources as { subscriptions?: Array<{ id?: unknown }> } | undefined)?.subscriptions;
  const first = Array.isArray(subs) ? subs[0]?.id : undefined;
  return typeof first === 'string' ? first : '00000000-0000-0000-0000-000000000000';
}
