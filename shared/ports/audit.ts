import type { CapabilityName, Outcome, Trigger } from '../capability';
import type { Mode } from '../policy';

/** One line of the audit trail (SPEC §5). Never holds a secret value. */
export interface AuditRecord {
  time: string;
  capability: CapabilityName | 'work' | 'alerts' | 'graph';
  target: string;
  /** The change's action, or `plan`/`finding`/`reconcile`. */
  action: string;
  outcome: Outcome | 'found';
  trigger: Trigger;
  mode: Mode;
  invocationId?: string;
  summary: string;
  resource?: string;
  changeId?: string;
  error?: { code: string; message: string };
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  since?: Date;
  limit?: number;
  capability?: string;
  /** Opaque token from a previous page. */
  continuationToken?: string;
}

export interface AuditPage {
  records: AuditRecord[];
  continuationToken?: string;
}

/** The audit trail: append-only, read newest first. */
export interface AuditLog {
  record(records: AuditRecord[]): Promise<void>;
  query(q: AuditQuery): Promise<AuditPage>;
}

/** Keeps records in memory (unit tests of use cases). */
export class MemoryAuditLog implements AuditLog {
  readonly records: AuditRecord[] = [];
  async record(records: AuditRecord[]): Promise<void> {
    this.records.push(...records);
  }
  async query(q: AuditQuery): Promise<AuditPage> {
    let rs = [...this.records].reverse();
    if (q.since) rs = rs.filter((r) => new Date(r.time) >= (q.since as Date));
    if (q.capability) rs = rs.filter((r) => r.capability === q.capability);
    return { records: rs.slice(0, q.limit ?? 100) };
  }
}
