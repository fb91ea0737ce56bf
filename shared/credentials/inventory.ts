/**
 * The credential inventory: every application's credential metadata (never a secret), kept fresh by
 * Graph's `applications/delta` and stored in the StateStore, so a sweep of a quiet tenant costs one
 * Graph request (the delta link answering "nothing changed") however many apps there are.
 *
 * Why stored and not recomputed: delta answers only what changed, and credentials come due without
 * changing, so the last known state of every app has to be kept. Why buckets: one table row per app
 * would cost 10,000 writes on the first scan; one row for all would pass the Table service's 64 KiB
 * property limit. So apps are hashed by app id into buckets (rows of at most ~28,000 characters of
 * JSON): the first scan writes each bucket once, a delta round rewrites only the buckets it touched,
 * and a single-app lookup reads one bucket. Buckets live under a generation number that the meta row
 * points to, so a full resynchronisation switches over atomically (the meta row is written last).
 *
 * The delta link advances only after the buckets are written: a crash in between replays the same
 * changes, and replaying is harmless (each entry is the app's current state).
 */
import { z } from 'zod';
import type { Clock } from '../clock';
import { mapSettled } from '../concurrency';
import { TransientError } from '../errors';
import type { Logger } from '../logging';
import { type AppCredential, type AppDelta, type AppRegistration, type Applications, DeltaExpiredError } from '../ports/applications';
import { ConcurrencyError, type StateStore } from '../ports/state';
import { PARTITIONS } from './model';

const META = 'meta';
/** Largest bucket JSON kept in one row (the Table service allows 32K UTF-16 characters per string property). */
export const MAX_BUCKET_CHARS = 28_000;
/** Size a full synchronisation aims each bucket at, leaving room to grow. */
const TARGET_BUCKET_CHARS = 12_000;
const MIN_BUCKETS = 16;
const WRITE_CONCURRENCY = 8;

/** [keyId, displayName, start, end, type?] */
const compactCredSchema = z.tuple([z.string(), z.string().nullable(), z.string().nullable(), z.string().nullable()]).rest(z.string());
type CompactCred = z.infer<typeof compactCredSchema>;

const compactAppSchema = z.object({
  /** object id */
  i: z.string(),
  /** app id (lower case) */
  a: z.string(),
  n: z.string(),
  p: z.array(compactCredSchema),
  k: z.array(compactCredSchema),
});
type CompactApp = z.infer<typeof compactAppSchema>;

const bucketSchema = z.object({ apps: z.array(compactAppSchema) });

const metaSchema = z.object({
  v: z.literal(1),
  gen: z.number().int().nonnegative(),
  buckets: z.number().int().positive(),
  deltaLink: z.string(),
  /** Last completed delta round. */
  syncedAt: z.string(),
  fullSyncAt: z.string(),
  apps: z.number().int().nonnegative(),
});
type Meta = z.infer<typeof metaSchema>;

export interface InventorySnapshot {
  apps: Map<string, AppRegistration>;
  syncedAt: Date;
  /** True when this sync was a full scan. */
  full: boolean;
  /** Graph requests the delta round took. */
  graphRequests: number;
  /** App ids (lower case) the round reported as changed or removed. */
  changed: Set<string>;
}

export interface InventoryDeps {
  state: StateStore;
  applications: Applications;
  clock: Clock;
  logger: Logger;
}

function compact(c: AppCredential): CompactCred {
  return c.type !== undefined ? [c.keyId, c.displayName, c.startDateTime, c.endDateTime, c.type] : [c.keyId, c.displayName, c.startDateTime, c.endDateTime];
}

function expand(kind: AppCredential['kind'], c: CompactCred): AppCredential {
  const [keyId, displayName, startDateTime, endDateTime, type] = c;
  return { kind, keyId, displayName, startDateTime, endDateTime, ...(type !== undefined ? { type } : {}) };
}

