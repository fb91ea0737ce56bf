/**
 * JSON batching (`POST /v1.0/$batch`, facts §3.6): up to 20 requests with unique ids, `dependsOn`,
 * relative URLs with or without the `/v1.0` prefix (the JS client sends `/v1.0/…`). Each item is
 * dispatched in-process through the Graph router and may be throttled individually by the fault
 * injector; the outer answer is 200 whatever the items' statuses.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { FaultInjector } from '../core/faults';
import type { Router } from '../core/router';
import type { EmuRequest, EmuResponse } from '../core/types';
import { badRequest, graphError, ok } from './odata';
import { wrap } from './paging';

const MAX_BATCH = 20;

const itemSchema = z.object({
  id: z.string().min(1),
  method: z.string().min(1),
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional(),
  dependsOn: z.array(z.string()).optional(),
});
const batchSchema = z.object({ requests: z.array(itemSchema) });
type BatchItem = z.infer<typeof itemSchema>;

interface ItemResult {
  id: string;
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

function toItemResult(id: string, r: EmuResponse): ItemResult {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (k.toLowerCase() !== 'content-length') headers[k] = v;
  }
  const out: ItemResult = { id, status: r.status, headers };
  if (r.body !== undefined && r.body !== null) {
    out.body = Buffer.isBuffer(r.body) ? r.body.toString('base64') : r.body;
    if (typeof r.body === 'object' && !Buffer.isBuffer(r.body)) headers['Content-Type'] ??= 'application/json';
  }
  return out;
}

export function addBatchRoute(router: Router, faults: FaultInjector): void {
  const dispatch = async (outer: EmuRequest, item: BatchItem): Promise<EmuResponse> => {
    let relative = item.url.startsWith('/') ? item.url : `/${item.url}`;
    if (/^\/v1\.0(\/|$)/i.test(relative)) relative = relative.slice('/v1.0'.length);
    const url = new URL(`/v1.0${relative}`, 'http://batch');
    const headers: IncomingHttpHeaders = { authorization: outer.headers.authorization };
    for (const [k, v] of Object.entries(item.headers ?? {})) headers[k.toLowerCase()] = v;
    const rawBody = item.body === undefined ? Buffer.alloc(0) : Buffer.from(typeof item.body === 'string' ? item.body : JSON.stringify(item.body));
    const inner: EmuRequest = {
      service: outer.service,
      method: item.method.toUpperCase(),
      path: url.pathname
        .replace(/\/{2,}/g, '/')
        .split('/')
        .map((s) => {
          try {
            return decodeURIComponent(s);
          } catch {
            return s;
          }
        })
        .join('/'),
      query: url.searchParams,
      headers,
      body: item.body,
      rawBody,
      baseUrl: outer.baseUrl,
      params: {},
    };
    const route = router.match(inner);
    if (!route) return graphError(inner, 400, 'BadRequest', `Resource not found for the segment '${relative}'.`);
    if (route.operation === 'graph.batch') return graphError(inner, 400, 'BadRequest', 'A batch request cannot contain another batch.');
    // Each item counts against throttling on its own, as in Graph.
    const decision = faults.decide(inner, route.operation);
    if (decision.response) return decision.response;
    try {
      return await route.handler(inner);
    } catch (err) {
      return graphError(inner, 500, 'EmulatorError', err instanceof Error ? err.message : String(err));
    }
  };

  router.add(
    'POST',
    '/v1.0/$batch',
    'graph.batch',
    wrap(async (req) => {
      const parsed = batchSchema.safeParse(req.body);
      if (!parsed.success) throw badRequest('Invalid batch payload: expected {"requests":[{"id","method","url"}…]}.', 'BadRequest');
      const items = parsed.data.requests;
      if (items.length > MAX_BATCH) throw badRequest(`The number of batch requests exceeds the limit of ${MAX_BATCH}.`, 'BadRequest');
      const byId = new Map<string, BatchItem>();
      for (const it of items) {
        if (byId.has(it.id)) throw badRequest(`Batch request ids must be unique; '${it.id}' is repeated.`, 'BadRequest');
        byId.set(it.id, it);
      }
      for (const it of items) {
        for (const d of it.dependsOn ?? []) {
          if (!byId.has(d)) throw badRequest(`Batch request '${it.id}' depends on unknown request '${d}'.`, 'BadRequest');
        }
      }
      // Dependencies must form a DAG.
      const state = new Map<string, 'visiting' | 'done'>();
      const visit = (id: string): void => {
        if (state.get(id) === 'done') return;
        if (state.get(id) === 'visiting') throw badRequest('Batch request dependencies form a cycle.', 'BadRequest');
        state.set(id, 'visiting');
        for (const d of byId.get(id)?.dependsOn ?? []) visit(d);
        state.set(id, 'done');
      };
      for (const it of items) visit(it.id);

      const running = new Map<string, Promise<ItemResult>>();
      const run = (it: BatchItem): Promise<ItemResult> => {
        const existing = running.get(it.id);
        if (existing) return existing;
        const p = (async (): Promise<ItemResult> => {
          const deps = await Promise.all((it.dependsOn ?? []).map((d) => run(byId.get(d) as BatchItem)));
          if (deps.some((d) => d.status >= 400)) {
            return toItemResult(it.id, graphError(undefined, 424, 'FailedDependency', 'The request was not run because a request it depends on failed.'));
          }
          return toItemResult(it.id, await dispatch(req, it));
        })();
        running.set(it.id, p);
        return p;
      };
      const responses = await Promise.all(items.map(run));
      return ok(req, { responses });
    }),
  );
}
