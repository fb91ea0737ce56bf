import type { EmuRequest, EmuResponse, Handler } from '../core/types';
import { DirectoryError } from './state';
import { badRequest, decodeToken, encodeToken, graphError, GraphHttpError, link, ok } from './odata';

/** Turns thrown `GraphHttpError`s and directory errors into Graph error answers. */
export function wrap(h: (req: EmuRequest) => EmuResponse | Promise<EmuResponse>): Handler {
  return async (req) => {
    try {
      return await h(req);
    } catch (err) {
      if (err instanceof GraphHttpError) return graphError(req, err.status, err.code, err.message);
      if (err instanceof DirectoryError) return graphError(req, 400, 'Request_BadRequest', err.message);
      throw err;
    }
  };
}

/** A positional sequence; `at` may return undefined for holes, which pages skip. */
export interface Positional<T> {
  readonly size: number;
  at(pos: number): T | undefined;
}

export function arraySource<T>(items: readonly T[]): Positional<T> {
  return { size: items.length, at: (pos) => items[pos] };
}

export interface PageOptions<T> {
  /** Path below `/v1.0` for the nextLink. */
  path: string;
  context: string;
  top: number;
  /** JSON for an item, or undefined to skip it (cast, filter). */
  render(item: T): Record<string, unknown> | undefined;
  /** Include `@odata.count` (first page only). */
  count: boolean;
}

/**
 * One page of a collection. The `$skiptoken` is a position in the source, so a page costs `$top`
 * renders (plus the holes skipped) however large the collection is; a 100,000-member group streams.
 */
export function pageOf<T>(req: EmuRequest, source: Positional<T>, opts: PageOptions<T>): EmuResponse {
  const raw = req.query.get('$skiptoken');
  let start = 0;
  if (raw !== null) {
    const tok = decodeToken(raw);
    if (typeof tok !== 'object' || tok === null || typeof (tok as { p?: unknown }).p !== 'number') {
      throw badRequest('The $skiptoken is invalid.', 'Directory_ExpiredPageToken');
    }
    start = (tok as { p: number }).p;
  }
  const value: Array<Record<string, unknown>> = [];
  let pos = start;
  let next: number | undefined;
  while (pos < source.size) {
    const item = source.at(pos);
    const json = item === undefined ? undefined : opts.render(item);
    if (json) {
      if (value.length === opts.top) {
        next = pos;
        break;
      }
      value.push(json);
    }
    pos++;
  }
  const body: Record<string, unknown> = { '@odata.context': `${req.baseUrl}/v1.0/$metadata#${opts.context}` };
  if (opts.count && raw === null) {
    let n = 0;
    for (let p = 0; p < source.size; p++) {
      const item = source.at(p);
      if (item !== undefined && opts.render(item)) n++;
    }
    body['@odata.count'] = n;
  }
  if (next !== undefined) body['@odata.nextLink'] = link(req, opts.path, { $skiptoken: encodeToken({ p: next }) });
  body.value = value;
  return ok(req, body);
}

