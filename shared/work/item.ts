/**
 * A work item: "reconcile this target of this capability", with why and who asked. Triggers only
 * produce work items; the `work` function turns each into at most one reconcile (coalesced).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { capabilityName, triggerSchema, type CapabilityName, type Trigger } from '../capability';

/** The queue every capability's work goes through (SPEC §4). */
export const WORK_QUEUE = 'warden-work';
/** Where the host moves a work message after its last try. */
export const WORK_POISON_QUEUE = `${WORK_QUEUE}-poison`;
/** Table of per-target coalescing state. */
export const WORK_TABLE = 'wardenwork';

export const workItemSchema = z.object({
  id: z.string().min(1).max(128),
  capability: capabilityName,
  target: z.string().min(1).max(2048),
  reason: z.string().max(1024),
  trigger: triggerSchema,
  enqueuedAt: z.iso.datetime({ offset: true }),
});
export type WorkItem = z.infer<typeof workItemSchema>;

/** What a trigger asks for; `id` and `enqueuedAt` are filled in when it is queued. */
export interface WorkRequest {
  capability: CapabilityName;
  target: string;
  reason: string;
  trigger: Trigger;
}

export function newWorkItem(req: WorkRequest, now: Date): WorkItem {
  return {
    id: randomUUID(),
    capability: req.capability,
    target: req.target,
    reason: req.reason,
    trigger: req.trigger,
    enqueuedAt: now.toISOString(),
  };
}

/**
 * The queue message text: base64 of the JSON, which is what the Functions host expects by default
 * (host.json `extensions.queues.messageEncoding: base64`). The JS storage SDK does not encode by itself.
 */
export function encodeWorkItem(item: WorkItem): string {
  return Buffer.from(JSON.stringify(item), 'utf8').toString('base64');
}

export type DecodedWork = { ok: true; item: WorkItem } | { ok: false; error: string };

/**
 * Validates what the host hands the `work` function: the JSON-parsed object (the host parses JSON
 * text) or a string. Never throws: an unparsable message is terminal, not something to retry.
 */
export function decodeWorkMessage(entry: unknown): DecodedWork {
  let value = entry;
  if (typeof entry === 'string') {
    try {
      value = JSON.parse(entry);
    } catch {
      return { ok: false, error: 'the message is not JSON' };
    }
  }
  const res = workItemSchema.safeParse(value);
  if (!res.success) {
    return { ok: false, error: res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
  }
  return { ok: true, item: res.data };
}