export function toCompact(a: AppRegistration): CompactApp {
  return { i: a.id, a: a.appId.toLowerCase(), n: a.displayName, p: a.passwords.map(compact), k: a.certificates.map(compact) };
}

export function fromCompact(c: CompactApp): AppRegistration {
  return {
    id: c.i,
    appId: c.a,
    displayName: c.n,
    passwords: c.p.map((x) => expand('password', x)),
    certificates: c.k.map((x) => expand('certificate', x)),
  };
}

/** FNV-1a: stable across processes and Node versions (the bucket of an app must never move). */
export function bucketOf(appId: string, buckets: number): number {
  let h = 0x811c9dc5;
  const s = appId.toLowerCase();
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % buckets;
}

export function bucketKey(gen: number, index: number): string {
  return `g${gen}-b${String(index).padStart(4, '0')}`;
}

/** Enough buckets that each holds about {@link TARGET_BUCKET_CHARS}; a power of two. */
export function bucketCountFor(totalChars: number): number {
  let n = MIN_BUCKETS;
  while (n * TARGET_BUCKET_CHARS < totalChars) n *= 2;
  return n;
}

interface LoadedBucket {
  apps: CompactApp[];
  etag: string | undefined;
}

export class CredentialInventory {
  constructor(private readonly deps: InventoryDeps) {}

  /**
   * Brings the inventory up to date with one delta round (a full scan the first time, or when
   * Graph refuses the stored link) and returns every app. One retry when another instance synced
   * at the same moment.
   */
  async sync(): Promise<InventorySnapshot> {
    try {
      return await this.syncOnce();
    } catch (err) {
      if (!(err instanceof ConcurrencyError)) throw err;
      this.deps.logger.warn('Credential inventory changed during the sync; syncing again');
      try {
        return await this.syncOnce();
      } catch (again) {
        if (again instanceof ConcurrencyError) throw new TransientError('InventoryConflict', 'Another instance is syncing the credential inventory', again);
        throw again;
      }
    }
  }

  /** One app from the stored inventory, with the time of the last sync; undefined when there is no inventory yet. */
  async lookup(appId: string): Promise<{ app: AppRegistration | undefined; syncedAt: Date } | undefined> {
    const meta = await this.readMeta();
    if (!meta) return undefined;
    const id = appId.toLowerCase();
    const row = await this.deps.state.get<unknown>(PARTITIONS.inventory, bucketKey(meta.value.gen, bucketOf(id, meta.value.buckets)));
    const parsed = row ? bucketSchema.safeParse(row.value) : undefined;
    const found = parsed?.success ? parsed.data.apps.find((a) => a.a === id) : undefined;
    return { app: found ? fromCompact(found) : undefined, syncedAt: new Date(meta.value.syncedAt) };
  }

  private async readMeta(): Promise<{ value: Meta; etag: string } | undefined> {
    const m = await this.deps.state.get<unknown>(PARTITIONS.inventory, META);
    if (!m) return undefined;
    const parsed = metaSchema.safeParse(m.value);
    return parsed.success ? { value: parsed.data, etag: m.etag } : undefined;
  }

