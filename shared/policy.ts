/**
 * The policy (SPEC §2): one zod schema gives validation, the TypeScript types and the published
 * `policy.schema.json`. Unknown keys are errors (a typo must not silently disable a rule), and every
 * problem is reported with its JSON path.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { type Issue, PolicyError } from './errors';
import type { Settings } from './settings';

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const guid = (what: string) => z.string().regex(GUID_RE, `must be ${what} (a GUID)`);
const shortText = (max: number) => z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
const glob = shortText(256);
const httpsUrl = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(u.hostname));
    } catch {
      return false;
    }
  }, 'must be an https URL');

/** An ARM scope Warden may govern: a subscription, or a resource group in one. */
const scope = z
  .string()
  .max(512)
  .regex(
    /^\/subscriptions\/[0-9a-fA-F-]{36}(\/resourceGroups\/[-\w._()]{1,90})?$/i,
    'must be /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<name>',
  );

export const PRINCIPAL_TYPES = ['User', 'Group', 'ServicePrincipal', 'ForeignGroup', 'Device'] as const;
export const WORKSPACE_TYPE = 'Microsoft.MachineLearningServices/workspaces';

const binding = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1–63 letters, digits, dots, dashes or underscores, starting with a letter or digit'),
    group: guid('an Entra group object id'),
    role: shortText(128).describe('role name (e.g. "AzureML Data Scientist") or role definition GUID'),
    resourceType: z
      .string()
      .regex(/^[A-Za-z0-9.]+\/[A-Za-z0-9/]+$/, 'must be a resource type like Microsoft.MachineLearningServices/workspaces')
      .default(WORKSPACE_TYPE),
    match: z
      .strictObject({
        tags: z.record(shortText(512), z.string().max(256, 'must be at most 256 characters')).optional(),
        resourceGroups: z.array(glob).max(100).optional(),
        names: z.array(glob).max(100).optional(),
      })
      .default({}),
    principals: z.enum(['auto', 'group', 'members']).default('auto'),
  })
  .describe('Grants `role` to `group` (or its members) on every resource that matches.');

const forbidden = z.strictObject({
  role: shortText(128),
  principalTypes: z.array(z.enum(PRINCIPAL_TYPES)).min(1).optional(),
  action: z.enum(['alert', 'remove']).default('alert'),
});

const rbac = z
  .strictObject({
    bindings: z.array(binding).max(500).default([]),
    prune: z.enum(['managed', 'none']).default('managed'),
    forbidden: z.array(forbidden).max(50).default([]),
  })
  .superRefine((r, ctx) => {
    const seen = new Map<string, number>();
    r.bindings.forEach((b, i) => {
      const key = b.id.toLowerCase();
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['bindings', i, 'id'], message: `duplicates the id of bindings[${first}] ("${b.id}")` });
      } else seen.set(key, i);
    });
  });

const identity = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('SystemAssigned') }),
  z.strictObject({
    type: z.literal('UserAssigned'),
    id: z
      .string()
      .max(512)
      .regex(
        /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[^/]+$/i,
        'must be the resource id of a user-assigned managed identity',
      ),
  }),
]);

const compute = z.strictObject({
  requireManagedIdentity: z.boolean().default(true),
  identity: identity.default({ type: 'SystemAssigned' }),
  requireLocalAuthDisabled: z.boolean().default(false),
  onViolation: z
    .strictObject({
      cluster: z.enum(['assign-identity', 'scale-to-zero', 'delete', 'alert']).default('assign-identity'),
      instance: z.enum(['stop', 'delete', 'alert']).default('alert'),
    })
    .default({ cluster: 'assign-identity', instance: 'alert' }),
  exemptTag: shortText(512).default('warden-exempt'),
});

const workspaces = z.strictObject({
  flagRegistryAdminUser: z.boolean().default(true),
  flagCredentialDatastores: z.boolean().default(true),
});

const rotation = z.strictObject({
  appId: guid('an application (client) id'),
  vaultUrl: httpsUrl,
  secretName: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a Key Vault secret name (1–127 letters, digits and dashes)'),
});

const credentials = z
  .strictObject({
    warnDays: z.number().int().min(1).max(365).default(30),
    rotate: z.array(rotation).max(500).default([]),
    rotateDaysBefore: z.number().int().min(1).max(365).default(14),
    lifetimeDays: z.number().int().min(1).max(730).default(90),
    overlapDays: z.number().int().min(0).max(365).default(7),
    removeExpired: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    if (c.rotateDaysBefore >= c.lifetimeDays) {
      ctx.addIssue({ code: 'custom', path: ['rotateDaysBefore'], message: `must be less than lifetimeDays (${c.lifetimeDays}), or every rotation would be due at once` });
    }
    if (c.overlapDays >= c.lifetimeDays) {
      ctx.addIssue({ code: 'custom', path: ['overlapDays'], message: `must be less than lifetimeDays (${c.lifetimeDays})` });
    }
    const seen = new Set<string>();
    c.rotate.forEach((r, i) => {
      const k = r.appId.toLowerCase();
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: ['rotate', i, 'appId'], message: 'is listed twice' });
      seen.add(k);
    });
  });

