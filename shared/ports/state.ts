/**
 * Small durable state (delta cursors, subscription ids, de-duplication marks, pending removals) kept
 * as JSON in one Azure Table, with ETag concurrency so two instances never both win a race.
 */
import type { TableClient } from '@azure/data-tables';

export interface Stored<T> {
  value: T;
  etag: string;
}

export class ConcurrencyError extends Error {
  constructor(message = 'The state entry changed since it was read') {
    super(message);
    this.name = 'ConcurrencyError';
  }
}

export interface StateStore {
  get<T>(partition: string, key: string): Promise<Stored<T> | undefined>;
  /** Writes; with `etag` only if unchanged since read (`'*'` for any), with `create: true` only if absent. Throws ConcurrencyError otherwise. */
  put<T>(partition: string, key: string, value: T, options?: { etag?: string; create?: boolean }): Promise<string>;
  delete(partition: string, key: string): Promise<void>;
  list<T>(partition: string): Promise<Array<{ key: string } & Stored<T>>>;
}

/** Table keys may not contain / \\ # ? or control characters: percent-encode with `~` instead of `%`. */
export function tableKey(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%/g, '~');
}

/** Inverse of {@link tableKey}. */
export function fromTableKey(k: string): string {
  return decodeURIComponent(k.replace(/~/g, '%'));
}

export class MemoryStateStore implements StateStore {
  private data = new Map<string, { value: string; etag: string }>();
  private n = 0;
  private k(p: string, r: string): string {
    return `${p}\u0000${r}`;
  }
  async get<T>(partition: string, key: string): Promise<Stored<T> | undefined> {
    const e = this.data.get(this.k(partition, key));
    return e ? { value: JSON.parse(e.value) as T, etag: e.etag } : undefined;
  }
  async put<T>(partition: string, key: string, value: T, options: { etag?: string; create?: boolean } = {}): Promise<string> {
    const cur = this.data.get(this.k(partition, key));
    if (options.create && cur) throw new ConcurrencyError('The state entry already exists');
    if (options.etag && options.etag !== '*' && cur?.etag !== options.etag) throw new ConcurrencyError();
    const etag = `W/"${++this.n}"`;
    this.data.set(this.k(partition, key), { value: JSON.stringify(value), etag });
    return etag;
  }
  async delete(partition: string, key: string): Promise<void> {
    this.data.delete(this.k(partition, key));
  }
  async list<T>(partition: string): Promise<Array<{ key: string } & Stored<T>>> {
    const out: Array<{ key: string } & Stored<T>> = [];
    for (const [k, e] of this.data) {
      const [p, r] = k.split('\u0000') as [string, string];
      if (p === partition) out.push({ key: r, value: JSON.parse(e.value) as T, etag: e.etag });
    }
    return out;
  }
}

interface StateEntity {
  partitionKey: string;
  rowKey: string;
  json: string;
  etag?: string;
}

/** The Azure Table adapter (Azurite locally). */
export class TableStateStore implements StateStore {
  private ready: Promise<void> | undefined;
  constructor(private readonly table: TableClient) {}

  private ensure(): Promise<void> {
    this.ready ??= this.table.createTable().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  async get<T>(partition: string, key: string): Promise<Stored<T> | undefined> {
    await this.ensure();
    try {
      const e = await this.table.getEntity<StateEntity>(tableKey(partition), tableKey(key));
      return { value: JSON.parse(e.json) as T, etag: e.etag ?? '*' };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async put<T>(partition: string, key: string, value: T, options: { etag?: string; create?: boolean } = {}): Promise<string> {
    await this.ensure();
    const entity = { partitionKey: tableKey(partition), rowKey: tableKey(key), json: JSON.stringify(value) };
    try {
      if (options.create) return (await this.table.createEntity(entity)).etag ?? '*';
      if (options.etag) return (await this.table.updateEntity(entity, 'Replace', { etag: options.etag })).etag ?? '*';
      return (await this.table.upsertEntity(entity, 'Replace')).etag ?? '*';
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 409 || status === 412) throw new ConcurrencyError();
      throw err;
    }
  }

  async delete(partition: string, key: string): Promise<void> {
    await this.ensure();
    try {
      await this.table.deleteEntity(tableKey(partition), tableKey(key));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  async list<T>(partition: string): Promise<Array<{ key: string } & Stored<T>>> {
    await this.ensure();
    const out: Array<{ key: string } & Stored<T>> = [];
    const pk = tableKey(partition).replace(/'/g, "''");
    for await (const e of this.table.listEntities<StateEntity>({ queryOptions: { filter: `PartitionKey eq '${pk}'` } })) {
      out.push({ key: fromTableKey(e.rowKey), value: JSON.parse(e.json) as T, etag: e.etag ?? '*' });
    }
    return out;
  }
}
