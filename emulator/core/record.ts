import type { RecordedRequest, ServiceName } from './types';

export interface RequestFilter {
  service?: ServiceName;
  method?: string;
  /** Matches the operation name exactly, or by prefix when it ends with `*`. */
  operation?: string;
  /** Matched against the path. */
  path?: RegExp;
  /** Only requests answered with a status in this range. */
  status?: (status: number) => boolean;
  includeInjected?: boolean;
}

/** Every request the emulator answered, in order; tests assert on counts and on what was (not) written. */
export class RequestRecord {
  private entries: RecordedRequest[] = [];
  private seq = 0;

  add(e: Omit<RecordedRequest, 'seq'>): void {
    this.entries.push({ ...e, seq: ++this.seq });
  }

  /** A mark to count from: `record.since(mark)`. */
  mark(): number {
    return this.seq;
  }

  all(): readonly RecordedRequest[] {
    return this.entries;
  }

  since(mark: number, filter: RequestFilter = {}): RecordedRequest[] {
    return this.find(filter).filter((e) => e.seq > mark);
  }

  find(filter: RequestFilter = {}): RecordedRequest[] {
    return this.entries.filter((e) => {
      if (filter.service && e.service !== filter.service) return false;
      if (filter.method && e.method !== filter.method.toUpperCase()) return false;
      if (filter.operation) {
        const op = filter.operation;
        if (op.endsWith('*') ? !e.operation.startsWith(op.slice(0, -1)) : e.operation !== op) return false;
      }
      if (filter.path && !filter.path.test(e.path)) return false;
      if (filter.status && !filter.status(e.status)) return false;
      if (!filter.includeInjected && e.injected) return false;
      return true;
    });
  }

  count(filter: RequestFilter = {}): number {
    return this.find(filter).length;
  }

  /** Calls grouped by operation name: `{ 'arm.roleAssignments.create': 600, … }`. */
  countByOperation(filter: RequestFilter = {}): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.find(filter)) out[e.operation] = (out[e.operation] ?? 0) + 1;
    return out;
  }

  /** Writes (anything but GET/HEAD/OPTIONS) to a service, for "report mode writes nothing" checks. */
  writes(filter: Omit<RequestFilter, 'method'> = {}): RecordedRequest[] {
    return this.find(filter).filter((e) => !['GET', 'HEAD', 'OPTIONS'].includes(e.method));
  }

  clear(): void {
    this.entries = [];
  }
}
