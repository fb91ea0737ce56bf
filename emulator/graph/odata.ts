/**
 * OData plumbing shared by the Graph routes: error envelopes, `$select`, `$top`, a small `$filter`
 * evaluator, opaque paging tokens and absolute links built from the listener's base URL.
 */
import { randomUUID } from 'node:crypto';
import type { EmuRequest, EmuResponse } from '../core/types';

export const GRAPH_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

function requestIds(req: EmuRequest | undefined): { requestId: string; clientRequestId: string } {
  const header = req?.headers['client-request-id'];
  const requestId = randomUUID();
  return { requestId, clientRequestId: typeof header === 'string' ? header : requestId };
}

/** Graph's error envelope, with the `innerError` block every Graph error carries. */
export function graphError(req: EmuRequest | undefined, status: number, code: string, message: string, headers: Record<string, string> = {}): EmuResponse {
  const { requestId, clientRequestId } = requestIds(req);
  return {
    status,
    headers: { 'Content-Type': GRAPH_JSON, 'request-id': requestId, 'client-request-id': clientRequestId, ...headers },
    body: {
      error: {
        code,
        message,
        innerError: { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': requestId, 'client-request-id': clientRequestId },
      },
    },
  };
}

export function ok(req: EmuRequest, body: unknown, status = 200, headers: Record<string, string> = {}): EmuResponse {
  const { requestId, clientRequestId } = requestIds(req);
  return { status, headers: { 'Content-Type': GRAPH_JSON, 'request-id': requestId, 'client-request-id': clientRequestId, ...headers }, body };
}

export function noContent(req: EmuRequest, status = 204): EmuResponse {
  const { requestId, clientRequestId } = requestIds(req);
  return { status, headers: { 'request-id': requestId, 'client-request-id': clientRequestId } };
}

export function notFound(req: EmuRequest, id: string): EmuResponse {
  return graphError(req, 404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);
}

/** Thrown inside handlers to answer with a Graph error; the route wrapper converts it. */
export class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'GraphHttpError';
  }
}

export function badRequest(message: string, code = 'Request_BadRequest'): GraphHttpError {
  return new GraphHttpError(400, code, message);
}

/** `$select=id,displayName` → names, or undefined when absent. */
export function parseSelect(req: EmuRequest): string[] | undefined {
  const raw = req.query.get('$select');
  if (raw === null || raw.trim() === '') return undefined;
  return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** `$top` for directory collections: 1…max, else Graph's 400. */
export function parseTop(req: EmuRequest, def: number, max: number): number {
  const raw = req.query.get('$top');
  if (raw === null) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw badRequest(`Invalid page size specified: '${raw}'. Must be between 1 and ${max} inclusive.`, 'Request_UnsupportedQuery');
  }
  return n;
}

export function isEventual(req: EmuRequest): boolean {
  const h = req.headers.consistencylevel;
  return typeof h === 'string' && h.toLowerCase() === 'eventual';
}

export function wantsCount(req: EmuRequest): boolean {
  return (req.query.get('$count') ?? '').toLowerCase() === 'true';
}

// ---- tokens ----

export function encodeToken(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeToken(raw: string): unknown {
  try {
    return JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * An absolute link to `path` (below `/v1.0`) that keeps the request's query options, with `extra`
 * replacing keys of the same name. `$` keys stay literal, as Graph writes them.
 */
export function link(req: EmuRequest, path: string, extra: Record<string, string>, keep = true): string {
  const params = new Map<string, string>();
  if (keep) for (const [k, v] of req.query) if (k !== '$skiptoken' && k !== '$deltatoken') params.set(k, v);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const qs = [...params].map(([k, v]) => `${k.replace(/[^$\w.-]/g, encodeURIComponent)}=${encodeURIComponent(v).replace(/%2C/gi, ',')}`).join('&');
  return `${req.baseUrl}/v1.0${path}${qs ? `?${qs}` : ''}`;
}

// ---- projection ----

/** Picks properties by case-insensitive name; properties the entity does not have are skipped. */
export function pick(record: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const byLower = new Map(Object.keys(record).map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const n of names) {
    const key = byLower.get(n.toLowerCase());
    if (key !== undefined) out[key] = record[key];
  }
  return out;
}

/** Names not present on the entity (Graph answers 400 for them on a single-entity read). */
export function unknownProperties(record: Record<string, unknown>, names: readonly string[], extra: readonly string[] = []): string[] {
  const known = new Set([...Object.keys(record), ...extra].map((k) => k.toLowerCase()));
  return names.filter((n) => !known.has(n.toLowerCase()));
}

// ---- $filter ----

export type Predicate = (record: Record<string, unknown>) => boolean;

type Tok = { t: 'str'; v: string } | { t: 'word'; v: string } | { t: '(' } | { t: ')' } | { t: ',' };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src.charAt(i);
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ t: c });
      i++;
    } else if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw badRequest('Unterminated string literal in $filter.', 'BadRequest');
        const ch = src.charAt(i);
        if (ch === "'") {
          if (src.charAt(i + 1) === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += ch;
        i++;
      }
      out.push({ t: 'str', v });
    } else {
      let v = '';
      while (i < src.length && !/[\s(),']/.test(src.charAt(i))) v += src.charAt(i++);
      out.push({ t: 'word', v });
    }
  }
  return out;
}