  private async syncOnce(): Promise<InventorySnapshot> {
    const { state, logger } = this.deps;
    const rows = await state.list<unknown>(PARTITIONS.inventory);
    const metaRow = rows.find((r) => r.key === META);
    const metaParsed = metaRow ? metaSchema.safeParse(metaRow.value) : undefined;
    const meta = metaParsed?.success ? metaParsed.data : undefined;
    const staleKeys = rows.filter((r) => r.key !== META && (!meta || !r.key.startsWith(`g${meta.gen}-`))).map((r) => r.key);
    if (!meta || !metaRow) return this.fullSync(metaRow?.etag, meta?.gen ?? 0, rows.filter((r) => r.key !== META).map((r) => r.key));

    const buckets = new Map<number, LoadedBucket>();
    for (const r of rows) {
      const m = /^g(\d+)-b(\d+)$/.exec(r.key);
      if (!m || Number(m[1]) !== meta.gen) continue;
      const parsed = bucketSchema.safeParse(r.value);
      if (!parsed.success) {
        logger.warn('Discarded an unreadable credential inventory bucket; running a full scan', { key: r.key });
        return this.fullSync(metaRow.etag, meta.gen, rows.filter((x) => x.key !== META).map((x) => x.key));
      }
      buckets.set(Number(m[2]), { apps: parsed.data.apps, etag: r.etag });
    }

    let round;
    try {
      round = await this.deps.applications.delta(meta.deltaLink);
    } catch (err) {
      if (!(err instanceof DeltaExpiredError)) throw err;
      logger.warn('The stored applications delta link expired; running a full scan');
      return this.fullSync(metaRow.etag, meta.gen, rows.filter((r) => r.key !== META).map((r) => r.key));
    }

    const byObjectId = new Map<string, { bucket: number; app: CompactApp }>();
    for (const [b, bucket] of buckets) for (const a of bucket.apps) byObjectId.set(a.i.toLowerCase(), { bucket: b, app: a });
    const touched = new Set<number>();
    const changed = new Set<string>();
    const drop = (objectId: string): void => {
      const found = byObjectId.get(objectId);
      if (!found) return;
      const bucket = buckets.get(found.bucket);
      if (bucket) bucket.apps = bucket.apps.filter((a) => a.i.toLowerCase() !== objectId);
      byObjectId.delete(objectId);
      touched.add(found.bucket);
      changed.add(found.app.a);
    };
    for (const change of round.changes) {
      const objectId = change.id.toLowerCase();
      if (change.removed) {
        drop(objectId);
        continue;
      }
      const merged = await this.merge(change, byObjectId.get(objectId)?.app);
      if (!merged) continue;
      drop(objectId);
      const b = bucketOf(merged.a, meta.buckets);
      const bucket = buckets.get(b) ?? { apps: [], etag: undefined };
      bucket.apps.push(merged);
      buckets.set(b, bucket);
      byObjectId.set(objectId, { bucket: b, app: merged });
      touched.add(b);
      changed.add(merged.a);
    }

    const now = this.deps.clock.now().toISOString();
    const all = [...byObjectId.values()].map((x) => x.app);
    const tooBig = [...touched].some((b) => JSON.stringify({ apps: buckets.get(b)?.apps ?? [] }).length > MAX_BUCKET_CHARS);
    if (tooBig) {
      logger.info('Credential inventory buckets are full; re-sharding');
      const gen = await this.writeGeneration(all, meta.gen + 1, Math.max(meta.buckets * 2, bucketCountFor(totalChars(all))), round.deltaLink, meta.fullSyncAt, metaRow.etag);
      await this.deleteKeys(rows.filter((r) => r.key !== META).map((r) => r.key));
      logger.debug('Re-sharded credential inventory', { gen });
    } else {
      const results = await mapSettled([...touched], WRITE_CONCURRENCY, async (b) => {
        const bucket = buckets.get(b);
        const key = bucketKey(meta.gen, b);
        if (!bucket) return;
        const opts = bucket.etag ? { etag: bucket.etag } : { create: true };
        if (bucket.apps.length === 0 && bucket.etag) await state.put(PARTITIONS.inventory, key, { apps: [] }, { etag: bucket.etag });
        else if (bucket.apps.length > 0) await state.put(PARTITIONS.inventory, key, { apps: bucket.apps }, opts);
      });
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const next: Meta = { ...meta, deltaLink: round.deltaLink, syncedAt: now, apps: all.length };
      await state.put(PARTITIONS.inventory, META, next, { etag: metaRow.etag });
      if (staleKeys.length > 0) await this.deleteKeys(staleKeys);
    }
    if (round.changes.length > 0) logger.info(`Synced the credential inventory: ${round.changes.length} application change(s)`, { apps: all.length, graphRequests: round.pages });
    return { apps: toMap(all), syncedAt: new Date(now), full: false, graphRequests: round.pages, changed };
  }

