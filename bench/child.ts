/**
 * Runs one scenario in this process and writes its result as JSON to the file named by `--result`.
 * `bench/main.ts` starts one of these per scenario, so one scenario's memory, caches and process-wide
 * runtime never pollute another's figures.
 */
import { writeFileSync } from 'node:fs';
import { runScenario } from './lib/run';
import { SCENARIOS } from './scenarios';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const name = args[0];
  const at = args.indexOf('--result');
  const out = at >= 0 ? args[at + 1] : undefined;
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario || !out) throw new Error(`usage: child.ts <scenario> --result <file> [--size key=value]…; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const sizes: Record<string, number> = {};
  args.forEach((a, i) => {
    if (a !== '--size') return;
    const [k, v] = (args[i + 1] ?? '').split('=');
    if (k && v !== undefined && Number.isFinite(Number(v))) sizes[k] = Number(v);
  });
  const result = await runScenario(scenario, { sizes, log: (line) => process.stderr.write(`  ${line}\n`) });
  writeFileSync(out, JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
