/**
 * Azure Resource Manager events (`Microsoft.Resources.ResourceWriteSuccess` / `ResourceDeleteSuccess`,
 * AZURE-API-FACTS §6.2) → work items. An event is a hint: it names a resource to reconcile, and the
 * reconcile reads the truth before it changes anything. So this mapping reads nothing itself, and:
 * - a resource outside the policy's `scopes` is ignored here, before anything reads it (a forged event
 *   causes no request at all);
 * - duplicates and out-of-order events just queue the same reconcile again (the queue coalesces them,
 *   and a reconcile of a settled resource plans nothing);
 * - interim writes (a compute still `Creating`) need nothing special: the reconcile sees the provisioning
 *   state and asks for a delayed re-check (compute/followup.ts);
 * - the write event of Warden's own identity PUT is ignored: the reconcile that made it saw the compute
 *   with the identity in the operation's final GET, so reconciling it again would only read it once more.
 *   It is recognised by the client request id ARM echoes (`data.httpRequest.clientRequestId`), which only
 *   this process knows ({@link OwnWriteLog}), never by a claim: an event of anyone else's write, or one
 *   this process does not remember (another instance, a restart), is reconciled as usual;
 * - anything else (other event types, other resource types, unparsable input) is ignored with a log line
 *   and never thrown, so Event Grid does not redeliver it again and again.
 *
 * Mapping: workspace write → `workspaces` (posture) + `rbac` (baseline role assignments) for the
 * workspace; compute write → `compute` for the compute; datastore write or delete → `workspaces` for its
 * workspace (a credential datastore may have appeared or gone); deletes of workspaces and computes →
 * nothing (nothing left to enforce; ARM removes role assignments at a deleted scope).
 */
import { z } from 'zod';
import type { CapabilityName } from '../capability';
import { InputError } from '../errors';
import type { Logger } from '../logging';
import type { Policy } from '../policy';
import { inScopes, ownMlWrites, parseMlResourceId, type OwnWriteLog } from '../ports/ml';
import type { WorkRequest } from '../work/item';
import { parseEventGridEvent, type NormalizedEvent } from './eventgrid';

export const RESOURCE_WRITE_SUCCESS = 'Microsoft.Resources.ResourceWriteSuccess';
export const RESOURCE_DELETE_SUCCESS = 'Microsoft.Resources.ResourceDeleteSuccess';

/** The parts of `data` Warden reads. Everything else (claims, authorization) is passed over. */
export const resourceEventDataSchema = z
  .object({
    resourceUri: z.string().max(2048).optional(),
    operationName: z.string().max(512).optional(),
    status: z.string().max(64).optional(),
    subscriptionId: z.string().max(64).optional(),
    correlationId: z.string().max(128).optional(),
    // Only to recognise Warden's own writes; a malformed one is as good as none, not a reason to drop the event.
    httpRequest: z
      .object({ clientRequestId: z.string().max(128).optional() })
      .loose()
      .optional()
      .catch(undefined),
  })
  .loose();
export type ResourceEventData = z.infer<typeof resourceEventDataSchema>;

export type ResourceKind = 'workspace' | 'compute' | 'datastore';

export type ResourceEventMapping =
  | { kind: 'work'; resourceId: string; resource: ResourceKind; items: WorkRequest[] }
  | { kind: 'ignored'; reason: string; resourceId?: string };

const DATASTORE_RE = /^(\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.MachineLearningServices\/workspaces\/[^/]+)\/datastores\/([^/]+)\/?$/i;

/** What kind of ML resource an id names, with the canonical ids of it and its workspace. */
export function classifyResourceId(id: string): { kind: ResourceKind; id: string; workspaceId: string } | undefined {
  const ds = DATASTORE_RE.exec(id);
  if (ds?.[1] && ds[2]) {
    const ws = parseMlResourceId(ds[1]);
    if (!ws) return undefined;
    return { kind: 'datastore', id: `${ws.workspaceId}/datastores/${ds[2]}`, workspaceId: ws.workspaceId };
  }
  const p = parseMlResourceId(id);
  if (!p) return undefined;
  if (p.compute) return { kind: 'compute', id: `${p.workspaceId}/computes/${p.compute}`, workspaceId: p.workspaceId };
  return { kind: 'workspace', id: p.workspaceId, workspaceId: p.workspaceId };
}

function sameId(a: string, b: string): boolean {
  const norm = (s: string): string => s.trim().replace(/\/+$/, '').toLowerCase();
  return norm(a) === norm(b);
}

