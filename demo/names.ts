/**
 * People read names, Warden writes ids: this turns object ids, app ids and ARM resource ids in
 * Warden's own change descriptions and finding summaries into the names a person knows.
 */
import type { TenantFile } from '../emulator';

const GUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const ML_ID = /\/subscriptions\/[^/\s]+\/resourceGroups\/[^/\s]+\/providers\/Microsoft\.MachineLearningServices\/workspaces\/([^/\s'",)]+)(?:\/computes\/([^/\s'",)]+))?/gi;
const OTHER_ID = /\/subscriptions\/[^/\s]+(?:\/resourceGroups\/([^/\s'",)]+))?(?:\/providers\/[^\s'",)]*\/([^/\s'",)]+))?/gi;

export type Names = ReadonlyMap<string, string>;

interface Named {
  id?: unknown;
  appId?: unknown;
  displayName?: unknown;
}

function collect(list: unknown, into: Map<string, string>): void {
  if (!Array.isArray(list)) return;
  for (const item of list as Named[]) {
    if (typeof item.displayName !== 'string') continue;
    if (typeof item.id === 'string') into.set(item.id.toLowerCase(), item.displayName);
    if (typeof item.appId === 'string' && !into.has(item.appId.toLowerCase())) into.set(item.appId.toLowerCase(), item.displayName);
  }
}

/** Display names of the tenant's users, groups, service principals and applications, by id. */
export function namesOf(tenant: TenantFile): Names {
  const out = new Map<string, string>();
  const dir = (tenant.directory ?? {}) as Record<string, unknown>;
  for (const k of ['users', 'groups', 'servicePrincipals', 'applications']) collect(dir[k], out);
  return out;
}

/** The short name of an ARM resource id: `mlw-vision`, `mlw-vision/ci-ada`, `rg-ml-nlp`. */
export function shortId(id: string): string {
  ML_ID.lastIndex = 0;
  const m = ML_ID.exec(id);
  if (m?.[1]) return m[2] ? `${m[1]}/${m[2]}` : m[1];
  return id.split('/').filter(Boolean).pop() ?? id;
}

/** Replaces resource ids with short names and known object ids with display names. */
export function pretty(text: string, names: Names): string {
  return text
    .replace(ML_ID, (_m, ws: string, compute: string | undefined) => (compute ? `${ws}/${compute}` : ws))
    .replace(OTHER_ID, (m, rg: string | undefined, last: string | undefined) => last ?? rg ?? (m.includes('/resourceGroups/') ? m : 'the subscription'))
    .replace(GUID, (g) => names.get(g.toLowerCase()) ?? `${g.slice(0, 8)}…`)
    // `app "nlp-inference" (33333333-…)` became `app "nlp-inference" (nlp-inference)`: once is enough.
    .replace(/"([^"]+)" \(\1\)/g, '"$1"');
}