function getProp(record: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(record)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function literal(tok: Tok | undefined): unknown {
  if (!tok) throw badRequest('Invalid $filter: a value is missing.', 'BadRequest');
  if (tok.t === 'str') return tok.v;
  if (tok.t !== 'word') throw badRequest('Invalid $filter: a value is expected.', 'BadRequest');
  if (tok.v === 'true') return true;
  if (tok.v === 'false') return false;
  if (tok.v === 'null') return null;
  if (/^-?\d+(\.\d+)?$/.test(tok.v)) return Number(tok.v);
  return tok.v;
}

function compare(a: unknown, op: string, b: unknown): boolean {
  const norm = (v: unknown): unknown => (typeof v === 'string' ? v.toLowerCase() : v);
  const x = norm(a);
  const y = norm(b);
  switch (op) {
    case 'eq':
      return x === y || (x === undefined && y === null);
    case 'ne':
      return !(x === y || (x === undefined && y === null));
    default: {
      if ((typeof x !== 'string' && typeof x !== 'number') || typeof x !== typeof y) return false;
      const xs = x;
      const ys = y as string | number;
      if (op === 'gt') return xs > ys;
      if (op === 'ge') return xs >= ys;
      if (op === 'lt') return xs < ys;
      if (op === 'le') return xs <= ys;
      throw badRequest(`Unsupported $filter operator '${op}'.`, 'Request_UnsupportedQuery');
    }
  }
}

/**
 * Parses the subset of OData `$filter` Warden and its tests use: `eq ne gt ge lt le`, `and`, `or`,
 * `not`, parentheses and `startswith/endswith(prop,'x')`. Anything else is Graph's 400.
 */
export function parseFilter(src: string): { predicate: Predicate; ids: string[] | undefined } {
  const toks = tokenize(src);
  let i = 0;
  const ids: string[] = [];
  let onlyIdEq = true;
  const peekWord = (w: string): boolean => {
    const t = toks[i];
    return t?.t === 'word' && t.v.toLowerCase() === w;
  };
  const parseOr = (): Predicate => {
    let left = parseAnd();
    while (peekWord('or')) {
      i++;
      const l = left;
      const r = parseAnd();
      left = (rec) => l(rec) || r(rec);
    }
    return left;
  };
  const parseAnd = (): Predicate => {
    let left = parseUnary();
    while (peekWord('and')) {
      onlyIdEq = false;
      i++;
      const l = left;
      const r = parseUnary();
      left = (rec) => l(rec) && r(rec);
    }
    return left;
  };
  const parseUnary = (): Predicate => {
    if (peekWord('not')) {
      onlyIdEq = false;
      i++;
      const inner = parseUnary();
      return (rec) => !inner(rec);
    }
    return parsePrimary();
  };
  const parsePrimary = (): Predicate => {
    const t = toks[i];
    if (!t) throw badRequest('Invalid $filter: unexpected end of expression.', 'BadRequest');
    if (t.t === '(') {
      i++;
      const inner = parseOr();
      if (toks[i]?.t !== ')') throw badRequest('Invalid $filter: missing ")".', 'BadRequest');
      i++;
      return inner;
    }
    if (t.t !== 'word') throw badRequest('Invalid $filter expression.', 'BadRequest');
    const fn = t.v.toLowerCase();
    if ((fn === 'startswith' || fn === 'endswith') && toks[i + 1]?.t === '(') {
      onlyIdEq = false;
      const prop = toks[i + 2];
      const value = toks[i + 4];
      if (prop?.t !== 'word' || toks[i + 3]?.t !== ',' || value?.t !== 'str' || toks[i + 5]?.t !== ')') {
        throw badRequest(`Invalid ${fn} call in $filter.`, 'BadRequest');
      }
      i += 6;
      const needle = value.v.toLowerCase();
      return (rec) => {
        const v = getProp(rec, prop.v);
        if (typeof v !== 'string') return false;
        return fn === 'startswith' ? v.toLowerCase().startsWith(needle) : v.toLowerCase().endsWith(needle);
      };
    }
    const opTok = toks[i + 1];
    if (opTok?.t !== 'word' || !['eq', 'ne', 'gt', 'ge', 'lt', 'le'].includes(opTok.v.toLowerCase())) {
      throw badRequest(`Unsupported or invalid query filter clause specified for property '${t.v}'.`, 'Request_UnsupportedQuery');
    }
    const op = opTok.v.toLowerCase();
    const value = literal(toks[i + 2]);
    i += 3;
    if (t.v.toLowerCase() === 'id' && op === 'eq' && typeof value === 'string') ids.push(value);
    else onlyIdEq = false;
    return (rec) => compare(getProp(rec, t.v), op, value);
  };
  const predicate = parseOr();
  if (i !== toks.length) throw badRequest('Invalid $filter: unexpected trailing tokens.', 'BadRequest');
  return { predicate, ids: onlyIdEq ? ids : undefined };
}
