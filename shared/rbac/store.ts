/**
 * What RBAC sync keeps in the StateStore (one Azure Table), and the small helpers around it. All of
 * it is Warden's own bookkeeping — never Azure or Graph state — so it is kept in `report` mode too.
 *
 * | partition       | key                          | value                                              |
 * |-----------------|------------------------------|----------------------------------------------------|
 * | `rbac`          | `subscription`               | the Graph subscription Warden keeps alive          |
 * | `rbac`          | `nesting`                    | bound group → groups nested in it (webhook mapping) |
 * | `rbac-delta`    | hash of a watched group set  | the groups delta cursor for that set               |
 * | `rbac-members`  | bound group id               | fingerprint of its members at the last fresh read  |
 * | `rbac-offboard` | `<workspace id>|<principal>` | a principal that may have lost a workspace         |
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConcurrencyError, type StateStore } from '../ports/state';

export const P_RBAC = 'rbac';
export const K_SUBSCRIPTION = 'subscription';
export const K_NESTING = 'nesting';
export const P_DELTA = 'rbac-delta';
export const P_MEMBERS = 'rbac-members';
export const P_OFFBOARD = 'rbac-offboard';

/** A short stable hash of a set of ids (order-free). */
export function setHash(ids: Iterable<string>): string {
  const sorted = [...new Set([...ids].map((i) => i.toLowerCase()))].sort();
  return createHash('sha256').update(sorted.join(',')).digest('hex').slice(0, 32);
}

export const subscriptionRecordSchema = z.object({
  id: z.string(),
  resource: z.string(),
  notificationUrl: z.string(),
  lifecycleNotificationUrl: z.string(),
  expirationDateTime: z.string(),
  createdAt: z.string(),
  renewedAt: z.string().optional(),
  /** sha256 of the client state the subscription was made with: a rotated WARDEN_CLIENT_STATE recreates it. */
  clientStateHash: z.string().optional(),
});
export type SubscriptionRecord = z.infer<typeof subscriptionRecordSchema>;

export const nestingRecordSchema = z.object({
  /** Hash of the bound group set this map was built for. */
  boundKey: z.string(),
  refreshedAt: z.string(),
  stale: z.boolean().optional(),
  /** False while only some bound groups' entries are known (written by reconciles before any rebuild). */
  complete: z.boolean().optional(),
  /** Bound group → ids of groups nested in it (transitively), all lower case. */
  byBound: z.record(z.string(), z.array(z.string())),
});
export type NestingRecord = z.infer<typeof nestingRecordSchema>;

export const deltaCursorSchema = z.object({
  deltaLink: z.string(),
  groups: z.array(z.string()),
  updatedAt: z.string(),
});
export type DeltaCursor = z.infer<typeof deltaCursorSchema>;

export const membersRecordSchema = z.object({ fingerprint: z.string(), count: z.number(), updatedAt: z.string() });
export type MembersRecord = z.infer<typeof membersRecordSchema>;

export const offboardRecordSchema = z.object({
  workspaceId: z.string(),
  principalId: z.string(),
  principalType: z.enum(['User', 'ServicePrincipal']),
  reason: z.string(),
  since: z.string(),
});
export type OffboardRecord = z.infer<typeof offboardRecordSchema>;

export function offboardKey(workspaceId: string, principalId: string): string {
  return `${workspaceId.replace(/\/+$/, '').toLowerCase()}|${principalId.toLowerCase()}`;
}

/** Reads and validates one entry; a malformed one reads as absent (it is rebuilt). */
export async function readEntry<T>(state: StateStore, partition: string, key: string, schema: z.ZodType<T>): Promise<{ value: T; etag: string } | undefined> {
  const got = await state.get<unknown>(partition, key);
  if (!got) return undefined;
  const r = schema.safeParse(got.value);
  return r.success ? { value: r.data, etag: got.etag } : undefined;
}

/** Every valid entry of a partition. */
export async function listEntries<T>(state: StateStore, partition: string, schema: z.ZodType<T>): Promise<Array<{ key: string; value: T; etag: string }>> {
  const out: Array<{ key: string; value: T; etag: string }> = [];
  for (const e of await state.list<unknown>(partition)) {
    const r = schema.safeParse(e.value);
    if (r.success) out.push({ key: e.key, value: r.data, etag: e.etag });
  }
  return out;
}

/** Writes unless another writer changed the entry since it was read (then that writer's value stands). */
export async function putIfUnchanged<T>(state: StateStore, partition: string, key: string, value: T, etag: string | undefined): Promise<boolean> {
  try {
    await state.put(partition, key, value, etag ? { etag } : { create: true });
    return true;
  } catch (err) {
    if (err instanceof ConcurrencyError) return false;
    throw err;
  }
}
