/**
 * The emulator's shared vocabulary. Each emulated service (ARM, Graph, Key Vault, Event Grid, MSI)
 * is a set of route handlers over one parsed request type, served by `createService` in server.ts.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type ServiceName = 'arm' | 'graph' | 'keyvault' | 'eventgrid' | 'msi' | 'webhook' | 'control';

export interface EmuRequest {
  service: ServiceName;
  method: string;
  /** Path with duplicate slashes collapsed and without the query, percent-decoded per segment. */
  path: string;
  /** Query parsed with a real URL parser: `api%2Dversion` arrives as `api-version`. */
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body when the body is JSON, else undefined. */
  body: unknown;
  rawBody: Buffer;
  /** `https://127.0.0.1:<port>` of the listener that received the request (for absolute links). */
  baseUrl: string;
  /** Route parameters filled by the router. */
  params: Record<string, string>;
}

export interface EmuResponse {
  status: number;
  headers?: Record<string, string>;
  /** Objects and arrays are sent as JSON; strings as text; undefined as an empty body. */
  body?: unknown;
}

export type Handler = (req: EmuRequest) => EmuResponse | Promise<EmuResponse>;

/** One recorded call, for tests and benchmarks that count API calls. */
export interface RecordedRequest {
  seq: number;
  time: number;
  service: ServiceName;
  method: string;
  path: string;
  query: string;
  status: number;
  /** A stable name for the operation, e.g. `arm.roleAssignments.create` (set by the route). */
  operation: string;
  durationMs: number;
  /** True when the answer was produced by fault injection rather than the service. */
  injected: boolean;
}

/** An ARM/Graph style error answer. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): EmuResponse {
  return { status, body: { error: { code, message } }, ...(headers ? { headers } : {}) };
}
