/**
 * The audit trail in Azure Table storage. Keys are chosen so that one ascending table scan — the only
 * order Table storage has — reads newest first: the partition is the record's day, inverted (with the
 * date beside it for people reading the table), and the row key is the record's time in inverted
 * milliseconds plus a per-process sequence and a random suffix (unique across instances, and newest
 * first within one millisecond). `since` then becomes a key range, and the service's own continuation
 * tokens page through it.
 */
import { randomBytes } from 'node:crypto';
import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import type { Trigger } from '../capability';
import { DAY_MS } from '../clock';
import { InputError } from '../errors';
import type { AuditLog, AuditPage, AuditQuery, AuditRecord } from '../ports/audit';
import { redactValue } from '../redact';

export { AUDIT_TABLE, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT, AUDIT_CAPABILITIES } from './names';
import { DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT } from './names';

const MAX_MS = 9_999_999_999_999;
const MAX_DAY = 99_999;
const MAX_SEQ = 99_999_999;
/** Table strings hold 64 KiB; a batch holds 4 MiB. These keep 100 records per batch well inside. */
const MAX_TEXT = 2048;
const MAX_DETAILS = 16 * 1024;
/** Pages read per query before handing a continuation token back (sparse filters stay bounded). */
const MAX_PAGES_PER_QUERY = 20;

let seq = 0;

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** `79545-20260101`: inverted day number, then the date for people. */
export function auditPartition(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  const date = new Date(day * DAY_MS).toISOString().slice(0, 10).replace(/-/g, '');
  return `${pad(MAX_DAY - day, 5)}-${date}`;
}

/** Inverted milliseconds, inverted sequence, random suffix: newest first, never colliding. */
export function auditRowKey(ms: number): string {
  seq = (seq + 1) % MAX_SEQ;
  return `${pad(MAX_MS - ms, 13)}-${pad(MAX_SEQ - seq, 8)}-${randomBytes(4).toString('hex')}`;
}

// A type alias (not an interface) so it is assignable to the SDK's Record-typed entity.
type AuditEntity = {
  partitionKey: string;
  rowKey: string;
  time: string;
  capability: string;
  target: string;
  action: string;
  outcome: string;
  triggerKind: string;
  triggerId: string;
  triggerCaller: string;
  mode: string;
  invocationId: string;
  summary: string;
  resource: string;
  changeId: string;
  errorCode: string;
  errorMessage: string;
  details: string;
};

