/**
 * The audit trail (SPEC §5): every planned, applied, skipped or failed change and every finding, with
 * what triggered it, in Azure Table storage; read newest first through `/api/audit`.
 */
import type { TableClient } from '@azure/data-tables';
import type { AuditLog } from '../ports/audit';
import { TableAuditLog } from './table';

export {
  AUDIT_CAPABILITIES, AUDIT_TABLE, DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT, TableAuditLog,
  auditPartition, auditRowKey, decodeAuditToken, encodeAuditToken,
} from './table';

/**
 * The table-backed audit log. `now` stamps records whose own time is unreadable.
 * @example const audit = createAuditLog(await clients.table(AUDIT_TABLE));
 */
export function createAuditLog(table: TableClient, now: () => number = Date.now): AuditLog {
  return new TableAuditLog(table, now);
}
