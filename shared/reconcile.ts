/**
 * The one use case behind every trigger: plan a capability for a target from the real state, apply
 * (only in `enforce` mode and not a dry run), record every change in the audit trail and alert.
 * Level-triggered and idempotent: run twice, the second run plans nothing.
 */
import type { Capability, CapabilityName, ChangeOutcome, Finding, Plan, Trigger } from './capability';
import type { Clock } from './clock';
import { classifyError, codeOf, messageOf } from './errors';
import type { Logger } from './logging';
import type { Mode } from './policy';
import type { AlertDelivery, Alerter } from './ports/alerts';
import type { AuditLog, AuditRecord } from './ports/audit';
import type { StateStore } from './ports/state';

/** Partition of the reconcile journal (what a run was about to apply), see {@link reconcile}. */
export const JOURNAL_PARTITION = 'reconcile-journal';

/**
 * A table property holds 32K UTF-16 characters; a plan can be far larger (500 members × a binding).
 * The entry is stored as JSON text in chunks (JSON escaping at most doubles a chunk), and the head
 * row, naming the chunk count, is written last and deleted first, so a half-written journal is never read.
 */
const JOURNAL_CHUNK = 12_000;

async function writeJournal(store: StateStore, key: string, entry: JournalEntry): Promise<void> {
  const text = JSON.stringify(entry);
  const chunks = Math.ceil(text.length / JOURNAL_CHUNK);
  for (let i = 0; i < chunks; i++) await store.put(JOURNAL_PARTITION, `${key}#${i}`, text.slice(i * JOURNAL_CHUNK, (i + 1) * JOURNAL_CHUNK));
  await store.put(JOURNAL_PARTITION, key, { chunks });
}

async function readJournal(store: StateStore, key: string): Promise<JournalEntry | undefined> {
  const head = (await store.get<{ chunks: number }>(JOURNAL_PARTITION, key))?.value;
  if (!head) return undefined;
  let text = '';
  for (let i = 0; i < head.chunks; i++) {
    const part = (await store.get<string>(JOURNAL_PARTITION, `${key}#${i}`))?.value;
    if (part === undefined) return undefined;
    text += part;
  }
  try {
    return JSON.parse(text) as JournalEntry;
  } catch {
    return undefined;
  }
}

async function clearJournal(store: StateStore, key: string): Promise<void> {
  const head = (await store.get<{ chunks: number }>(JOURNAL_PARTITION, key))?.value;
  await store.delete(JOURNAL_PARTITION, key);
  for (let i = 0; i < (head?.chunks ?? 0); i++) await store.delete(JOURNAL_PARTITION, `${key}#${i}`);
}

interface JournalEntry {
  invocationId?: string;
  time: string;
  trigger: Trigger;
  changes: Array<Pick<ChangeOutcome['change'], 'id' | 'action' | 'description' | 'resource'>>;
  findings: Finding[];
}

export interface ReconcileDeps {
  capabilities: Readonly<Record<CapabilityName, Capability>>;
  audit: AuditLog;
  alerter: Alerter;
  mode: Mode;
  logger: Logger;
  clock: Clock;
  /**
   * Where a run writes what it is about to apply. A run that dies between its Azure writes and its
   * audit records (a killed host) leaves the entry behind; the next run of that target records the
   * changes that no longer need applying as applied and sends the findings, so the audit trail and
   * the alerts still hold every change that was made. Optional for unit tests.
   */
  journal?: StateStore;
}

export interface ReconcileRequest {
  capability: CapabilityName;
  target: string;
  trigger: Trigger;
  /** Plan only; nothing is written (also implied by `report` mode). */
  dryRun?: boolean;
  invocationId?: string;
}

export interface ReconcileReport {
  capability: CapabilityName;
  target: string;
  mode: Mode;
  dryRun: boolean;
  /** False when the target lies outside the policy's scopes (nothing was read). */
  inScope: boolean;
  plan: Plan;
  outcomes: ChangeOutcome[];
  alerts: AlertDelivery[];
  /** True when some change failed in a way a retry can fix. */
  retryable: boolean;
  durationMs: number;
}

const CAP_TITLE: Record<CapabilityName, string> = {
  rbac: 'Rbac',
  workspaces: 'Workspaces',
  compute: 'Compute',
  credentials: 'Credentials',
};

/** Converts a thrown error into the outcome of one change. */
export function failedOutcome(change: ChangeOutcome['change'], err: unknown): ChangeOutcome {
  const cls = classifyError(err);
  return {
    change,
    outcome: 'failed',
    error: { code: codeOf(err) ?? (err instanceof Error ? err.name : 'Error'), message: messageOf(err), retryable: cls !== 'terminal' },
  };
}

