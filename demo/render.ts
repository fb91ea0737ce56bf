/**
 * The demo's output for people: a timeline (event → decision → change, each with its time since the
 * step began), a summary table, and where to look next. Pure functions from the demo's result to
 * lines of text; colour only when asked for.
 */
import type { CapabilityName } from '../shared/capability';
import type { Decision, DemoMode, DemoResult, StepResult, SummaryRow } from './run';

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  cyan(s: string): string;
}

const plain = (s: string): string => s;
export const PLAIN: Style = { bold: plain, dim: plain, green: plain, yellow: plain, red: plain, cyan: plain };

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
export const ANSI: Style = { bold: sgr(1, 22), dim: sgr(2, 22), green: sgr(32, 39), yellow: sgr(33, 39), red: sgr(31, 39), cyan: sgr(36, 39) };

export const CAPABILITY_TITLES: Record<CapabilityName, string> = {
  rbac: 'RBAC sync',
  workspaces: 'Workspace baseline',
  compute: 'Compute identity',
  credentials: 'App credentials',
};

/** How each change action reads when counted: what it acts on (one, many), done, to be done. */
const ACTION_WORDS: Record<string, [string, string, string, string]> = {
  createRoleAssignment: ['role assignment', 'role assignments', 'created', 'create'],
  deleteRoleAssignment: ['role assignment', 'role assignments', 'removed', 'remove'],
  stopComputeInstance: ['compute instance', 'compute instances', 'stopped', 'stop'],
  assignIdentity: ['managed identity', 'managed identities', 'assigned', 'assign'],
  stopCompute: ['compute instance', 'compute instances', 'stopped', 'stop'],
  scaleToZero: ['cluster', 'clusters', 'scaled to zero', 'scale to zero'],
  deleteCompute: ['compute', 'computes', 'deleted', 'delete'],
  rotateSecret: ['client secret', 'client secrets', 'rotated', 'rotate'],
  removePassword: ['old client secret', 'old client secrets', 'removed', 'remove'],
};

const TIME_WIDTH = 9;
const LABEL_WIDTH = 10;

function ms(n: number): string {
  return n < 1000 ? `${Math.max(0, Math.round(n))} ms` : `${(n / 1000).toFixed(2)} s`;
}

function seconds(n: number): string {
  return `${(n / 1000).toFixed(1)} s`;
}

/** Word-wraps `text` to `width`, continuation lines indented by `indent` spaces. */
export function wrap(text: string, width: number, indent: number): string[] {
  const room = Math.max(30, width - indent);
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > room) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.map((l, i) => (i === 0 ? l : `${' '.repeat(indent)}${l}`));
}

class Lines {
  readonly lines: string[] = [];
  constructor(
    private readonly st: Style,
    private readonly width: number,
  ) {}

  /** `  +123 ms  label     text` with the text wrapped under itself. */
  row(atMs: number | undefined, label: string, text: string, color: (s: string) => string = plain): void {
    const time = atMs === undefined ? '' : `+${ms(atMs)}`;
    const head = `    ${time.padStart(TIME_WIDTH)}  ${label.padEnd(LABEL_WIDTH)}`;
    const [first = '', ...rest] = wrap(text, this.width, head.length);
    this.lines.push(`${this.st.dim(head.slice(0, 4 + TIME_WIDTH))}  ${this.st.dim(label.padEnd(LABEL_WIDTH))}${color(first)}`);
    for (const r of rest) this.lines.push(color(r));
  }

  /** A continuation under the previous row's text. */
  more(text: string, color: (s: string) => string = plain): void {
    const indent = 4 + TIME_WIDTH + 2 + LABEL_WIDTH;
    for (const [i, l] of wrap(text, this.width, indent + 2).entries()) this.lines.push(i === 0 ? `${' '.repeat(indent)}${color(l)}` : color(l));
  }
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Array<[string, number]> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return [...m];
}

