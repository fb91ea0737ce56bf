/**
 * A per-process cache of promises with a time to live. Concurrent callers of the same key share one
 * load (so a sweep's many reconciles read each role, group and member list once), and a failed load
 * is forgotten at once so the next caller retries.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { at: number; value: Promise<V> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** The cached promise when it is younger than the TTL. */
  peek(key: K): Promise<V> | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** The cached value, or a new load (always a new load with `force`). */
  load(key: K, fn: () => Promise<V>, force = false): Promise<V> {
    if (!force) {
      const hit = this.peek(key);
      if (hit) return hit;
    }
    const value = fn();
    const entry = { at: this.now(), value };
    this.entries.set(key, entry);
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
