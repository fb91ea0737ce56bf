/**
 * ARM paging: `{ value, nextLink }` with an absolute `nextLink` that repeats the request's own query
 * (api-version, `$filter`) plus a `$skipToken` offset. Keys stay unencoded (`$filter`, not `%24filter`)
 * because core-client compares query keys literally when it re-appends parameters to a nextLink.
 */
import type { EmuRequest, EmuResponse } from '../core/types';

const SKIP_KEYS = new Set(['$skiptoken']);

function buildQuery(query: URLSearchParams, extra: Record<string, string>): string {
  const pieces: string[] = [];
  for (const [k, v] of query) {
    if (SKIP_KEYS.has(k.toLowerCase())) continue;
    pieces.push(`${encodeURIComponent(k).replace(/%24/g, '$')}=${encodeURIComponent(v)}`);
  }
  for (const [k, v] of Object.entries(extra)) pieces.push(`${k}=${encodeURIComponent(v)}`);
  return pieces.join('&');
}

function skipOf(query: URLSearchParams): number {
  for (const [k, v] of query) {
    if (SKIP_KEYS.has(k.toLowerCase())) {
      const n = Number.parseInt(v, 10);
      return Number.isFinite(n) && n > 0 ? n : 0;
    }
  }
  return 0;
}

/** Answers one page of `items` for the request; `$top` (when sent) lowers the page size. */
export function pagedResponse(req: EmuRequest, items: readonly unknown[], pageSize: number): EmuResponse {
  const top = Number.parseInt(req.query.get('$top') ?? '', 10);
  const size = Math.max(1, Number.isFinite(top) && top > 0 ? Math.min(top, pageSize) : pageSize);
  const skip = skipOf(req.query);
  const value = items.slice(skip, skip + size);
  const body: Record<string, unknown> = { value };
  if (skip + size < items.length) {
    body.nextLink = `${req.baseUrl}${req.path}?${buildQuery(req.query, { $skipToken: String(skip + size) })}`;
  }
  return { status: 200, body };
}

/**
 * Caches a list's items for as long as the state does not change, so walking a long list page by
 * page does not rebuild it for every page.
 */
export class ListCache {
  private entries = new Map<string, { version: number; items: unknown[] }>();

  get(req: EmuRequest, version: number, build: () => unknown[]): unknown[] {
    const k = `${req.method} ${req.path.toLowerCase()}?${buildQuery(req.query, {})}`;
    const hit = this.entries.get(k);
    if (hit && hit.version === version) return hit.items;
    const items = build();
    if (this.entries.size > 200) this.entries.clear();
    this.entries.set(k, { version, items });
    return items;
  }
}