export async function reconcile(req: ReconcileRequest, deps: ReconcileDeps): Promise<ReconcileReport> {
  const started = Date.now();
  const cap = deps.capabilities[req.capability];
  const target = cap.parseTarget(req.target);
  const dryRun = req.dryRun === true || deps.mode === 'report';
  const log = deps.logger.child({ capability: req.capability, target, trigger: req.trigger.kind, triggerId: req.trigger.id });
  const base = { capability: req.capability, target, mode: deps.mode, trigger: req.trigger, ...(req.invocationId ? { invocationId: req.invocationId } : {}) };
  const now = (): string => deps.clock.now().toISOString();

  if (!cap.inScope(target)) {
    log.warn('Ignored target outside the policy scopes');
    return {
      capability: req.capability, target, mode: deps.mode, dryRun, inScope: false,
      plan: { capability: req.capability, target, changes: [], findings: [], skipped: [] },
      outcomes: [], alerts: [], retryable: false, durationMs: Date.now() - started,
    };
  }

  const plan = await cap.plan(target);
  const journalKey = `${req.capability}|${target}`;
  const interrupted = dryRun || !deps.journal ? undefined : await readJournal(deps.journal, journalKey);
  log.info(`Planned ${plan.changes.length} change(s) and ${plan.findings.length} finding(s)`, { changes: plan.changes.length, findings: plan.findings.length, dryRun });

  let outcomes: ChangeOutcome[];
  if (dryRun || plan.changes.length === 0) {
    outcomes = plan.changes.map((change) => ({ change, outcome: 'planned' as const }));
  } else {
    if (deps.journal) {
      const entry: JournalEntry = {
        ...(req.invocationId ? { invocationId: req.invocationId } : {}),
        time: now(),
        trigger: req.trigger,
        changes: plan.changes.map((c) => ({ id: c.id, action: c.action, description: c.description, resource: c.resource })),
        findings: plan.findings,
      };
      await writeJournal(deps.journal, journalKey, entry);
    }
    outcomes = await cap.apply(plan);
  }

  for (const o of outcomes) {
    const msg = `${o.outcome === 'planned' ? 'Would' : o.outcome === 'failed' ? 'Failed to' : 'Did'}: ${o.change.description}`;
    if (o.outcome === 'failed') log.error(msg, { changeId: o.change.id, resource: o.change.resource, errorCode: o.error?.code, error: o.error?.message });
    else log.info(msg, { changeId: o.change.id, resource: o.change.resource, outcome: o.outcome, result: o.result });
  }

  const records: AuditRecord[] = [];
  const findings: Finding[] = [...plan.findings, ...outcomes.flatMap((o) => o.findings ?? [])];
  if (interrupted) {
    // Changes an interrupted run set out to make that this plan no longer wants: they were made (by
    // that run, or meanwhile by someone else) but never recorded.
    const stillPlanned = new Set(plan.changes.map((c) => c.id));
    const done = interrupted.changes.filter((c) => !stillPlanned.has(c.id));
    for (const c of done) {
      records.push({
        ...base,
        time: now(),
        action: c.action,
        outcome: 'applied',
        summary: `${c.description} (confirmed after an interrupted run)`,
        resource: c.resource,
        changeId: c.id,
        details: { recovered: true, interruptedAt: interrupted.time, ...(interrupted.invocationId ? { interruptedInvocation: interrupted.invocationId } : {}) },
      });
    }
    const seen = new Set(findings.map((f) => `${f.type}|${f.subject}`));
    for (const f of interrupted.findings) if (!seen.has(`${f.type}|${f.subject}`)) findings.push(f);
    log.warn(`Recovered an interrupted run: ${done.length} change(s) confirmed and recorded`, { interruptedAt: interrupted.time });
  }
  for (const o of outcomes) {
    records.push({
      ...base,
      time: now(),
      action: o.change.action,
      outcome: o.outcome,
      summary: o.change.description,
      resource: o.change.resource,
      changeId: o.change.id,
      ...(o.result ? { details: { result: o.result } } : {}),
      ...(o.error ? { error: { code: o.error.code, message: o.error.message } } : {}),
    });
  }
  for (const f of findings) {
    records.push({ ...base, time: now(), action: 'finding', outcome: 'found', summary: f.summary, resource: f.subject, details: { type: f.type, severity: f.severity } });
  }
  for (const s of plan.skipped) {
    records.push({ ...base, time: now(), action: 'leaveAlone', outcome: 'skipped', summary: s.reason, resource: s.resource });
  }

  // Failures a retry can fix are retried by the work pipeline and alerted only when they end in poison.
  const terminalFailures = outcomes.filter((o) => o.outcome === 'failed' && o.error && !o.error.retryable);
  for (const o of terminalFailures) {
    findings.push({
      type: `Warden.${CAP_TITLE[req.capability]}.ChangeFailed`,
      subject: o.change.resource,
      severity: 'critical',
      summary: `Warden could not ${o.change.description.charAt(0).toLowerCase()}${o.change.description.slice(1)}: ${o.error?.message ?? 'unknown error'}`,
      details: { action: o.change.action, changeId: o.change.id, error: o.error },
      actions: ['Check the audit trail and Warden’s permissions, then run /api/remediate for this target.'],
    });
  }

  if (records.length > 0) {
    try {
      await deps.audit.record(records);
    } catch (err) {
      // The audit trail is part of the contract: a reconcile whose records were not written is retried.
      log.error('Could not write the audit trail', { error: err });
      throw err;
    }
  }
  const alerts = findings.length > 0 ? await deps.alerter.send(findings) : [];
  if (deps.journal && (interrupted || (!dryRun && plan.changes.length > 0))) await clearJournal(deps.journal, journalKey);

  const retryable = outcomes.some((o) => o.outcome === 'failed' && o.error?.retryable === true);
  const report: ReconcileReport = {
    capability: req.capability, target, mode: deps.mode, dryRun, inScope: true, plan, outcomes, alerts, retryable,
    durationMs: Date.now() - started,
  };
  log.info('Reconciled', {
    applied: outcomes.filter((o) => o.outcome === 'applied').length,
    failed: outcomes.filter((o) => o.outcome === 'failed').length,
    durationMs: report.durationMs,
  });
  return report;
}
