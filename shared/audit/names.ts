/**
 * Audit names and limits, without the Table SDK: the HTTP routes' input schemas need them at
 * registration time, and loading `@azure/data-tables` there would cost every cold start ~80 ms.
 */
import { CAPABILITIES } from '../capability';

/** Default table name (AzureWebJobsStorage). */
export const AUDIT_TABLE = 'wardenaudit';
export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 1000;
/** Capabilities an audit record may name (the four capabilities plus Warden's own machinery). */
export const AUDIT_CAPABILITIES = [...CAPABILITIES, 'work', 'alerts', 'graph'] as const;
