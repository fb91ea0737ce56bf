/**
 * `runDemo`: starts the stack, plays the story step by step, waits for each reaction in the emulator's
 * state (with a deadline), and returns what happened as data: per step the event that reached Warden,
 * what Warden decided and changed (with times), the reaction as the emulator shows it, and the alerts;
 * then a summary per capability. `demo/main.ts` prints it; `test/demo/demo.test.ts` checks it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Emulator } from '../emulator';
import type { Host } from '../host/host';
import type { CapabilityName } from '../shared/capability';
import { namesOf, pretty, type Names } from './names';
import { startStack, type Stack } from './stack';
import { STORY, type ExpectedChange, type StoryContext, type StoryStep } from './story';
import { demoTenant } from './tenant';
import { traceCapabilities, type Trace, type TraceEntry } from './trace';

export type DemoMode = 'enforce' | 'report';

export interface DemoObserver {
  /** Start-up and shut-down phases ("Starting Azurite…"). */
  phase?(message: string): void;
  stepStarted?(index: number, total: number, step: StoryStep): void;
  stepFinished?(result: StepResult, index: number, total: number): void;
}

export interface DemoOptions {
  report?: boolean;
  /** Progress and step results as they happen. */
  out?: DemoObserver;
  /** Latency the emulator adds to every answer, ms (default 15: timings like a nearby Azure region's). */
  latencyMs?: number;
  /** How long a reaction may take before the step counts as failed, ms (default 20 s). */
  reactionTimeoutMs?: number;
  /**
   * Called after the story with its result, before everything stops: tests read the emulator's state
   * here; `--keep` prints the result and waits for Ctrl+C so people can call the routes themselves.
   */
  beforeStop?(result: DemoResult, live: { emu: Emulator; host: Host }): void | Promise<void>;
  /** Aborting stops the story after the current step and shuts everything down. */
  signal?: AbortSignal;
  /** Serve Warden on this port when it is free (else any free port). */
  preferredPort?: number;
}

/** One thing Warden decided for one target. */
export interface Decision {
  capability: CapabilityName;
  target: string;
  /** Milliseconds from the step's start until the plan was ready. */
  atMs: number;
  /** Milliseconds from the step's start until the changes were made (enforce mode). */
  appliedAtMs?: number;
  changes: Array<{
    action: string;
    description: string;
    outcome: string;
    /** The resource it writes, short. */
    resource: string;
    /** Role assignments: the role and who gets (or loses) it, for grouping many into one line. */
    grant?: { role: string; principal: string };
  }>;
  /** Findings not reported earlier in the run. */
  findings: Array<{ type: string; severity: string; summary: string }>;
  /** What the plan deliberately did not do, and why. */
  leftAlone: Array<{ resource: string; reason: string }>;
}

export interface StepResult {
  id: StoryStep['id'];
  title: string;
  via: string;
  /** Warden heard through a timer the story ran (the whole tenant was swept), not through a push. */
  timer: boolean;
  ok: boolean;
  /** Why the step failed, for people. */
  error?: string;
  durationMs: number;
  /** What reached Warden: the first push (a Graph notification, an Event Grid event), or the timer. */
  event: { description: string; status: number; atMs: number };
  decisions: Decision[];
  /** The reaction, read from the emulator's state (enforce mode), with when it was first seen. */
  reaction?: { description: string; atMs: number };
  /** Report mode: the changes Warden planned instead of making them. */
  plannedInstead?: string[];
  alerts: Array<{ type: string; subject: string }>;
  /** Warden's writes to ARM, Graph and Key Vault during the step (alert delivery and its own Graph subscription left out). */
  changeRequests: Array<{ atMs: number; service: string; operation: string }>;
  /** When the first alert reached the Event Grid topic. */
  alertedAtMs?: number;
  /** Every write Warden made to each emulated service during the step (alert sinks included). */
  writes: Record<string, number>;
}

export interface SummaryRow {
  capability: CapabilityName;
  found: number;
  fixed: number;
  /** Report mode: changes planned but not made. */
  wouldFix: number;
  alerted: number;
  leftAlone: number;
}

export interface DemoResult {
  mode: DemoMode;
  ok: boolean;
  startupMs: number;
  totalMs: number;
  steps: StepResult[];
  summary: SummaryRow[];
  /** Records in the audit trail, read through `GET /api/audit`. */
  auditRecords: number;
  /** `GET /api/plan?capability=all` after the story: what is still to do. */
  finalPlan: { changes: number; findings: number } | undefined;
  /** Every write Warden made, by emulated service (report mode: only Graph subscriptions and mail). */
  writes: Array<{ service: string; operation: string; count: number }>;
  hostUrl: string;
  /** When the story started, on the emulator's clock (for `/api/audit?since=`). */
  storyStartedAt: string;
  logs: string[];
}

