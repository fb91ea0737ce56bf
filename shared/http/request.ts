/**
 * Reading a request safely: the method, a bounded JSON body, and query parameters, each refused
 * with a 4xx that says what is wrong (405, 413, 415, 400) before anything else runs.
 */
import type { HttpRequest } from '@azure/functions';
import type { z } from 'zod';
import { InputError } from '../errors';
import { MethodNotAllowedError } from './errors';

/** Largest JSON body a route accepts. */
export const MAX_BODY_BYTES = 64 * 1024;

export function requireMethod(req: Pick<HttpRequest, 'method'>, allowed: readonly string[]): void {
  if (!allowed.includes(req.method.toUpperCase())) throw new MethodNotAllowedError(req.method.toUpperCase(), [...allowed]);
}

async function readBounded(req: Pick<HttpRequest, 'body' | 'arrayBuffer'>, maxBytes: number): Promise<Buffer> {
  const tooLarge = (): InputError => new InputError('PayloadTooLarge', `The body is larger than ${maxBytes} bytes.`, 413);
  const stream = req.body;
  if (!stream) return Buffer.alloc(0);
  // The Functions request body is a web stream of bytes (its typing says `any`).
  const reader = (stream as ReadableStream<Uint8Array>).getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/**
 * The body as JSON: `Content-Type` must be JSON (415), the body at most `maxBytes` (413, checked
 * against Content-Length first and while reading), and well-formed (400).
 */
export async function readJsonBody(
  req: Pick<HttpRequest, 'headers' | 'body' | 'arrayBuffer'>,
  options: { maxBytes?: number; required?: boolean } = {},
): Promise<unknown> {
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw new InputError('PayloadTooLarge', `The body is larger than ${maxBytes} bytes.`, 413);
  const buf = await readBounded(req, maxBytes);
  if (buf.length === 0) {
    if (options.required === false) return undefined;
    throw new InputError('BodyRequired', 'The request needs a JSON body.');
  }
  const type = (req.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw new InputError('UnsupportedMediaType', `The body must be application/json${type ? `, not ${type}` : ' (set Content-Type)'}.`, 415);
  }
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    throw new InputError('InvalidJson', 'The body is not valid JSON.');
  }
}

/** One issue of a zod error as `path: message`. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(body)'}: ${i.message}`)
    .join('; ');
}

/**
 * Validates input with a schema; the error code comes from the first failing field (`codes`), so an
 * unknown capability answers `UnknownCapability` and a bad target `InvalidTarget`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, codes: Readonly<Record<string, string>> = {}): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first?.path[0];
  let code = typeof field === 'string' ? codes[field] : undefined;
  if (first?.code === 'unrecognized_keys') code = 'UnknownField';
  throw new InputError(code ?? 'InvalidInput', describeIssues(r.error));
}

/**
 * The named query parameters as an object for a schema. A parameter given twice is refused (which one
 * would win is not obvious to the caller); parameters not named (like the function key's `code`) are ignored.
 */
export function queryObject(req: Pick<HttpRequest, 'query'>, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const all = req.query.getAll(n);
    if (all.length > 1) throw new InputError('DuplicateParameter', `The query parameter "${n}" is given ${all.length} times.`);
    const v = all[0];
    if (v !== undefined) out[n] = v;
  }
  return out;
}