  /** A delta entry merged over what was stored (Graph may leave out unchanged properties). */
  private async merge(change: AppDelta, existing: CompactApp | undefined): Promise<CompactApp | undefined> {
    let appId = change.appId ?? existing?.a;
    let base = existing;
    if (!appId) {
      // A changed app the inventory has never seen, reported without its app id: read it once.
      const fetched = await this.deps.applications.getByObjectId(change.id);
      if (!fetched) return undefined;
      base = toCompact(fetched);
      appId = base.a;
    }
    return {
      i: change.id,
      a: appId.toLowerCase(),
      n: change.displayName ?? base?.n ?? '',
      p: change.passwords ? change.passwords.map(compact) : (base?.p ?? []),
      k: change.certificates ? change.certificates.map(compact) : (base?.k ?? []),
    };
  }

  private async fullSync(metaEtag: string | undefined, previousGen: number, oldKeys: string[]): Promise<InventorySnapshot> {
    const round = await this.deps.applications.delta(undefined);
    const byObjectId = new Map<string, CompactApp>();
    for (const change of round.changes) {
      if (change.removed) {
        byObjectId.delete(change.id.toLowerCase());
        continue;
      }
      const merged = await this.merge(change, byObjectId.get(change.id.toLowerCase()));
      if (merged) byObjectId.set(change.id.toLowerCase(), merged);
    }
    const all = [...byObjectId.values()];
    const now = this.deps.clock.now().toISOString();
    await this.writeGeneration(all, previousGen + 1, bucketCountFor(totalChars(all)), round.deltaLink, now, metaEtag);
    if (oldKeys.length > 0) await this.deleteKeys(oldKeys);
    this.deps.logger.info(`Scanned ${all.length} application(s) for credentials`, { graphRequests: round.pages });
    return { apps: toMap(all), syncedAt: new Date(now), full: true, graphRequests: round.pages, changed: new Set(all.map((a) => a.a)) };
  }

  private async writeGeneration(all: CompactApp[], gen: number, buckets: number, deltaLink: string, fullSyncAt: string, metaEtag: string | undefined): Promise<number> {
    const { state } = this.deps;
    let count = buckets;
    let groups = group(all, count);
    // A skewed hash could still overfill one bucket: double until none is.
    while ([...groups.values()].some((apps) => JSON.stringify({ apps }).length > MAX_BUCKET_CHARS)) {
      count *= 2;
      groups = group(all, count);
    }
    const results = await mapSettled([...groups], WRITE_CONCURRENCY, ([b, apps]) => state.put(PARTITIONS.inventory, bucketKey(gen, b), { apps }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const now = this.deps.clock.now().toISOString();
    const meta: Meta = { v: 1, gen, buckets: count, deltaLink, syncedAt: now, fullSyncAt, apps: all.length };
    await state.put(PARTITIONS.inventory, META, meta, metaEtag ? { etag: metaEtag } : { create: true });
    return gen;
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    const results = await mapSettled(keys, WRITE_CONCURRENCY, (k) => this.deps.state.delete(PARTITIONS.inventory, k));
    const failures = results.filter((r) => r.status === 'rejected').length;
    // Left-over rows of an old generation are ignored by readers and deleted by the next sync.
    if (failures > 0) this.deps.logger.warn(`Could not delete ${failures} old credential inventory row(s)`);
  }
}

function group(all: CompactApp[], buckets: number): Map<number, CompactApp[]> {
  const out = new Map<number, CompactApp[]>();
  for (const a of all) {
    const b = bucketOf(a.a, buckets);
    const list = out.get(b);
    if (list) list.push(a);
    else out.set(b, [a]);
  }
  return out;
}

function totalChars(all: CompactApp[]): number {
  let n = 0;
  for (const a of all) n += JSON.stringify(a).length + 1;
  return n;
}

function toMap(all: CompactApp[]): Map<string, AppRegistration> {
  return new Map(all.map((a) => [a.a, fromCompact(a)]));
}