/**
 * Maps one normalised Event Grid event (either schema) to work items, or says why it is ignored.
 * Reads and writes nothing; `ownWrites` (none = no write is recognised as Warden's own) is only asked.
 * @example resourceEventToWork(parseEventGridEvent(body), policy, ownMlWrites)
 */
export function resourceEventToWork(
  event: NormalizedEvent,
  policy: Pick<Policy, 'scopes'>,
  ownWrites?: Pick<OwnWriteLog, 'isOwn'>,
): ResourceEventMapping {
  const isWrite = event.type.toLowerCase() === RESOURCE_WRITE_SUCCESS.toLowerCase();
  const isDelete = event.type.toLowerCase() === RESOURCE_DELETE_SUCCESS.toLowerCase();
  if (!isWrite && !isDelete) return { kind: 'ignored', reason: `event type ${event.type} is not handled` };

  const parsedData = resourceEventDataSchema.safeParse(event.data ?? {});
  const data: ResourceEventData = parsedData.success ? parsedData.data : {};
  const uri = data.resourceUri?.trim() ?? '';
  const subject = event.subject.trim();
  if (uri && subject && !sameId(uri, subject)) {
    return { kind: 'ignored', reason: 'the subject and data.resourceUri name different resources' };
  }
  const resourceId = uri || subject;
  if (!resourceId) return { kind: 'ignored', reason: 'the event names no resource' };

  const r = classifyResourceId(resourceId);
  if (!r) return { kind: 'ignored', reason: 'not an Azure ML workspace, compute or datastore', resourceId };
  // Checked before anything else is done with the id: an out-of-scope resource is never read.
  if (!inScopes(r.id, policy.scopes)) return { kind: 'ignored', reason: 'outside the policy scopes', resourceId: r.id };

  if (isWrite && ownWrites?.isOwn(data.httpRequest?.clientRequestId, r.id)) {
    return { kind: 'ignored', reason: "Warden's own write, verified by the reconcile that made it", resourceId: r.id };
  }

  const verb = isWrite ? 'written' : 'deleted';
  const op = data.operationName ? ` (${data.operationName.slice(0, 200)})` : '';
  const trigger = { kind: 'event' as const, id: event.id.slice(0, 512) };
  const item = (capability: CapabilityName, target: string): WorkRequest => ({
    capability,
    target,
    reason: `${r.kind} ${verb}: ${r.id}${op}`.slice(0, 1024),
    trigger,
  });

  switch (r.kind) {
    case 'workspace':
      if (isDelete) return { kind: 'ignored', reason: 'workspace deleted: nothing left to enforce', resourceId: r.id };
      return { kind: 'work', resourceId: r.id, resource: r.kind, items: [item('workspaces', r.id), item('rbac', r.id)] };
    case 'compute':
      if (isDelete) return { kind: 'ignored', reason: 'compute deleted: nothing left to enforce', resourceId: r.id };
      return { kind: 'work', resourceId: r.id, resource: r.kind, items: [item('compute', r.id)] };
    case 'datastore':
      return { kind: 'work', resourceId: r.id, resource: r.kind, items: [item('workspaces', r.workspaceId)] };
  }
}

export interface ResourceEventDeps {
  policy: Pick<Policy, 'scopes'>;
  enqueue: (items: WorkRequest[]) => Promise<void>;
  logger: Logger;
  /** The writes of this process; default the process-wide log the ML adapter records into. */
  ownWrites?: Pick<OwnWriteLog, 'isOwn'>;
}

/**
 * The `resourceEvents` use case: parse, map, queue. Never throws for a bad or irrelevant event (it is
 * logged and dropped); throws only when queueing fails, so the invocation fails and Event Grid redelivers.
 */
export async function handleResourceEvent(input: unknown, deps: ResourceEventDeps): Promise<ResourceEventMapping> {
  let event: NormalizedEvent;
  try {
    event = parseEventGridEvent(input);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    deps.logger.warn('Ignored an event that could not be parsed', { reason: err.message });
    return { kind: 'ignored', reason: err.message };
  }
  const log = deps.logger.child({ eventId: event.id, eventType: event.type });
  const mapping = resourceEventToWork(event, deps.policy, deps.ownWrites ?? ownMlWrites);
  if (mapping.kind === 'ignored') {
    log.info(`Ignored resource event: ${mapping.reason}`, { subject: event.subject.slice(0, 512) });
    return mapping;
  }
  await deps.enqueue(mapping.items);
  log.info(`Queued ${mapping.items.map((i) => i.capability).join(' and ')} for ${mapping.resource} ${mapping.resourceId}`, {
    target: mapping.resourceId,
  });
  return mapping;
}
