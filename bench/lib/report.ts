/**
 * The one table `npm run bench` prints (scenario, metric, value, target, met) and the JSON it writes,
 * and the Markdown form of the same table for docs/performance.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MachineInfo } from './machine';
import { fmt, type Metric, type ScenarioResult } from './types';

export interface BenchReport {
  generatedAt: string;
  machine: MachineInfo;
  /** Simulated latency and concurrency the scenarios ran with. */
  settings: Record<string, unknown>;
  totalMs: number;
  results: ScenarioResult[];
}

function valueText(m: Metric): string {
  const v = Number.isFinite(m.value) ? fmt(m.value) : String(m.value);
  return m.unit ? `${v} ${m.unit}` : v;
}

function metText(m: Metric): string {
  if (m.met === undefined) return '';
  return m.met ? '✓' : '✗';
}

type Row = [string, string, string, string, string];

function rowsOf(results: readonly ScenarioResult[]): Row[] {
  const rows: Row[] = [];
  for (const r of results) {
    if (r.error) rows.push([r.scenario, 'error', r.error.split('\n')[0]?.slice(0, 100) ?? '', '', '✗']);
    for (const m of r.metrics) rows.push([r.scenario, m.name, valueText(m), m.target ?? '', metText(m)]);
  }
  return rows;
}

/** A plain-text table (monospace) for the console. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const header: Row = ['scenario', 'metric', 'value', 'target', 'met'];
  const rows = rowsOf(results);
  const widths = header.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...r[i as 0]].length)));
  const line = (r: Row): string =>
    r
      .map((c, i) => {
        const w = widths[i] ?? 0;
        const pad = ' '.repeat(Math.max(0, w - [...c].length));
        return i === 2 ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(header), sep];
  let last = '';
  for (const r of rows) {
    const shown: Row = [r[0] === last ? '' : r[0], r[1], r[2], r[3], r[4]];
    last = r[0];
    out.push(line(shown));
  }
  const all = results.flatMap((r) => r.metrics).filter((m) => m.met !== undefined);
  const met = all.filter((m) => m.met).length;
  const errors = results.filter((r) => r.error).length;
  out.push(sep, `${met} of ${all.length} targets met${errors ? `; ${errors} scenario(s) failed to run` : ''}`);
  return out.join('\n');
}

/** The same table in Markdown (docs/performance.md). */
export function formatMarkdown(results: readonly ScenarioResult[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = ['| scenario | metric | value | target | met |', '|---|---|---:|---|:-:|'];
  for (const r of rowsOf(results)) out.push(`| ${r.map(esc).join(' | ')} |`);
  return out.join('\n');
}

export function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}`;
}

export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
