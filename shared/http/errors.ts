/**
 * The one error envelope of every route (SPEC §4): `{ "error": { "code", "message" } }`. A 4xx says
 * what was wrong with the request; a 5xx says only which invocation to look up in the logs. Never a
 * stack trace, an SDK body or a secret.
 */
import type { HttpResponseInit } from '@azure/functions';
import { InputError, statusOf, ThrottledError, WardenError } from '../errors';
import { redact } from '../redact';

export interface ErrorBody {
  error: { code: string; message: string; invocationId?: string };
}

/** Header that carries the invocation id on every answer (the id to search the logs for). */
export const INVOCATION_HEADER = 'x-warden-invocation-id';

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpResponseInit {
  const body: ErrorBody = { error: { code, message: redact(message) } };
  return { status, jsonBody: body, headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers } };
}

/** True for errors whose message was written for the caller (bad input, refused access). */
export function isClientError(err: unknown): err is WardenError {
  return err instanceof WardenError && err.status >= 400 && err.status < 500;
}

/** Maps any thrown value to an HTTP answer. */
export function toErrorResponse(err: unknown, invocationId: string): HttpResponseInit {
  if (isClientError(err)) {
    const headers: Record<string, string> = {};
    if (err instanceof MethodNotAllowedError) headers.Allow = err.allow.join(', ');
    return errorResponse(err.status, err.code, err.message, headers);
  }
  // An Azure or Graph service that throttles or is down makes this a 503 (try again), not a bug (500).
  const upstream = err instanceof WardenError ? undefined : statusOf(err);
  const unavailable = upstream !== undefined && [429, 502, 503, 504].includes(upstream);
  const status = err instanceof WardenError && err.status >= 500 && err.status < 600 ? err.status : unavailable ? 503 : 500;
  const code = err instanceof WardenError ? err.code : unavailable ? 'UpstreamUnavailable' : 'InternalError';
  const headers: Record<string, string> = {};
  if (err instanceof ThrottledError && err.retryAfterMs !== undefined) headers['Retry-After'] = String(Math.ceil(err.retryAfterMs / 1000));
  const res = errorResponse(
    status,
    code,
    `Warden could not complete the request${status === 503 ? ' right now; try again later' : ''}. Look up invocation ${invocationId} in the logs.`,
    headers,
  );
  (res.jsonBody as ErrorBody).error.invocationId = invocationId;
  return res;
}

/** 405 that names the allowed methods (in the `Allow` header too). */
export class MethodNotAllowedError extends InputError {
  constructor(
    method: string,
    readonly allow: string[],
  ) {
    super('MethodNotAllowed', `${method} is not allowed here; use ${allow.join(' or ')}.`, 405);
    this.name = 'MethodNotAllowedError';
  }
}
