/**
 * Which groups are nested in which bound groups. The webhook needs it to tell "a group nested in a
 * bound group changed" from "an unrelated group changed" within Graph's 3 seconds, so it is kept in
 * the StateStore (read once, cached in memory briefly) and rebuilt in queued work when it is stale:
 * older than its TTL, built for another set of bound groups, or marked stale by the delta catch-up
 * after a group was added to or removed from a watched group.
 */
import type { Clock } from '../clock';
import { mapSettled } from '../concurrency';
import type { Logger } from '../logging';
import type { Directory } from '../ports/directory';
import type { StateStore } from '../ports/state';
import { K_NESTING, P_RBAC, nestingRecordSchema, putIfUnchanged, readEntry, setHash, type NestingRecord } from './store';

/** nested group id → the bound groups that hold it. */
export type NestingIndex = ReadonlyMap<string, ReadonlySet<string>>;

export function invert(byBound: Readonly<Record<string, readonly string[]>>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [bound, nested] of Object.entries(byBound)) {
    for (const n of nested) {
      const key = n.toLowerCase();
      if (key === bound) continue;
      let s = out.get(key);
      if (!s) out.set(key, (s = new Set()));
      s.add(bound);
    }
  }
  return out;
}

export interface NestingOptions {
  state: StateStore;
  directory: Directory;
  clock: Clock;
  ttlMs: number;
  /** How long the webhook trusts its in-memory copy before reading the table again. */
  memoryTtlMs: number;
  concurrency: number;
}

export class NestingMap {
  private memo: { at: number; record: NestingRecord | undefined } | undefined;

  constructor(private readonly o: NestingOptions) {}

  private now(): number {
    return this.o.clock.now().getTime();
  }

  private async read(): Promise<{ value: NestingRecord; etag: string } | undefined> {
    const got = await readEntry(this.o.state, P_RBAC, K_NESTING, nestingRecordSchema);
    this.memo = { at: this.now(), record: got?.value };
    return got;
  }

  /**
   * The stored index, for the webhook: no Graph call, at most one table read. An index built for
   * another set of bound groups is ignored except for the groups still bound.
   */
  async index(bound: readonly string[]): Promise<NestingIndex> {
    let record = this.memo && this.now() - this.memo.at < this.o.memoryTtlMs ? this.memo.record : undefined;
    if (!record) record = (await this.read())?.value;
    if (!record) return new Map();
    const boundSet = new Set(bound);
    const byBound: Record<string, string[]> = {};
    for (const [b, nested] of Object.entries(record.byBound)) if (boundSet.has(b)) byBound[b] = nested;
    return invert(byBound);
  }

  /**
   * The index, rebuilt from Graph first when stale (queued work only: one call per bound group).
   * `nestedOf` may answer from a member expansion the reconciles share, so a members-mode group's
   * pages are not fetched twice.
   */
  async fresh(bound: readonly string[], log: Logger, nestedOf: (group: string) => Promise<string[]> = (g) => this.o.directory.nestedGroups(g)): Promise<NestingIndex> {
    const got = await this.read();
    const key = setHash(bound);
    const r = got?.value;
    const stale = !r || r.stale === true || r.complete === false || r.boundKey !== key || this.now() - Date.parse(r.refreshedAt) > this.o.ttlMs;
    if (!stale) return invert(r.byBound);
    const results = await mapSettled(bound, this.o.concurrency, nestedOf);
    const byBound: Record<string, string[]> = {};
    bound.forEach((g, i) => {
      const res = results[i];
      if (res?.status === 'fulfilled') byBound[g] = [...new Set(res.value)].sort();
    });
    const failed = results.find((res): res is PromiseRejectedResult => res.status === 'rejected');
    if (failed) throw failed.reason;
    const record: NestingRecord = { boundKey: key, refreshedAt: this.o.clock.now().toISOString(), byBound };
    if (!(await putIfUnchanged(this.o.state, P_RBAC, K_NESTING, record, got?.etag))) {
      log.debug('Another instance rebuilt the group nesting map at the same time');
    }
    this.memo = { at: this.now(), record };
    log.info('Rebuilt the group nesting map', { boundGroups: bound.length, nestedGroups: invert(byBound).size });
    return invert(byBound);
  }

  /**
   * Records what a member expansion of a bound group saw, when it differs from the stored map. Before
   * any rebuild (or after the bound groups changed) this starts a partial map, which the webhook
   * already uses and the next catch-up completes.
   */
  async note(boundGroup: string, nested: readonly string[], bound: readonly string[]): Promise<void> {
    const got = await this.read();
    const key = setHash(bound);
    const want = [...new Set(nested.map((n) => n.toLowerCase()))].sort();
    const current = got?.value.boundKey === key ? got.value : undefined;
    const have = current?.byBound[boundGroup];
    if (have && have.length === want.length && have.every((h, i) => h === want[i])) return;
    const record: NestingRecord = current
      ? { ...current, byBound: { ...current.byBound, [boundGroup]: want } }
      : { boundKey: key, refreshedAt: this.o.clock.now().toISOString(), complete: false, byBound: { [boundGroup]: want } };
    if (await putIfUnchanged(this.o.state, P_RBAC, K_NESTING, record, got?.etag)) this.memo = { at: this.now(), record };
  }

  /** Forces a rebuild by the next catch-up (a group joined or left a watched group). */
  async markStale(): Promise<void> {
    const got = await this.read();
    if (!got || got.value.stale) return;
    const record = { ...got.value, stale: true };
    if (await putIfUnchanged(this.o.state, P_RBAC, K_NESTING, record, got.etag)) this.memo = { at: this.now(), record };
  }
}
