/**
 * The host runner's HTTP surface, as Core Tools serves it:
 * - `/<routePrefix>/<route>`: HTTP functions (route parameters, methods, opt-in function keys);
 * - `/runtime/webhooks/eventgrid?functionName=NAME`: Event Grid delivery (AZURE-API-FACTS §6.3, §6.5
 *   and the Core Tools addendum);
 * - `/admin/functions/NAME`: run a non-HTTP function by hand (202, in the background);
 * - `/admin/host/status`, `/admin/functions`: readiness and the function list.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpRequest, HttpResponse, type Cookie, type Timer } from '@azure/functions';
import type { RegisteredFunction } from '../shared/registration';
import type { Invoker } from './invoke';
import type { HostLogger } from './log';
import { compileRoute, matchRoute, type CompiledRoute } from './routes';

type HttpFunction = Extract<RegisteredFunction, { kind: 'http' }>;

interface HttpRouteEntry {
  fn: HttpFunction;
  route: CompiledRoute;
  methods: Set<string>;
  authLevel: 'anonymous' | 'function' | 'admin';
}

export interface HttpSurfaceOptions {
  functions: readonly RegisteredFunction[];
  invoker: Invoker;
  log: HostLogger;
  routePrefix: string;
  /** Keys accepted on `function`/`admin` routes; empty = not enforced (as in Core Tools). */
  functionKeys: readonly string[];
  /** Keys required on `/admin/*`; empty = not enforced. */
  masterKeys: readonly string[];
  /** Invokes a timer or queue function by hand (`/admin/functions/NAME`). */
  runByHand(fn: RegisteredFunction, input: string): void;
  /** Largest request body accepted (the host's limit is 100 MB). */
  maxBodyBytes?: number;
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpFailure';
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new HttpFailure(413, `Request body larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body?: string | Buffer, headers: Record<string, string | string[]> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, headers);
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), { 'content-type': 'application/json; charset=utf-8' });
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function keyMatches(given: string | undefined, keys: readonly string[]): boolean {
  if (!given) return false;
  const g = Buffer.from(given);
  return keys.some((k) => {
    const kb = Buffer.from(k);
    return kb.length === g.length && timingSafeEqual(kb, g);
  });
}

function presentedKey(req: IncomingMessage, url: URL): string | undefined {
  const h = req.headers['x-functions-key'];
  return url.searchParams.get('code') ?? (Array.isArray(h) ? h[0] : h);
}

function cookieHeader(c: Cookie): string {
  const parts = [`${c.name}=${c.value}`];
  if (c.domain) parts.push(`Domain=${c.domain}`);
  if (c.path) parts.push(`Path=${c.path}`);
  if (c.expires !== undefined) parts.push(`Expires=${new Date(c.expires).toUTCString()}`);
  if (c.maxAge !== undefined) parts.push(`Max-Age=${c.maxAge}`);
  if (c.secure) parts.push('Secure');
  if (c.httpOnly) parts.push('HttpOnly');
  if (c.sameSite) parts.push(`SameSite=${c.sameSite}`);
  return parts.join('; ');
}

function isHttpResponse(v: unknown): v is HttpResponse {
  return v instanceof HttpResponse || (typeof v === 'object' && v !== null && (v as { headers?: unknown }).headers instanceof Headers && typeof (v as { arrayBuffer?: unknown }).arrayBuffer === 'function');
}

/** Writes what an HTTP handler returned, converted the way `@azure/functions` converts it for the host. */
async function writeResult(res: ServerResponse, value: unknown): Promise<void> {
  if (value === undefined || value === null) {
    send(res, 204);
    return;
  }
  if (typeof value !== 'object') throw new Error('The HTTP response must be an object with optional properties "body", "status", "headers", and "cookies".');
  const response = isHttpResponse(value) ? value : new HttpResponse(value);
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  if (response.cookies.length > 0) headers['set-cookie'] = response.cookies.map(cookieHeader);
  const body = Buffer.from(await response.arrayBuffer());
  send(res, response.status, body, headers);
}

export type HttpSurface = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function createHttpSurface(opts: HttpSurfaceOptions): HttpSurface {
  const maxBody = opts.maxBodyBytes ?? 100 * 1024 * 1024;
  const routes: HttpRouteEntry[] = opts.functions
    .filter((f): f is HttpFunction => f.kind === 'http')
    .map((fn) => ({
      fn,
      route: compileRoute(fn.options.route ?? fn.name),
      methods: new Set((fn.options.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase())),
      authLevel: fn.options.authLevel ?? 'anonymous',
    }))
    .sort((a, b) => b.route.precedence - a.route.precedence);
  const byName = new Map(opts.functions.map((f) => [f.name.toLowerCase(), f]));
  const prefix = opts.routePrefix ? `/${opts.routePrefix}` : '';

  async function httpFunction(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    let found: { entry: HttpRouteEntry; params: Record<string, string> } | undefined;
    for (const entry of routes) {
      if (!entry.methods.has(method)) continue;
      const params = matchRoute(entry.route, path);
      if (params) {
        found = { entry, params };
        break;
      }
    }
    if (!found) {
      send(res, 404);
      return;
    }
    const { entry, params } = found;
    if (entry.authLevel !== 'anonymous') {
      const keys = entry.authLevel === 'admin' && opts.masterKeys.length > 0 ? opts.masterKeys : opts.functionKeys;
      if (keys.length > 0 && !keyMatches(presentedKey(req, url), keys)) {
        opts.log.warn(`Rejected ${method} ${url.pathname}: missing or wrong function key`, { functionName: entry.fn.name });
        send(res, 401);
        return;
      }
    }
    const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req, maxBody);
    const request = new HttpRequest({
      method,
      url: url.toString(),
      headers: flatHeaders(req),
      params,
      ...(body && body.length > 0 ? { body: { bytes: body } } : {}),
    });
    const result = await opts.invoker.invoke({ fn: entry.fn, input: request, reason: `This function was programmatically called via the host APIs.` });
    if (!result.ok) {
      send(res, 500);
      return;
    }
    try {
      await writeResult(res, result.value);
    } catch (err) {
      opts.log.error(`Could not send the response of '${entry.fn.name}': ${err instanceof Error ? err.message : String(err)}`, {
        functionName: entry.fn.name,
        invocationId: result.invocationId,
      });
      send(res, 500);
    }
  }

  async function eventGrid(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const name = url.searchParams.get('functionName') ?? '';
    const fn = byName.get(name.toLowerCase());
    if (!fn || fn.kind !== 'eventGrid') {
      send(res, 404, `Function '${name}' does not exist or is not an Event Grid function`, { 'content-type': 'text/plain; charset=utf-8' });
      return;
    }
    if (method === 'OPTIONS') {
      // CloudEvents abuse-protection handshake (AZURE-API-FACTS §6.3).
      const origin = req.headers['webhook-request-origin'];
      send(res, 200, undefined, {
        'webhook-allowed-origin': (Array.isArray(origin) ? origin[0] : origin) ?? '*',
        'webhook-allowed-rate': '*',
        allow: 'POST, OPTIONS',
      });
      return;
    }
    if (method !== 'POST') {
      send(res, 405, undefined, { allow: 'POST, OPTIONS' });
      return;
    }
    const typeHeader = req.headers['aeg-event-type'];
    const eventType = (Array.isArray(typeHeader) ? typeHeader[0] : typeHeader) ?? '';
    if (!['Notification', 'SubscriptionValidation', 'SubscriptionDeletion'].includes(eventType)) {
      send(res, 400, eventType ? `Unknown aeg-event-type '${eventType}'` : 'Missing aeg-event-type header', { 'content-type': 'text/plain; charset=utf-8' });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse((await readBody(req, maxBody)).toString('utf8'));
    } catch {
      send(res, 400, 'The request body is not JSON', { 'content-type': 'text/plain; charset=utf-8' });
      return;
    }
    const events: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    if (eventType === 'SubscriptionValidation') {
      const first = events[0] as { data?: { validationCode?: unknown } } | undefined;
      const code = first?.data?.validationCode;
      if (typeof code !== 'string') {
        send(res, 400, 'No validationCode in the validation event', { 'content-type': 'text/plain; charset=utf-8' });
        return;
      }
      opts.log.info(`Answered the Event Grid subscription validation for '${fn.name}'`, { functionName: fn.name });
      sendJson(res, 200, { validationResponse: code });
      return;
    }
    if (eventType === 'SubscriptionDeletion') {
      send(res, 202);
      return;
    }
    let failed = false;
    for (const event of events) {
      const id = (event as { id?: unknown } | null)?.id;
      const result = await opts.invoker.invoke({ fn, input: event, reason: `EventGrid trigger fired${typeof id === 'string' ? ` for event ${id}` : ''}.` });
      if (!result.ok) failed = true;
    }
    send(res, failed ? 500 : 202);
  }

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (opts.masterKeys.length > 0 && !keyMatches(presentedKey(req, url), opts.masterKeys)) {
      send(res, 401);
      return;
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/admin/host/status' && method === 'GET') {
      sendJson(res, 200, { state: 'Running', functions: opts.functions.length });
      return;
    }
    if (path === '/admin/functions' && method === 'GET') {
      sendJson(res, 200, opts.functions.map((f) => ({ name: f.name, kind: f.kind })));
      return;
    }
    const m = /^\/admin\/functions\/([^/]+)$/.exec(path);
    if (!m || method !== 'POST') {
      send(res, 404);
      return;
    }
    const fn = byName.get(decodeURIComponent(m[1] as string).toLowerCase());
    if (!fn) {
      send(res, 404);
      return;
    }
    if (fn.kind === 'http') {
      send(res, 400, `Function '${fn.name}' is an HTTP function; call its route instead`, { 'content-type': 'text/plain; charset=utf-8' });
      return;
    }
    const raw = (await readBody(req, maxBody)).toString('utf8');
    let input = '';
    if (raw.trim() !== '') {
      try {
        const body = JSON.parse(raw) as { input?: unknown };
        input = typeof body.input === 'string' ? body.input : body.input === undefined ? '' : JSON.stringify(body.input);
      } catch {
        send(res, 400, 'The body must be JSON: { "input": "..." }', { 'content-type': 'text/plain; charset=utf-8' });
        return;
      }
    }
    opts.runByHand(fn, input);
    send(res, 202);
  }

  return async (req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    try {
      const p = url.pathname;
      if (p === '/runtime/webhooks/eventgrid' || p === '/runtime/webhooks/EventGrid') await eventGrid(req, res, url);
      else if (p === '/admin' || p.startsWith('/admin/')) await admin(req, res, url);
      else if (prefix === '' || p.toLowerCase() === prefix || p.toLowerCase().startsWith(`${prefix}/`)) {
        await httpFunction(req, res, url, p.slice(prefix.length));
      } else if (p === '/') send(res, 200, 'Your Functions 4.0 app (Warden host runner) is up and running', { 'content-type': 'text/plain; charset=utf-8' });
      else send(res, 404);
    } catch (err) {
      if (err instanceof HttpFailure) send(res, err.status, err.message, { 'content-type': 'text/plain; charset=utf-8' });
      else {
        opts.log.error(`Request ${req.method ?? ''} ${url.pathname} failed: ${err instanceof Error ? err.message : String(err)}`);
        send(res, 500);
      }
    }
  };
}

/** What a timer handler gets when run by hand or on schedule. */
export function timerInput(isPastDue: boolean, last: Date | undefined, next: Date | undefined, now: Date): Timer {
  return {
    isPastDue,
    schedule: { adjustForDST: true },
    scheduleStatus: {
      last: (last ?? new Date(0)).toISOString(),
      next: (next ?? now).toISOString(),
      lastUpdated: now.toISOString(),
    },
  };
}
