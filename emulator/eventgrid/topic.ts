/**
 * An Event Grid custom topic's publish endpoint (`POST /api/events?api-version=2018-01-01`), the target
 * of `EventGridPublisherClient`. It authenticates like the service (Entra bearer token, `aeg-sas-key`
 * or `aeg-sas-token`), validates every event, and keeps what it accepted for tests.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Router } from '../core/router';
import type { EmuContext } from '../core/server';
import type { EmuRequest, EmuResponse } from '../core/types';
import { errorResponse } from '../core/types';
import { recordHeaders } from './headers';

export type TopicSchema = 'EventGridSchema' | 'CloudEventSchemaV1_0';

export interface ReceivedTopicEvent {
  schema: TopicSchema;
  event: Record<string, unknown>;
  /** Request headers, credential values masked. */
  headers: Record<string, string>;
  auth: 'bearer' | 'sas-key' | 'sas-token';
  /** Emulator clock time of receipt (ms). */
  time: number;
}

export interface EventGridControl {
  /** The topic access key `aeg-sas-key` must carry (base64, as Azure issues it). */
  readonly accessKey: string;
  setAccessKey(key: string): void;
  received(): ReceivedTopicEvent[];
  clear(): void;
}

/** Event Grid refuses requests above 1 MB. */
const MAX_BODY_BYTES = 1024 * 1024;
const EG_REQUIRED = ['id', 'subject', 'eventType', 'eventTime'] as const;
const CE_REQUIRED = ['specversion', 'id', 'source', 'type'] as const;

class TopicError extends Error {
  override readonly name = 'TopicError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createEventGridTopicService(deps: { ctx: EmuContext }): { router: Router; control: EventGridControl } {
  let accessKey = randomBytes(32).toString('base64');
  const received: ReceivedTopicEvent[] = [];

  const publish = (req: EmuRequest): EmuResponse => {
    try {
      const auth = authenticate(req, accessKey);
      if (req.rawBody.length > MAX_BODY_BYTES) {
        throw new TopicError(413, 'RequestEntityTooLarge', `The request is larger than ${MAX_BODY_BYTES} bytes.`);
      }
      const { schema, events } = parseEvents(req);
      const headers = recordHeaders(req.headers);
      const time = deps.ctx.clock.now();
      for (const event of events) received.push({ schema, event, headers, auth, time });
      return { status: 200 };
    } catch (err) {
      if (err instanceof TopicError) return errorResponse(err.status, err.code, err.message);
      throw err;
    }
  };

  const router = new Router().add('POST', '/api/events', 'eventgrid.topic.publish', publish);
  const control: EventGridControl = {
    get accessKey() {
      return accessKey;
    },
    setAccessKey(key) {
      accessKey = key;
    },
    received: () => [...received],
    clear() {
      received.length = 0;
    },
  };
  return { router, control };
}

