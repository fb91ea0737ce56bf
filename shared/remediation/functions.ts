/**
 * The HTTP functions of issue 8 as registration options, so `functions/*.ts` stay one line each and
 * the handlers can be exercised in-process with a runtime of our choosing. Each handler: method →
 * caller and role → input → one use case → JSON; every error through the SPEC §4 envelope.
 */
import type { HttpFunctionOptions, HttpRequest } from '@azure/functions';
import type { Capability, CapabilityName } from '../capability';
import type { CoreDeps } from '../deps';
import { AUDIT_TABLE } from '../audit/names';
import { authorizeCaller, identifyCaller, type Caller } from '../http/caller';
import { deepChecks, runHealthChecks } from '../http/health';
import { parseInput, queryObject, readJsonBody } from '../http/request';
import { ALL_METHODS, httpRoute, jsonResponse, type RouteContext } from '../http/route';
import type { AuditLog } from '../ports/audit';
import type { ReconcileReport, ReconcileRequest } from '../reconcile';
import { redactValue } from '../redact';
import type { WorkRequest } from '../work/item';
import { auditQuerySchema, INPUT_CODES, planQuerySchema, remediateBodySchema } from './input';
import { planTargets, remediate, type RemediationDeps } from './usecases';

/** What these routes need from the composition root (`shared/runtime.ts`). */
export interface RemediationRuntime {
  core: Pick<CoreDeps, 'settings' | 'policy' | 'clients'>;
  capabilities: Readonly<Record<CapabilityName, Capability>>;
  reconcile(req: ReconcileRequest): Promise<ReconcileReport>;
  enqueue(items: WorkRequest[]): Promise<void>;
  audit: AuditLog;
}

export type HealthRuntime = Pick<RemediationRuntime, 'core'>;

type GetRuntime<R> = () => Promise<R>;

async function protectedCaller(req: HttpRequest, rt: Pick<RemediationRuntime, 'core'>): Promise<Caller> {
  const caller = identifyCaller(req, rt.core.settings);
  authorizeCaller(caller, rt.core.settings);
  return caller;
}

function remediationDeps(rt: RemediationRuntime, ctx: RouteContext): RemediationDeps {
  return {
    capabilities: rt.capabilities,
    reconcile: (r) => rt.reconcile(r),
    enqueue: (items) => rt.enqueue(items),
    mode: rt.core.policy.mode,
    logger: ctx.logger,
  };
}

/** `GET /api/plan?capability=…&target=…` (function key): read-only plan. */
export function planFunctionOptions(getRuntime: GetRuntime<RemediationRuntime>): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'function',
    route: 'plan',
    handler: httpRoute(['GET'], async (req, ctx) => {
      const rt = await getRuntime();
      await protectedCaller(req, rt);
      const q = parseInput(planQuerySchema, queryObject(req, ['capability', 'target']), INPUT_CODES);
      const result = await planTargets({ capability: q.capability, ...(q.target !== undefined ? { target: q.target } : {}) }, remediationDeps(rt, ctx));
      return jsonResponse(200, result);
    }),
  };
}

/** `POST /api/remediate` `{ capability, target?, dryRun? }` (function key). */
export function remediateFunctionOptions(getRuntime: GetRuntime<RemediationRuntime>): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'function',
    route: 'remediate',
    handler: httpRoute(['POST'], async (req, ctx) => {
      const rt = await getRuntime();
      const caller = await protectedCaller(req, rt);
      const body = parseInput(remediateBodySchema, await readJsonBody(req), INPUT_CODES);
      const result = await remediate(
        {
          capability: body.capability,
          ...(body.target !== undefined ? { target: body.target } : {}),
          ...(body.dryRun !== undefined ? { dryRun: body.dryRun } : {}),
          caller: caller.name,
          invocationId: ctx.invocationId,
        },
        remediationDeps(rt, ctx),
      );
      return jsonResponse(result.status === 'queued' ? 202 : 200, result);
    }),
  };
}

/** `GET /api/audit?since=…&limit=…&capability=…&continuationToken=…` (function key), newest first. */
export function auditFunctionOptions(getRuntime: GetRuntime<Pick<RemediationRuntime, 'core' | 'audit'>>): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'function',
    route: 'audit',
    handler: httpRoute(['GET'], async (req) => {
      const rt = await getRuntime();
      await protectedCaller(req, rt);
      const q = parseInput(auditQuerySchema, queryObject(req, ['since', 'limit', 'capability', 'continuationToken']), INPUT_CODES);
      const page = await rt.audit.query({
        ...(q.since ? { since: q.since } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.capability ? { capability: q.capability } : {}),
        ...(q.continuationToken ? { continuationToken: q.continuationToken } : {}),
      });
      let nextLink: string | undefined;
      if (page.continuationToken) {
        const next = new URL(req.url);
        // The function key stays with the caller; a link in a response body is easily logged.
        next.searchParams.delete('code');
        next.searchParams.set('continuationToken', page.continuationToken);
        nextLink = next.toString();
      }
      return jsonResponse(200, {
        records: redactValue(page.records),
        ...(page.continuationToken ? { continuationToken: page.continuationToken, nextLink } : {}),
      });
    }),
  };
}

/**
 * `GET /api/health` (anonymous): `{ status, version, mode }`. An anonymous function cannot tell whether
 * a function key came with the request (the host checks keys only for key-protected functions), so
 * `?deep=1` redirects (307) to the key-protected `/api/health/deep`, keeping the rest of the query
 * (a `code=` key included) so the host checks the key there.
 */
export function healthFunctionOptions(getRuntime: GetRuntime<HealthRuntime>): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'anonymous',
    route: 'health',
    handler: httpRoute(['GET'], async (req) => {
      const deep = req.query.get('deep');
      if (deep !== null && deep !== '0' && deep.toLowerCase() !== 'false') {
        const url = new URL(req.url);
        url.searchParams.delete('deep');
        // Relative, so it stays right behind proxies that rewrite the host.
        return { status: 307, headers: { Location: `${url.pathname.replace(/\/+$/, '')}/deep${url.search}` } };
      }
      const rt = await getRuntime();
      return jsonResponse(200, { status: 'ok', version: rt.core.settings.version, mode: rt.core.policy.mode }, { 'Cache-Control': 'no-store' });
    }),
  };
}

/** `GET /api/health/deep` (function key): whether storage, ARM and Graph answer; 503 when one does not. */
export function healthDeepFunctionOptions(getRuntime: GetRuntime<HealthRuntime>, options: { timeoutMs?: number } = {}): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'function',
    route: 'health/deep',
    handler: httpRoute(['GET'], async () => {
      const rt = await getRuntime();
      const report = await runHealthChecks(
        rt.core,
        deepChecks({ clients: rt.core.clients, policy: rt.core.policy, table: AUDIT_TABLE }),
        options.timeoutMs,
      );
      return jsonResponse(report.status === 'ok' ? 200 : 503, report, { 'Cache-Control': 'no-store' });
    }),
  };
}