const alerts = z.strictObject({
  eventGridTopic: httpsUrl.optional(),
  webhookUrl: httpsUrl.optional(),
  webhookFormat: z.enum(['teams', 'slack']).default('teams'),
  mail: z
    .strictObject({
      from: shortText(256).describe('UPN or object id of the mailbox that sends'),
      to: z.array(z.email('must be an email address')).max(50).default([]),
      notifyOwners: z.boolean().default(false),
    })
    .optional(),
  repeatHours: z.number().min(0).max(24 * 30).default(24),
});

export const policySchema = z
  .strictObject({
    $schema: z.string().optional(),
    mode: z.enum(['enforce', 'report']).default('report').describe('"report" plans, records and alerts but changes nothing'),
    scopes: z.array(scope).min(1, 'must name at least one scope').max(100),
    rbac: rbac.default({ bindings: [], prune: 'managed', forbidden: [] }),
    compute: compute.default({
      requireManagedIdentity: true,
      identity: { type: 'SystemAssigned' },
      requireLocalAuthDisabled: false,
      onViolation: { cluster: 'assign-identity', instance: 'alert' },
      exemptTag: 'warden-exempt',
    }),
    workspaces: workspaces.default({ flagRegistryAdminUser: true, flagCredentialDatastores: true }),
    credentials: credentials.default({
      warnDays: 30, rotate: [], rotateDaysBefore: 14, lifetimeDays: 90, overlapDays: 7, removeExpired: false,
    }),
    alerts: alerts.default({ webhookFormat: 'teams', repeatHours: 24 }),
  })
  .describe('Warden policy (SPEC §2)');

export type Policy = z.output<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;
export type Binding = Policy['rbac']['bindings'][number];
export type ForbiddenRule = Policy['rbac']['forbidden'][number];
export type ComputePolicy = Policy['compute'];
export type CredentialsPolicy = Policy['credentials'];
export type AlertsPolicy = Policy['alerts'];
export type Mode = Policy['mode'];

export interface LoadedPolicy {
  policy: Readonly<Policy>;
  /** Values that came from `%NAME%` app settings: treated as secrets (redacted from every output). */
  substitutedValues: readonly string[];
}

/** `rbac.bindings[0].role` from zod's path array. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

const PLACEHOLDER = /%([A-Za-z_][A-Za-z0-9_]*)%/g;

/** Replaces `%NAME%` in every string with the app setting NAME; a missing NAME is an issue at that path. */
export function substituteSettings(
  value: unknown,
  settings: Readonly<Record<string, string>>,
): { value: unknown; issues: Issue[]; substituted: string[] } {
  const issues: Issue[] = [];
  const substituted: string[] = [];
  const walk = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'string') {
      return v.replace(PLACEHOLDER, (whole, name: string) => {
        const s = settings[name];
        if (s === undefined || s === '') {
          issues.push({ path: formatPath(path), message: `refers to app setting ${name}, which is not set` });
          return whole;
        }
        substituted.push(s);
        return s;
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...path, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, []), issues, substituted };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Validates a policy already parsed from JSON. Throws {@link PolicyError} listing every problem.
 * @example parsePolicy(JSON.parse(text), settings.appSettings)
 */
export function parsePolicy(raw: unknown, appSettings: Readonly<Record<string, string>> = {}, source = 'policy'): LoadedPolicy {
  const sub = substituteSettings(raw, appSettings);
  const result = policySchema.safeParse(sub.value);
  const issues = [...sub.issues];
  if (!result.success) {
    for (const i of result.error.issues) {
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys) issues.push({ path: formatPath([...i.path, k]), message: 'is not a known key (check the spelling)' });
      } else issues.push({ path: formatPath(i.path), message: i.message });
    }
  }
  if (issues.length > 0 || !result.success) throw new PolicyError(issues, source);
  return { policy: deepFreeze(result.data), substitutedValues: sub.substituted };
}

/** Parses policy text; JSON syntax errors are reported with their position. */
export function parsePolicyText(text: string, appSettings: Readonly<Record<string, string>> = {}, source = 'policy'): LoadedPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PolicyError([{ path: '', message: `is not valid JSON: ${e instanceof Error ? e.message : String(e)}` }], source);
  }
  return parsePolicy(raw, appSettings, source);
}

/** Loads the policy named by the settings (inline `WARDEN_POLICY` wins over `WARDEN_POLICY_FILE`). */
export function loadPolicy(settings: Pick<Settings, 'policySource' | 'appSettings'>, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): LoadedPolicy {
  const src = settings.policySource;
  if (src.kind === 'inline') return parsePolicyText(src.json, settings.appSettings, 'policy (WARDEN_POLICY)');
  let text: string;
  try {
    text = readFile(src.path);
  } catch (e) {
    throw new PolicyError([{ path: '', message: `cannot read policy file ${src.path}: ${e instanceof Error ? e.message : String(e)}` }], 'policy file');
  }
  return parsePolicyText(text, settings.appSettings, `policy file ${src.path}`);
}

/** The published JSON Schema (`policy.schema.json`), generated from the zod schema. */
export function policyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(policySchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return {
    $id: 'https://github.com/warden/warden/policy.schema.json',
    title: 'Warden policy',
    ...schema,
  };
}