function clip(s: string | undefined, max = MAX_TEXT): string {
  if (!s) return '';
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function detailsText(details: Record<string, unknown> | undefined): string {
  if (!details) return '';
  const text = JSON.stringify(details);
  return text.length <= MAX_DETAILS ? text : JSON.stringify({ truncated: true, preview: text.slice(0, MAX_DETAILS - 100) });
}

function toEntity(raw: AuditRecord, fallbackMs: number): AuditEntity {
  const r = redactValue(raw);
  const parsed = Date.parse(r.time);
  const ms = Number.isNaN(parsed) ? fallbackMs : parsed;
  return {
    partitionKey: auditPartition(ms),
    rowKey: auditRowKey(ms),
    time: new Date(ms).toISOString(),
    capability: r.capability,
    target: clip(r.target),
    action: clip(r.action, 256),
    outcome: r.outcome,
    triggerKind: r.trigger.kind,
    triggerId: clip(r.trigger.id, 512),
    triggerCaller: clip(r.trigger.caller, 512),
    mode: r.mode,
    invocationId: clip(r.invocationId, 256),
    summary: clip(r.summary),
    resource: clip(r.resource),
    changeId: clip(r.changeId, 256),
    errorCode: clip(r.error?.code, 256),
    errorMessage: clip(r.error?.message),
    details: detailsText(r.details),
  };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function fromEntity(e: TableEntityResult<Record<string, unknown>>): AuditRecord {
  const trigger: Trigger = { kind: str(e.triggerKind) as Trigger['kind'] };
  if (str(e.triggerId)) trigger.id = str(e.triggerId);
  if (str(e.triggerCaller)) trigger.caller = str(e.triggerCaller);
  const rec: AuditRecord = {
    time: str(e.time),
    capability: str(e.capability) as AuditRecord['capability'],
    target: str(e.target),
    action: str(e.action),
    outcome: str(e.outcome) as AuditRecord['outcome'],
    trigger,
    mode: str(e.mode) as AuditRecord['mode'],
    summary: str(e.summary),
  };
  if (str(e.invocationId)) rec.invocationId = str(e.invocationId);
  if (str(e.resource)) rec.resource = str(e.resource);
  if (str(e.changeId)) rec.changeId = str(e.changeId);
  if (str(e.errorCode) || str(e.errorMessage)) rec.error = { code: str(e.errorCode), message: str(e.errorMessage) };
  if (str(e.details)) {
    try {
      const d: unknown = JSON.parse(str(e.details));
      if (d && typeof d === 'object' && !Array.isArray(d)) rec.details = d as Record<string, unknown>;
    } catch {
      rec.details = { unreadable: true };
    }
  }
  // Records were redacted on the way in; redacting again also masks secrets registered since.
  return redactValue(rec);
}

/**
 * Page tokens handed to callers: the service's next keys, re-encoded (URL-safe) so that a malformed
 * token is refused with 400 instead of reaching storage.
 */
export function encodeAuditToken(serviceToken: string): string {
  const decoded = JSON.parse(Buffer.from(serviceToken, 'base64').toString('utf8')) as { nextPartitionKey?: unknown; nextRowKey?: unknown };
  return Buffer.from(JSON.stringify({ p: decoded.nextPartitionKey, r: decoded.nextRowKey ?? '' }), 'utf8').toString('base64url');
}

export function decodeAuditToken(token: string): string {
  const bad = (): InputError => new InputError('InvalidContinuationToken', 'The continuation token is not one this API issued.');
  if (token.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  const t = parsed as { p?: unknown; r?: unknown } | null;
  // The service's next keys are opaque (Azure encodes them as `1!16!…`); a forged one only moves where
  // the same filtered scan of the same table starts, so checking their shape is enough.
  const opaque = (v: unknown): v is string => typeof v === 'string' && v.length <= 512 && /^[\x21-\x7e]*$/.test(v);
  if (!t || !opaque(t.p) || t.p === '' || !opaque(t.r)) throw bad();
  const service = t.r ? { nextPartitionKey: t.p, nextRowKey: t.r } : { nextPartitionKey: t.p };
  return Buffer.from(JSON.stringify(service), 'utf8').toString('base64');
}

function auditFilter(q: AuditQuery): string | undefined {
  const parts: string[] = [];
  if (q.since) {
    const ms = q.since.getTime();
    // Partitions and row keys are inverted: "at or after since" is "at or below since's keys".
    parts.push(odata`PartitionKey lt ${pad(MAX_DAY - Math.floor(ms / DAY_MS) + 1, 5)}`);
    parts.push(odata`RowKey lt ${pad(MAX_MS - ms + 1, 13)}`);
  }
  if (q.capability) parts.push(odata`capability eq ${q.capability}`);
  return parts.length > 0 ? parts.join(' and ') : undefined;
}

export class TableAuditLog implements AuditLog {
  private ready: Promise<void> | undefined;
  constructor(
    private readonly table: TableClient,
    private readonly now: () => number = Date.now,
  ) {}

  private ensure(): Promise<void> {
    this.ready ??= this.table.createTable().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /** Appends records; each day's records go in one transaction per 100, so a batch is all or nothing per day. */
  async record(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.ensure();
    const now = this.now();
    const byPartition = new Map<string, AuditEntity[]>();
    for (const r of records) {
      const e = toEntity(r, now);
      const list = byPartition.get(e.partitionKey) ?? [];
      list.push(e);
      byPartition.set(e.partitionKey, list);
    }
    for (const entities of byPartition.values()) {
      for (let i = 0; i < entities.length; i += 100) {
        const actions: TransactionAction[] = entities.slice(i, i + 100).map((e) => ['create', e]);
        await this.table.submitTransaction(actions);
      }
    }
  }

  /** Newest first; `limit` 1–1000 (default 100); a `continuationToken` when more records match. */
  async query(q: AuditQuery): Promise<AuditPage> {
    const limit = Math.min(Math.max(Math.trunc(q.limit ?? DEFAULT_AUDIT_LIMIT), 1), MAX_AUDIT_LIMIT);
    let token = q.continuationToken ? decodeAuditToken(q.continuationToken) : undefined;
    await this.ensure();
    const filter = auditFilter(q);
    const records: AuditRecord[] = [];
    for (let pages = 0; pages < MAX_PAGES_PER_QUERY && records.length < limit; pages++) {
      const iter = this.table
        .listEntities<Record<string, unknown>>(filter ? { queryOptions: { filter } } : {})
        .byPage({ maxPageSize: limit - records.length, ...(token ? { continuationToken: token } : {}) });
      const next = await iter.next();
      const page = next.done ? undefined : next.value;
      if (!page) {
        token = undefined;
        break;
      }
      for (const e of page) records.push(fromEntity(e));
      token = page.continuationToken;
      if (!token) break;
    }
    return token ? { records, continuationToken: encodeAuditToken(token) } : { records };
  }
}
