/**
 * Health: the anonymous answer (`status`, `version`, `mode`) and the deep checks (storage, ARM, Graph
 * each answer), which only a function-key holder may run because they cost calls and reveal which
 * dependencies are down.
 */
import type { AzureClients } from '../azure/clients';
import type { Policy } from '../policy';
import { redact } from '../redact';
import type { Settings } from '../settings';

export interface HealthReport {
  status: 'ok' | 'degraded';
  version: string;
  mode: Policy['mode'];
  checks?: Record<string, { ok: boolean; ms: number; error?: string }>;
}

export type HealthCheck = () => Promise<void>;

/** ARM api-version for `GET /subscriptions/{id}`. */
const SUBSCRIPTIONS_API = '2022-12-01';

/**
 * The dependencies Warden cannot work without: its storage (queues, tables), ARM (the first scope's
 * subscription) and Graph (a one-group read, which Group.Read.All allows).
 */
export function deepChecks(deps: { clients: Pick<AzureClients, 'table' | 'armGet' | 'graph'>; policy: Pick<Policy, 'scopes'>; table: string }): Record<string, HealthCheck> {
  const sub = /^\/subscriptions\/([^/]+)/i.exec(deps.policy.scopes[0] ?? '')?.[1];
  return {
    storage: async () => {
      const table = await deps.clients.table(deps.table);
      try {
        await table.listEntities({ queryOptions: { filter: "PartitionKey eq 'health'" } }).byPage({ maxPageSize: 1 }).next();
      } catch (err) {
        // A table that does not exist yet still proves storage answers.
        if ((err as { statusCode?: unknown }).statusCode !== 404) throw err;
      }
    },
    arm: async () => {
      if (!sub) throw new Error('The policy names no subscription');
      const found = await deps.clients.armGet(`/subscriptions/${sub}`, SUBSCRIPTIONS_API);
      if (found === undefined) throw new Error(`Subscription ${sub} was not found`);
    },
    graph: async () => {
      const graph = await deps.clients.graph();
      await graph.api('/groups').top(1).select('id').get();
    },
  };
}

function describe(err: unknown): string {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return redact(`${typeof status === 'number' ? `${status} ` : ''}${typeof code === 'string' ? `${code}: ` : ''}${msg}`).slice(0, 300);
}

/** Runs the checks at once, each bounded by `timeoutMs`; `degraded` when any fails. */
export async function runHealthChecks(
  base: { settings: Pick<Settings, 'version'>; policy: Pick<Policy, 'mode'> },
  checks: Record<string, HealthCheck>,
  timeoutMs = 10_000,
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { ok: true, ms: Date.now() - started }] as const;
      } catch (err) {
        return [name, { ok: false, ms: Date.now() - started, error: describe(err) }] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const result: Record<string, { ok: boolean; ms: number; error?: string }> = {};
  for (const [name, r] of entries) result[name] = r;
  return {
    status: entries.every(([, r]) => r.ok) ? 'ok' : 'degraded',
    version: base.settings.version,
    mode: base.policy.mode,
    checks: result,
  };
}