function header(req: EmuRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function authenticate(req: EmuRequest, accessKey: string): ReceivedTopicEvent['auth'] {
  const bearer = header(req, 'authorization');
  if (bearer !== undefined) {
    if (/^Bearer \S+/i.test(bearer)) return 'bearer';
    throw new TopicError(401, 'Unauthorized', 'The Authorization header must carry a Bearer token.');
  }
  const key = header(req, 'aeg-sas-key');
  if (key !== undefined) {
    if (sameText(key, accessKey)) return 'sas-key';
    throw new TopicError(401, 'Unauthorized', `The request authorization key is not authorized for ${req.baseUrl}.`);
  }
  const token = header(req, 'aeg-sas-token');
  if (token !== undefined) {
    if (validSasToken(token, accessKey)) return 'sas-token';
    throw new TopicError(401, 'Unauthorized', 'The request authorization token is not valid or has expired.');
  }
  throw new TopicError(
    401,
    'Unauthorized',
    'Request must contain one of the following authorization signature: aeg-sas-token, aeg-sas-key, or an Authorization bearer token.',
  );
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `r=<resource>&e=<expiry>&s=<base64 HMAC-SHA256 of "r=…&e=…" keyed with the decoded access key>`. */
function validSasToken(token: string, accessKey: string): boolean {
  const at = token.lastIndexOf('&s=');
  if (at < 0) return false;
  const unsigned = token.slice(0, at);
  const signature = decodeURIComponent(token.slice(at + 3));
  const expected = createHmac('sha256', Buffer.from(accessKey, 'base64')).update(unsigned).digest('base64');
  if (!sameText(signature, expected)) return false;
  const expiry = new URLSearchParams(unsigned).get('e');
  const expiresAt = expiry ? Date.parse(expiry) : NaN;
  return Number.isNaN(expiresAt) || expiresAt > Date.now();
}

function parseEvents(req: EmuRequest): { schema: TopicSchema; events: Record<string, unknown>[] } {
  const contentType = (header(req, 'content-type') ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? '';
  if (req.body === undefined) throw new TopicError(400, 'BadRequest', 'The request body is empty or is not valid JSON.');
  if (contentType === 'application/cloudevents-batch+json' || contentType === 'application/cloudevents+json') {
    const batch = contentType === 'application/cloudevents-batch+json';
    if (batch !== Array.isArray(req.body)) {
      throw new TopicError(
        400,
        'BadRequest',
        batch ? 'A CloudEvents batch must be a JSON array.' : 'A single CloudEvent must be a JSON object (use application/cloudevents-batch+json for arrays).',
      );
    }
    const events = asObjects(Array.isArray(req.body) ? req.body : [req.body]);
    events.forEach(validateCloudEvent);
    return { schema: 'CloudEventSchemaV1_0', events };
  }
  if (contentType !== 'application/json') {
    throw new TopicError(415, 'UnsupportedMediaType', `Content-Type ${contentType} is not supported.`);
  }
  if (!Array.isArray(req.body)) throw new TopicError(400, 'BadRequest', 'Event Grid schema events must be sent as a JSON array.');
  const events = asObjects(req.body);
  events.forEach(validateEventGridEvent);
  return { schema: 'EventGridSchema', events };
}

function asObjects(list: unknown[]): Record<string, unknown>[] {
  if (list.length === 0) throw new TopicError(400, 'BadRequest', 'The request contains no events.');
  return list.map((e, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      throw new TopicError(400, 'BadRequest', `The event at index ${i} is not a JSON object.`);
    }
    return e as Record<string, unknown>;
  });
}

function requireStrings(e: Record<string, unknown>, i: number, fields: readonly string[]): void {
  for (const f of fields) {
    const v = e[f];
    if (typeof v !== 'string' || v.trim() === '') {
      throw new TopicError(400, 'BadRequest', `Required property '${f}' was not found or is empty in the event at index ${i}.`);
    }
  }
}

function validateEventGridEvent(e: Record<string, unknown>, i: number): void {
  requireStrings(e, i, EG_REQUIRED);
  if (Number.isNaN(Date.parse(String(e.eventTime)))) {
    throw new TopicError(400, 'BadRequest', `Property 'eventTime' of the event at index ${i} is not a valid date-time.`);
  }
}

function validateCloudEvent(e: Record<string, unknown>, i: number): void {
  requireStrings(e, i, CE_REQUIRED);
  if (e.specversion !== '1.0') {
    throw new TopicError(400, 'BadRequest', `Property 'specversion' of the event at index ${i} must be "1.0".`);
  }
  if (e.time !== undefined && (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time)))) {
    throw new TopicError(400, 'BadRequest', `Property 'time' of the event at index ${i} is not a valid RFC 3339 timestamp.`);
  }
  if (e.data !== undefined && e.data_base64 !== undefined) {
    throw new TopicError(400, 'BadRequest', `The event at index ${i} has both 'data' and 'data_base64'.`);
  }
}
