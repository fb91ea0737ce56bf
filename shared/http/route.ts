/**
 * Wraps a route handler: refuses other methods with 405, turns every error into the SPEC §4 envelope,
 * logs 5xx with the invocation id, and tags every answer with that id.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { loggerFromContext, type Logger } from '../logging';
import { INVOCATION_HEADER, isClientError, toErrorResponse } from './errors';
import { requireMethod } from './request';

/** Methods every route is registered for, so a wrong one gets our 405 instead of the host's bare 404. */
export const ALL_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export interface RouteContext {
  invocationId: string;
  logger: Logger;
}

export type RouteHandler = (req: HttpRequest, ctx: RouteContext, context: InvocationContext) => Promise<HttpResponseInit>;

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers } };
}

export function httpRoute(methods: readonly string[], handler: RouteHandler): (req: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit> {
  return async (req, context) => {
    const invocationId = context.invocationId;
    const logger = loggerFromContext(context, { route: new URL(req.url).pathname });
    let res: HttpResponseInit;
    try {
      requireMethod(req, methods);
      res = await handler(req, { invocationId, logger }, context);
    } catch (err) {
      if (isClientError(err)) logger.info(`Refused the request: ${err.message}`, { status: err.status, code: err.code });
      else logger.error('The request failed', { error: err });
      res = toErrorResponse(err, invocationId);
    }
    const headers = new Headers(res.headers);
    headers.set(INVOCATION_HEADER, invocationId);
    return { ...res, headers: Object.fromEntries(headers.entries()) };
  };
}