export const CAPABILITY_ORDER: readonly CapabilityName[] = ['rbac', 'workspaces', 'compute', 'credentials'];
const POLL_MS = 20;

/** The demo policy (`demo/policy.json`) in the requested mode; `%NAME%` references stay for Warden. */
export function demoPolicy(mode: DemoMode): Record<string, unknown> {
  const policy = JSON.parse(readFileSync(join(__dirname, 'policy.json'), 'utf8')) as Record<string, unknown>;
  delete policy.$schema;
  return { ...policy, mode };
}

function capabilityOfAlert(type: string): CapabilityName | undefined {
  const part = type.split('.')[1]?.toLowerCase();
  return CAPABILITY_ORDER.find((c) => c === part);
}

/** The function a push was for: `resourceEvents`, `graphNotifications`. */
function functionOf(url: string): string {
  const u = new URL(url);
  const named = u.searchParams.get('functionName');
  if (named) return named;
  return u.pathname.endsWith('/graph/lifecycle') ? 'graphLifecycle' : 'graphNotifications';
}

/** What a push said, from its body: `Event Grid: ResourceWriteSuccess for mlw-vision/train-cluster`. */
function describePush(kind: string, body: string, names: Names): string {
  try {
    const parsed: unknown = JSON.parse(body);
    const first = (Array.isArray(parsed) ? parsed[0] : (parsed as { value?: unknown[] }).value?.[0]) as Record<string, unknown> | undefined;
    const text = (v: unknown): string => (typeof v === 'string' ? v : '');
    if (first && typeof first.eventType === 'string') {
      return `Event Grid: ${first.eventType.split('.').pop() ?? ''} for ${pretty(text(first.subject), names)}`;
    }
    if (first && typeof first.changeType === 'string') {
      const resource = text(first.resource).replace(/^groups\//i, '');
      return `Graph notification: ${pretty(resource, names)} ${first.changeType}`;
    }
  } catch {
    // Not JSON: described by its kind alone.
  }
  return kind;
}

function matchesExpected(e: ExpectedChange, entries: readonly TraceEntry[]): boolean {
  return entries.some(
    (t) =>
      t.capability === e.capability &&
      t.plan.changes.some(
        (c) =>
          c.action === e.action &&
          c.resource.toLowerCase() === e.resource.toLowerCase() &&
          (!e.mentions || `${JSON.stringify(c.data)} ${c.description}`.toLowerCase().includes(e.mentions.toLowerCase())),
      ),
  );
}

/** A write that changes the tenant, as opposed to alert delivery (topic, webhook, mail) and Warden's own subscription. */
function isChange(service: string, operation: string): boolean {
  if (service === 'arm' || service === 'keyvault') return true;
  return service === 'graph' && operation !== 'graph.sendMail' && !operation.startsWith('graph.subscriptions');
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const v = probe();
    if (v !== undefined || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

interface RunState {
  stack: Stack;
  trace: Trace;
  names: Names;
  mode: DemoMode;
  reactionTimeoutMs: number;
  /** Findings and changes already shown, so a re-check that plans the same again is not news. */
  seen: Set<string>;
  signal: AbortSignal | undefined;
}

async function playStep(step: StoryStep, ctx: StoryContext, run: RunState): Promise<StepResult> {
  const { emu } = run.stack;
  step.prepare?.(ctx);
  const t0 = emu.clock.now();
  const pushMark = emu.pusher.log.length;
  const recordMark = emu.record.mark();
  const topicMark = emu.eventgrid.received().length;
  const expectReaction = run.mode === 'enforce' || step.alsoInReport === true;
  const errors: string[] = [];
  let reaction: StepResult['reaction'];

  try {
    await step.act(ctx);
    if (expectReaction) {
      const seen = await waitFor(() => step.reaction(ctx), run.reactionTimeoutMs, run.signal);
      if (seen === undefined) errors.push(`Warden did not react within ${run.reactionTimeoutMs / 1000} s: expected ${describeExpected(step, run.names)}`);
      else reaction = { description: seen, atMs: emu.clock.now() - t0 };
    } else {
      // Report mode: the reaction is the plan. Waited for like a change, because a plan may come from a
      // follow-up reconcile a few seconds later (coalesced work), not from the first one.
      await waitFor(() => (step.planned.every((e) => matchesExpected(e, run.trace.since(t0))) ? true : undefined), run.reactionTimeoutMs, run.signal);
    }
    await run.stack.settle(30_000);
  } catch (err) {
    if (run.signal?.aborted) throw err;
    errors.push(err instanceof Error ? err.message : String(err));
  }

  const entries = run.trace.since(t0);
  let plannedInstead: string[] | undefined;
  if (!expectReaction) {
    const changed = step.reaction(ctx);
    if (changed !== undefined) errors.push(`Report mode changed something: ${changed}`);
    const missing = step.planned.filter((e) => !matchesExpected(e, entries));
    if (missing.length > 0) errors.push(`Warden did not plan: ${missing.map((m) => `${m.action} on ${pretty(m.resource, run.names)}`).join('; ')}`);
    plannedInstead = entries.flatMap((t) => t.plan.changes.filter((c) => step.planned.some((e) => matchesExpected(e, [{ ...t, plan: { ...t.plan, changes: [c] } }]))).map((c) => pretty(c.description, run.names)));
  }

  const decisions: Decision[] = [];
  const isNew = (key: string): boolean => {
    if (run.seen.has(key)) return false;
    run.seen.add(key);
    return true;
  };
  for (const t of entries) {
    const outcomes = new Map((t.outcomes ?? []).map((o) => [o.change.id, o]));
    const changes = t.plan.changes
      .map((c) => ({ c, outcome: outcomes.get(c.id)?.outcome ?? 'planned' }))
      .filter(({ c, outcome }) => isNew(`change|${c.id}|${outcome}`))
      .map(({ c, outcome }) => {
        const { roleName, principalId } = c.data;
        const grant = typeof roleName === 'string' && typeof principalId === 'string' ? { role: roleName, principal: pretty(principalId, run.names) } : undefined;
        return { action: c.action, description: pretty(c.description, run.names), outcome, resource: pretty(c.resource, run.names), ...(grant ? { grant } : {}) };
      });
    const findings = [...t.plan.findings, ...(t.outcomes ?? []).flatMap((o) => o.findings ?? [])]
      .filter((f) => isNew(`finding|${f.type}|${f.subject}`.toLowerCase()))
      .map((f) => ({ type: f.type, severity: f.severity, summary: pretty(f.summary, run.names) }));
    const leftAlone = t.plan.skipped
      .filter((k) => isNew(`skip|${k.resource}|${k.reason}`.toLowerCase()))
      .map((k) => ({ resource: pretty(k.resource, run.names), reason: pretty(k.reason, run.names) }));
    if (changes.length === 0 && findings.length === 0 && leftAlone.length === 0) continue;
    decisions.push({
      capability: t.capability,
      target: pretty(t.target, run.names),
      atMs: t.plannedAt - t0,
      ...(t.appliedAt !== undefined ? { appliedAtMs: t.appliedAt - t0 } : {}),
      changes,
      findings,
      leftAlone,
    });
  }

  const push = step.timer ? undefined : emu.pusher.log.slice(pushMark).find((d) => d.url.startsWith(run.stack.host.url) && d.kind !== 'graph.validation');
  const writes: Record<string, number> = {};
  const changeRequests: StepResult['changeRequests'] = [];
  for (const r of emu.record.since(recordMark)) {
    if (['GET', 'HEAD', 'OPTIONS'].includes(r.method)) continue;
    writes[r.service] = (writes[r.service] ?? 0) + 1;
    if (isChange(r.service, r.operation)) changeRequests.push({ atMs: r.time - t0, service: r.service, operation: r.operation });
  }
  const alerts = emu.eventgrid.received().slice(topicMark);
  return {
    id: step.id,
    title: step.title,
    via: step.via,
    timer: step.timer === true,
    ok: errors.length === 0,
    ...(errors.length > 0 ? { error: errors.join('; ') } : {}),
    durationMs: emu.clock.now() - t0,
    event: push
      ? { description: `${describePush(push.kind, push.body, run.names)} → ${functionOf(push.url)}`, status: push.status, atMs: push.time - t0 }
      : { description: step.via, status: 200, atMs: 0 },
    decisions,
    ...(reaction ? { reaction } : {}),
    ...(plannedInstead ? { plannedInstead } : {}),
    alerts: alerts.map((r) => ({ type: String(r.event.type), subject: pretty(String(r.event.subject), run.names) })),
    ...(alerts[0] ? { alertedAtMs: alerts[0].time - t0 } : {}),
    changeRequests,
    writes,
  };
}

function describeExpected(step: StoryStep, names: Names): string {
  return step.planned.length > 0 ? step.planned.map((e) => `${e.action} on ${pretty(e.resource, names)}`).join(', ') : step.title;
}

function summarise(entries: readonly TraceEntry[], alerts: ReadonlyArray<{ type: string; id: string }>): SummaryRow[] {
  const rows = new Map(CAPABILITY_ORDER.map((c) => [c, { found: new Set<string>(), fixed: new Set<string>(), wouldFix: new Set<string>(), alerted: new Set<string>(), leftAlone: new Set<string>() }]));
  for (const t of entries) {
    const row = rows.get(t.capability);
    if (!row) continue;
    for (const f of t.plan.findings) row.found.add(`${f.type}|${f.subject}`.toLowerCase());
    for (const s of t.plan.skipped) row.leftAlone.add(`${s.resource}|${s.reason}`.toLowerCase());
    const applied = new Set((t.outcomes ?? []).filter((o) => o.outcome === 'applied').map((o) => o.change.id));
    for (const c of t.plan.changes) {
      if (applied.has(c.id)) row.fixed.add(c.id);
      else if (!t.outcomes) row.wouldFix.add(c.id);
    }
    for (const o of t.outcomes ?? []) for (const f of o.findings ?? []) row.found.add(`${f.type}|${f.subject}`.toLowerCase());
  }
  for (const a of alerts) rows.get(capabilityOfAlert(a.type) ?? 'rbac')?.alerted.add(a.id);
  return CAPABILITY_ORDER.map((capability) => {
    const r = rows.get(capability);
    return {
      capability,
      found: r?.found.size ?? 0,
      fixed: r?.fixed.size ?? 0,
      // A change planned once and applied later (enforce) counts as fixed only.
      wouldFix: r ? [...r.wouldFix].filter((id) => !r.fixed.has(id)).length : 0,
      alerted: r?.alerted.size ?? 0,
      leftAlone: r?.leftAlone.size ?? 0,
    };
  });
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  if (!res.ok) throw new Error(`GET ${new URL(url).pathname} answered ${res.status}`);
  return res.json();
}

async function countAudit(hostUrl: string, since: Date): Promise<number> {
  let url: string | undefined = `${hostUrl}/api/audit?since=${encodeURIComponent(since.toISOString())}&limit=1000`;
  let n = 0;
  while (url) {
    const page = (await getJson(url)) as { records?: unknown[]; nextLink?: string };
    n += page.records?.length ?? 0;
    url = page.nextLink;
  }
  return n;
}

/**
 * Plays the demo story against a fresh stack and returns what happened. Never throws for a missing
 * reaction (the step is marked failed and the story goes on); throws only when the stack cannot start.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = Date.now();
  const mode: DemoMode = options.report ? 'report' : 'enforce';
  const out = options.out ?? {};
  const tenant = demoTenant();
  const names = namesOf(tenant);

  const stack = await startStack({
    tenant,
    policy: demoPolicy(mode),
    latencyMs: options.latencyMs ?? 15,
    ...(options.preferredPort !== undefined ? { preferredPort: options.preferredPort } : {}),
    onProgress: (m) => out.phase?.(m),
  });
  const startupMs = Date.now() - started;
  const { emu, host } = stack;
  const storyStart = emu.clock.nowDate();
  try {
    const trace = traceCapabilities(stack.runtime.capabilities, () => emu.clock.now());
    const run: RunState = { stack, trace, names, mode, reactionTimeoutMs: options.reactionTimeoutMs ?? 20_000, seen: new Set(), signal: options.signal };
    const ctx: StoryContext = { emu, host, memo: new Map() };
    const steps: StepResult[] = [];
    for (const [i, step] of STORY.entries()) {
      options.signal?.throwIfAborted();
      out.stepStarted?.(i, STORY.length, step);
      const result = await playStep(step, ctx, run);
      steps.push(result);
      out.stepFinished?.(result, i, STORY.length);
    }

    const storyEntries = [...trace.entries];
    const alerts = emu.eventgrid.received().map((r) => ({ type: String(r.event.type), id: String(r.event.id) }));
    out.phase?.('Reading the audit trail and the plan through the HTTP routes');
    const auditRecords = await countAudit(host.url, storyStart).catch(() => -1);
    const plan = (await getJson(`${host.url}/api/plan?capability=all`).catch(() => undefined)) as { totals?: { changes: number; findings: number } } | undefined;

    const writes = new Map<string, number>();
    for (const r of emu.record.writes()) {
      if (r.service === 'eventgrid' || r.service === 'webhook' || r.service === 'msi') continue;
      writes.set(`${r.service}|${r.operation}`, (writes.get(`${r.service}|${r.operation}`) ?? 0) + 1);
    }
    const result: DemoResult = {
      mode,
      ok: steps.every((s) => s.ok),
      startupMs,
      totalMs: Date.now() - started,
      steps,
      summary: summarise(storyEntries, alerts),
      auditRecords,
      finalPlan: plan?.totals ? { changes: plan.totals.changes, findings: plan.totals.findings } : undefined,
      writes: [...writes].map(([k, count]) => {
        const [service = '', operation = ''] = k.split('|');
        return { service, operation, count };
      }),
      hostUrl: host.url,
      storyStartedAt: storyStart.toISOString(),
      logs: stack.logLines(),
    };
    await options.beforeStop?.(result, { emu, host });
    return result;
  } finally {
    out.phase?.('Stopping the host, the emulator and Azurite');
    await stack.stop();
  }
}
