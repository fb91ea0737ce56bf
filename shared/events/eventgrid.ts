/**
 * One shape for an Event Grid delivery, whichever schema the subscription uses. The Functions Event
 * Grid trigger hands us the Event Grid schema (`eventType`, `topic`, `eventTime`) or a CloudEvent
 * (`type`, `source`, `time`); both become a {@link NormalizedEvent}. Anything else is refused.
 */
import { z } from 'zod';
import { InputError } from '../errors';

export interface NormalizedEvent {
  id: string;
  type: string;
  /** Event Grid `topic` or CloudEvents `source`. */
  source: string;
  subject: string;
  time: string;
  data: unknown;
  schema: 'EventGridSchema' | 'CloudEventSchemaV1_0';
}

const text = z.string().max(4096);

const eventGridSchema = z.object({
  id: text.min(1),
  eventType: text.min(1),
  subject: text,
  topic: text.optional(),
  eventTime: text.optional(),
  data: z.unknown().optional(),
  dataVersion: z.string().optional(),
  metadataVersion: z.string().optional(),
});

const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: text.min(1),
  type: text.min(1),
  source: text.min(1),
  subject: text.optional(),
  time: text.optional(),
  data: z.unknown().optional(),
});

/** Parses one event of either schema; throws InputError naming what is missing. */
export function parseEventGridEvent(input: unknown): NormalizedEvent {
  if (typeof input === 'string') {
    try {
      input = JSON.parse(input);
    } catch {
      throw new InputError('InvalidEvent', 'The event is not JSON.');
    }
  }
  if (input && typeof input === 'object' && 'specversion' in input) {
    const r = cloudEventSchema.safeParse(input);
    if (!r.success) throw new InputError('InvalidEvent', `Not a valid CloudEvent: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
    const e = r.data;
    return { id: e.id, type: e.type, source: e.source, subject: e.subject ?? '', time: e.time ?? '', data: e.data, schema: 'CloudEventSchemaV1_0' };
  }
  const r = eventGridSchema.safeParse(input);
  if (!r.success) throw new InputError('InvalidEvent', `Not a valid Event Grid event: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ')}`);
  const e = r.data;
  return { id: e.id, type: e.eventType, source: e.topic ?? '', subject: e.subject, time: e.eventTime ?? '', data: e.data, schema: 'EventGridSchema' };
}

/** Reads a key of an object case-insensitively (Key Vault event data arrives as `Id`/`id`, `EXP`/`exp`…). */
export function getCaseInsensitive(obj: unknown, key: string): unknown {
  if (!obj || typeof obj !== 'object') return undefined;
  const want = key.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.trim().toLowerCase() === want) return v;
  return undefined;
}
