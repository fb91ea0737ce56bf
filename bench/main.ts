/**
 * `npm run bench`: runs the benchmark scenarios on the emulator (30 ms simulated latency per call),
 * each in its own child process, prints one table (scenario, metric, value, target, met) and writes it
 * with the machine's description to bench/results/latest.json. Benchmarks report: a missed target does
 * not change the exit code; only a scenario that could not run at all exits 1.
 *
 *   npm run bench                              # every scenario
 *   npm run bench -- --scenario rbac-cold      # one (repeat --scenario, or a comma list, for more)
 *   npm run bench -- --list                    # the scenarios and their sizes
 *   npm run bench -- --scenario members --size workspaces=2    # smaller sizes, for a quick look
 *   npm run bench -- --markdown                # also print the table as Markdown (docs/performance.md)
 *   npm run bench -- --in-process              # no child processes (debugging; memory figures then mix)
 *
 * Start it through `npm run bench` (scripts/bench.mjs): the emulator's certificate must be trusted
 * through NODE_EXTRA_CA_CERTS, which Node reads only when a process starts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CONCURRENCY, LATENCY_MS } from './lib/app';
import { machineInfo } from './lib/machine';
import { formatMarkdown, formatTable, machineLine, writeReport, type BenchReport } from './lib/report';
import { runScenario } from './lib/run';
import type { Scenario, ScenarioResult } from './lib/types';
import { SCENARIOS } from './scenarios';

const ROOT = resolve(__dirname, '..');
const SCENARIO_TIMEOUT_MS = 8 * 60_000;

interface Args {
  scenarios: string[];
  sizes: string[];
  out: string;
  list: boolean;
  markdown: boolean;
  inProcess: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { scenarios: [], sizes: [], out: join(ROOT, 'bench', 'results', 'latest.json'), list: false, markdown: false, inProcess: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--scenario' || arg === '-s') a.scenarios.push(...value().split(',').map((s) => s.trim()).filter(Boolean));
    else if (arg.startsWith('--scenario=')) a.scenarios.push(...arg.slice(11).split(','));
    else if (arg === '--size') a.sizes.push(value());
    else if (arg === '--out') a.out = resolve(value());
    else if (arg === '--list') a.list = true;
    else if (arg === '--markdown') a.markdown = true;
    else if (arg === '--in-process') a.inProcess = true;
    else if (arg === '--help' || arg === '-h') a.list = true;
    else throw new Error(`Unknown argument ${arg} (try --list)`);
  }
  return a;
}

function sizeOverrides(specs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of specs) {
    const [k, v] = s.split('=');
    if (!k || v === undefined || !Number.isFinite(Number(v))) throw new Error(`--size wants key=number, got "${s}"`);
    out[k] = Number(v);
  }
  return out;
}

function runInChild(s: Scenario, sizes: readonly string[]): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  const file = join(dir, 'result.json');
  const started = performance.now();
  const args = [...process.execArgv, join(__dirname, 'child.ts'), s.name, '--result', file, ...sizes.flatMap((x) => ['--size', x])];
  return new Promise<ScenarioResult>((done) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), SCENARIO_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let result: ScenarioResult;
      try {
        result = JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult;
      } catch {
        const why = signal === 'SIGKILL' ? `timed out after ${SCENARIO_TIMEOUT_MS / 60_000} min` : `exited with ${code ?? signal ?? 'unknown'}`;
        result = { scenario: s.name, title: s.title, metrics: [], error: `The scenario's process ${why}`, durationMs: Math.round(performance.now() - started) };
      }
      rmSync(dir, { recursive: true, force: true });
      done(result);
    });
  });
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(14)} ${s.title}  ${JSON.stringify(s.defaults)}\n`);
    return 0;
  }
  const unknown = args.scenarios.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`Unknown scenario(s): ${unknown.join(', ')}. Known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const selected = args.scenarios.length > 0 ? SCENARIOS.filter((s) => args.scenarios.includes(s.name)) : [...SCENARIOS];
  const overrides = sizeOverrides(args.sizes);

  const machine = machineInfo();
  process.stderr.write(`Warden benchmarks on ${machineLine(machine)}; ${LATENCY_MS} ms per emulator call, WARDEN_CONCURRENCY=${CONCURRENCY}\n`);
  const started = performance.now();
  const results: ScenarioResult[] = [];
  for (const s of selected) {
    process.stderr.write(`▶ ${s.name}: ${s.title}\n`);
    const r = args.inProcess
      ? await runScenario(s, { sizes: overrides, log: (line) => process.stderr.write(`  ${line}\n`) })
      : await runInChild(s, args.sizes);
    process.stderr.write(`  ${r.error ? `failed: ${r.error}` : 'done'} in ${(r.durationMs / 1000).toFixed(1)} s\n`);
    results.push(r);
  }
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    machine,
    settings: { latencyMs: LATENCY_MS, concurrency: CONCURRENCY, sizes: overrides },
    totalMs: Math.round(performance.now() - started),
    results,
  };
  writeReport(args.out, report);
  process.stdout.write(`\n${formatTable(results)}\n`);
  process.stdout.write(`\nMachine: ${machineLine(machine)}. Total ${(report.totalMs / 1000).toFixed(0)} s. Written to ${args.out}\n`);
  if (args.markdown) process.stdout.write(`\n${formatMarkdown(results)}\n`);
  // A missed target is a figure, not a failure; a scenario that could not run at all is.
  return results.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