function findingName(type: string): string {
  const last = type.split('.').pop() ?? type;
  return last.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

/** `7 role assignments created, 2 managed identities assigned`, or `would create 7 role assignments` in report mode. */
function countedChanges(changes: ReadonlyArray<{ action: string; outcome: string }>, mode: DemoMode): string {
  return countBy(changes, (c) => c.action)
    .map(([action, n]) => {
      const [one, many, done, todo] = ACTION_WORDS[action] ?? [action, action, 'done', 'do'];
      const what = `${n} ${n === 1 ? one : many}`;
      return mode === 'report' ? `would ${todo} ${what}` : `${what} ${done}`;
    })
    .join(', ');
}

function markOf(outcome: string, st: Style): string {
  return outcome === 'applied' ? st.green('+') : outcome === 'failed' ? st.red('✗') : st.yellow('~');
}

/** Three or more role assignments on one resource read better as one line: `6 role assignments created on X: 'R' for A, B; …`. */
function renderChanges(out: Lines, changes: Decision['changes'], mode: DemoMode, st: Style): void {
  const groups = new Map<string, Decision['changes']>();
  for (const c of changes) {
    const key = `${c.action}|${c.resource}|${c.outcome}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const group of groups.values()) {
    const [first] = group;
    if (!first) continue;
    if (group.length >= 3 && group.every((c) => c.grant)) {
      const byRole = countBy(group, (c) => c.grant?.role ?? '').map(([role]) => `'${role}' for ${group.filter((c) => c.grant?.role === role).map((c) => c.grant?.principal ?? '').join(', ')}`);
      out.more(`${markOf(first.outcome, st)} ${countedChanges(group, first.outcome === 'applied' ? 'enforce' : mode)} on ${first.resource}: ${byRole.join('; ')}`);
      continue;
    }
    for (const c of group) {
      out.more(`${markOf(c.outcome, st)} ${c.description}${c.outcome === 'applied' || c.outcome === 'planned' ? '' : st.dim(` (${c.outcome})`)}`);
    }
  }
}

function renderDecision(out: Lines, d: Decision, mode: DemoMode, st: Style): void {
  out.row(d.atMs, 'decision', `${d.capability} · ${d.target}`, st.bold);
  renderChanges(out, d.changes, mode, st);
  for (const f of d.findings) out.more(`${f.severity === 'critical' ? st.red('!') : st.yellow('!')} ${firstSentence(f.summary)}`);
  if (d.leftAlone.length > 0) {
    const resources = [...new Set(d.leftAlone.map((l) => l.resource))];
    const why = [...new Set(d.leftAlone.map((l) => l.reason.split(':')[0] ?? l.reason))].join('; ');
    out.more(st.dim(`= left alone: ${resources.join(', ')} (${why.toLowerCase()}${d.leftAlone.length > 1 ? `, ${d.leftAlone.length} changes` : ''})`));
  }
}

/** A finding's first sentence: the rest (what to do about it) is in the alert and the audit trail. */
function firstSentence(text: string): string {
  const m = /^(.+?)[.;]\s/.exec(text);
  return m?.[1] ? `${m[1]}.` : text;
}

/** The sweep over the whole tenant is too big to list: counted by capability instead. */
function renderCompact(out: Lines, s: StepResult, mode: DemoMode, st: Style): void {
  const changes = s.decisions.flatMap((d) => d.changes.map((c) => ({ ...c, capability: d.capability, target: d.target })));
  const findings = s.decisions.flatMap((d) => d.findings);
  const leftAlone = s.decisions.flatMap((d) => d.leftAlone);
  const first = Math.min(...s.decisions.map((d) => d.atMs));
  out.row(first, 'decisions', `${s.decisions.length} targets need attention: ${changes.length} change(s), ${findings.length} finding(s)`, st.bold);
  for (const [capability] of countBy(changes, (c) => c.capability)) {
    const mine = changes.filter((c) => c.capability === capability);
    const targets = [...new Set(mine.map((c) => c.target))].join(', ');
    out.more(`${mode === 'report' ? st.yellow('~') : st.green('+')} ${capability}: ${countedChanges(mine, mode)} (${targets})`);
  }
  if (findings.length > 0) {
    out.more(`${st.yellow('!')} found: ${countBy(findings, (f) => findingName(f.type)).map(([n, c]) => `${c} × ${n}`).join(', ')}`);
  }
  if (leftAlone.length > 0) out.more(st.dim(`= left alone: ${leftAlone.length} change(s) on exempt resources`));
}

const SERVICE_NAMES: Record<string, string> = { arm: 'ARM', graph: 'Graph', keyvault: 'Key Vault' };

/** `ARM roleAssignments.create ×6 · Key Vault secrets.set` */
function requestsText(requests: StepResult['changeRequests']): string {
  return countBy(requests, (r) => `${SERVICE_NAMES[r.service] ?? r.service} ${r.operation.split('.').slice(1).join('.')}`)
    .map(([what, n]) => (n > 1 ? `${what} ×${n}` : what))
    .join(' · ');
}

export function renderHeader(mode: DemoMode, tenant: string, st: Style): string[] {
  return [
    '',
    `${st.bold('Warden demo')} — ${mode === 'enforce' ? st.green('enforce mode') : st.yellow('report mode: plans, records and alerts; changes nothing')}`,
    st.dim(tenant),
    st.dim('Alerts go to an Event Grid topic, a Teams webhook and mail; all of them land in the emulator.'),
    '',
  ];
}

export function renderStartup(startupMs: number, st: Style): string[] {
  return [st.dim(`Azurite, the Azure emulator and Warden on the Functions host runner started in ${seconds(startupMs)}.`), ''];
}

export function renderStep(s: StepResult, index: number, total: number, mode: DemoMode, st: Style, width: number): string[] {
  const out = new Lines(st, width);
  const num = `${String(index + 1).padStart(String(total).length)}/${total}`;
  const head = `${st.bold(num)}  ${st.bold(s.title)}`;
  // The reaction's time is what a person cares about; the step itself also waits for Warden to go quiet.
  const dur = st.dim(s.reaction && !s.timer ? `reacted in ${ms(s.reaction.atMs)}` : seconds(s.durationMs));
  out.lines.push(`${head}  ${dur}`);
  out.row(s.event.atMs, 'event', `${s.event.description}${s.event.status >= 300 ? st.red(` (answered ${s.event.status})`) : ''}`, st.cyan);

  const detailed = s.decisions.reduce((n, d) => n + d.changes.length + d.findings.length, 0) <= 8;
  if (detailed) for (const d of s.decisions) renderDecision(out, d, mode, st);
  else renderCompact(out, s, mode, st);

  if (s.changeRequests.length > 0) out.row(Math.min(...s.changeRequests.map((r) => r.atMs)), 'change', requestsText(s.changeRequests));
  if (s.alerts.length > 0) {
    const text = detailed
      ? countBy(s.alerts, (a) => a.type.replace(/^Warden\./, '')).map(([t, n]) => `${t}${n > 1 ? ` ×${n}` : ''}`).join(', ')
      : `${s.alerts.length} alerts`;
    out.row(s.alertedAtMs, 'alert', text, st.dim);
  }
  if (s.reaction) out.row(s.reaction.atMs, st.green('✓'), s.reaction.description, st.green);
  else if (s.ok && mode === 'report' && s.plannedInstead) out.row(undefined, st.green('✓'), 'nothing changed: the ~ changes are planned and recorded, not made', st.green);
  if (!s.ok) out.row(undefined, st.red('✗'), s.error ?? 'failed', st.red);
  out.lines.push('');
  return out.lines;
}

function table(rows: SummaryRow[], mode: DemoMode, st: Style): string[] {
  const fixedLabel = mode === 'enforce' ? 'fixed' : 'would fix';
  const cols = ['found', fixedLabel, 'alerted', 'left alone'];
  const name = 20;
  const w = cols.map((c) => Math.max(c.length, 5));
  const header = `  ${'capability'.padEnd(name)}${cols.map((c, i) => c.padStart((w[i] ?? 5) + 2)).join('')}`;
  const lines = [st.bold(header)];
  const total = { found: 0, fix: 0, alerted: 0, leftAlone: 0 };
  for (const r of rows) {
    const fix = mode === 'enforce' ? r.fixed : r.wouldFix;
    total.found += r.found;
    total.fix += fix;
    total.alerted += r.alerted;
    total.leftAlone += r.leftAlone;
    const vals = [r.found, fix, r.alerted, r.leftAlone];
    lines.push(`  ${CAPABILITY_TITLES[r.capability].padEnd(name)}${vals.map((v, i) => String(v).padStart((w[i] ?? 5) + 2)).join('')}`);
  }
  const vals = [total.found, total.fix, total.alerted, total.leftAlone];
  lines.push(st.dim(`  ${'all'.padEnd(name)}${vals.map((v, i) => String(v).padStart((w[i] ?? 5) + 2)).join('')}`));
  return lines;
}

export function renderSummary(r: DemoResult, st: Style): string[] {
  const failed = r.steps.filter((s) => !s.ok);
  const lines = [st.bold('Summary'), ...table(r.summary, r.mode, st), ''];
  lines.push(
    `  ${st.dim('found')}: distinct findings · ${st.dim(r.mode === 'enforce' ? 'fixed' : 'would fix')}: changes ${r.mode === 'enforce' ? 'made' : 'planned'} · ${st.dim('alerted')}: alerts sent · ${st.dim('left alone')}: exempt or not Warden's`,
  );
  if (r.auditRecords >= 0) lines.push(`  Audit trail: ${r.auditRecords} records (every planned, applied and skipped change, every finding, with its trigger).`);
  if (r.finalPlan) {
    lines.push(
      r.finalPlan.changes === 0
        ? `  Plan now: nothing left to change; ${r.finalPlan.findings} finding(s) stand until someone fixes them by hand.`
        : `  Plan now: ${r.finalPlan.changes} change(s) waiting${r.mode === 'report' ? ' (report mode makes none)' : ''}, ${r.finalPlan.findings} finding(s).`,
    );
  }
  if (r.mode === 'report') {
    const arm = r.writes.filter((w) => w.service === 'arm').reduce((n, w) => n + w.count, 0);
    const kv = r.writes.filter((w) => w.service === 'keyvault').reduce((n, w) => n + w.count, 0);
    const graph = r.writes.filter((w) => w.service === 'graph' && !['graph.subscriptions.create', 'graph.sendMail'].includes(w.operation)).reduce((n, w) => n + w.count, 0);
    const ok = arm + kv + graph === 0;
    lines.push(
      (ok ? st.green : st.red)(
        `  ${ok ? '✓' : '✗'} Writes to Azure: ARM ${arm}, Key Vault ${kv}, Graph ${graph} (besides Warden's own change-notification subscription and its alert mail).`,
      ),
    );
  }
  lines.push('');
  lines.push(
    failed.length === 0
      ? st.green(`✓ Warden reacted to every event of the story. Whole run: ${seconds(r.totalMs)}.`)
      : st.red(`✗ ${failed.length} of ${r.steps.length} reactions did not happen: ${failed.map((s) => s.id).join(', ')}. See the ✗ lines above and .cache/demo/warden.log.`),
  );
  lines.push('');
  return lines;
}

export function renderNextSteps(r: DemoResult, st: Style, live: boolean): string[] {
  const base = live ? r.hostUrl : 'http://127.0.0.1:7071';
  const curl = (path: string): string => st.cyan(`curl -s '${base}${path}'`);
  const lines = [st.bold('Where to look next')];
  if (live) {
    lines.push(
      `  ${curl('/api/audit?capability=rbac&limit=20')}   ${st.dim("the audit trail, newest first")}`,
      `  ${curl('/api/plan?capability=all')}   ${st.dim('what Warden would change now (&target=<resource, group or app id>)')}`,
      '',
      st.yellow('  Azurite, the emulator and Warden are still running (--keep). Ctrl+C stops them.'),
    );
  } else {
    lines.push(
      `  ${st.cyan('npm run demo -- --keep')}     ${st.dim('the same, left running, to call the routes yourself:')}`,
      `    ${curl('/api/audit?capability=rbac&limit=20')}   ${st.dim('the audit trail')}`,
      `    ${curl('/api/plan?capability=all')}   ${st.dim('what Warden would change now')}`,
      `  ${st.cyan('npm run demo -- --report')}   ${st.dim('the same story in report mode: Warden plans, records and alerts, changes nothing')}`,
      `  ${st.cyan('npm run emulator')}, ${st.cyan('npm run host')}   ${st.dim('the pieces on their own (docs/host.md)')}`,
      `  demo/policy.json ${st.dim('(the policy)')} · demo/story.ts ${st.dim('(the story)')} · .cache/demo/warden.log ${st.dim("(Warden's log of this run)")}`,
    );
  }
  lines.push('');
  return lines;
}
