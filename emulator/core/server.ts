import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { EmuClock } from './clock';
import type { FaultDecision, FaultInjector } from './faults';
import type { RequestRecord } from './record';
import type { Router } from './router';
import type { EmuRequest, EmuResponse, ServiceName } from './types';
import { errorResponse } from './types';

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
}

/** What every service shares: one clock, one request record, one fault injector. */
export interface EmuContext {
  clock: EmuClock;
  record: RequestRecord;
  faults: FaultInjector;
}

export interface ServiceOptions {
  service: ServiceName;
  router: Router;
  ctx: EmuContext;
  /** HTTPS when given (everything but the MSI endpoint); plain HTTP otherwise. */
  tls?: TlsMaterial;
  /** Checked before routing; return a response to refuse the request (e.g. a missing bearer token). */
  authorize?: (req: EmuRequest) => EmuResponse | undefined;
  port?: number;
  /** Emulator-internal traffic (the control API): neither recorded nor subject to faults or latency. */
  internal?: boolean;
}

export interface RunningService {
  service: ServiceName;
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

function normalisePath(rawPath: string): string {
  const collapsed = rawPath.replace(/\/{2,}/g, '/');
  return collapsed
    .split('/')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    })
    .join('/');
}

function readBody(req: IncomingMessage, limit = 8 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, r: EmuResponse): void {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  let payload: Buffer | undefined;
  if (r.body === undefined || r.body === null) {
    payload = undefined;
  } else if (Buffer.isBuffer(r.body)) {
    payload = r.body;
  } else if (typeof r.body === 'string') {
    payload = Buffer.from(r.body);
    headers['Content-Type'] ??= 'text/plain; charset=utf-8';
  } else {
    payload = Buffer.from(JSON.stringify(r.body));
    headers['Content-Type'] ??= 'application/json; charset=utf-8';
  }
  headers['Content-Length'] = String(payload?.length ?? 0);
  res.writeHead(r.status, headers);
  res.end(payload);
}

/** Serves one emulated service on 127.0.0.1, recording every request and applying faults. */
export async function createService(opts: ServiceOptions): Promise<RunningService> {
  const { ctx, router, service } = opts;
  const sockets = new Set<Socket>();
  let baseUrl = '';

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    // Collapse slashes before parsing: `//subscriptions/…` would otherwise parse as a protocol-relative
    // URL with host `subscriptions` (ARM clients send exactly that, facts §0.4).
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = (q >= 0 ? rawUrl.slice(0, q) : rawUrl).replace(/\/{2,}/g, '/');
    const url = new URL(`http://x${rawPath.startsWith('/') ? '' : '/'}${rawPath}${q >= 0 ? rawUrl.slice(q) : ''}`);
    const rawBody = await readBody(req).catch(() => Buffer.alloc(0));
    let body: unknown;
    if (rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        body = undefined;
      }
    }
    const emuReq: EmuRequest = {
      service,
      method: (req.method ?? 'GET').toUpperCase(),
      path: normalisePath(url.pathname),
      query: url.searchParams,
      headers: req.headers,
      body,
      rawBody,
      baseUrl,
      params: {},
    };
    const route = router.match(emuReq);
    const operation = route?.operation ?? `${service}.unknown`;
    const decision: FaultDecision = opts.internal ? { delayMs: 0 } : ctx.faults.decide(emuReq, operation);
    if (decision.delayMs > 0) await new Promise((r) => setTimeout(r, decision.delayMs));
    if (decision.reset) {
      ctx.record.add({
        time: ctx.clock.now(), service, method: emuReq.method, path: emuReq.path, query: url.search,
        status: 0, operation, durationMs: Date.now() - started, injected: true,
      });
      req.socket.destroy();
      return;
    }
    let answer: EmuResponse;
    let injected = false;
    if (decision.response) {
      answer = decision.response;
      injected = true;
    } else {
      const refused = opts.authorize?.(emuReq);
      if (refused) answer = refused;
      else if (!route) answer = errorResponse(404, 'NotFound', `No emulated ${service} route for ${emuReq.method} ${emuReq.path}.`);
      else {
        try {
          answer = await route.handler(emuReq);
        } catch (err) {
          answer = errorResponse(500, 'EmulatorError', err instanceof Error ? err.message : String(err));
        }
      }
    }
    if (!opts.internal) {
      ctx.record.add({
        time: ctx.clock.now(), service, method: emuReq.method, path: emuReq.path, query: url.search,
        status: answer.status, operation, durationMs: Date.now() - started, injected,
      });
    }
    send(res, answer);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    onRequest(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, errorResponse(500, 'EmulatorError', String(err)));
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 5000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    service,
    url: baseUrl,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Requires `Authorization: Bearer <something>` (ARM and Graph refuse anonymous calls). */
export function requireBearer(req: EmuRequest): EmuResponse | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer \S+/.test(auth)) return undefined;
  return errorResponse(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing or not a Bearer token.');
}
