/**
 * `npm run demo`: Warden end to end on this machine, with nothing but Node. Started by
 * `scripts/demo.mjs`, which makes the emulator's certificate and sets NODE_EXTRA_CA_CERTS before
 * Node starts (Node reads it only then).
 *
 *   npm run demo                      the story in enforce mode
 *   npm run demo -- --report          the same story in report mode: nothing is changed
 *   npm run demo -- --keep            leave everything running afterwards, to call the routes by hand
 *   npm run demo -- --latency 0       no simulated cloud latency
 *
 * The timeline goes to stdout as each step finishes; progress goes to stderr. Exit code 0 when every
 * reaction happened, 1 when one did not, 2 when the demo could not start, 130 after Ctrl+C.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createProgress } from './progress';
import { ANSI, PLAIN, renderHeader, renderNextSteps, renderStartup, renderStep, renderSummary } from './render';
import { runDemo, type DemoResult } from './run';
import { demoTenant, describeTenant } from './tenant';

const LOG_DIR = join(__dirname, '..', '.cache', 'demo');
const USAGE = `Usage: npm run demo -- [--report] [--keep] [--latency <ms>] [--no-color]

  --report        play the story with the policy in report mode: Warden plans, records and alerts, and changes nothing
  --keep          leave Azurite, the emulator and Warden running afterwards (Ctrl+C stops them)
  --latency <ms>  latency the emulator adds to every answer (default 15)
  --no-color      plain text output
`;

function write(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

function saveLog(result: DemoResult): string | undefined {
  try {
    mkdirSync(LOG_DIR, { recursive: true });
    const file = join(LOG_DIR, 'warden.log');
    writeFileSync(file, `${result.logs.join('\n')}\n`);
    return file;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      report: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      latency: { type: 'string' },
      'no-color': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const latencyMs = values.latency === undefined ? 15 : Number(values.latency);
  if (!Number.isInteger(latencyMs) || latencyMs < 0 || latencyMs > 2000) {
    process.stderr.write(`--latency must be a whole number of milliseconds from 0 to 2000; got "${values.latency ?? ''}"\n`);
    return 2;
  }
  if (!process.env.NODE_EXTRA_CA_CERTS || !process.env.WARDEN_EMULATOR_TLS_CERT || !process.env.WARDEN_EMULATOR_TLS_KEY) {
    process.stderr.write('Start the demo with `npm run demo` (scripts/demo.mjs): Node must trust the emulator\'s certificate before it starts.\n');
    return 2;
  }

  const color = process.stdout.isTTY && !values['no-color'] && !process.env.NO_COLOR;
  const st = color ? ANSI : PLAIN;
  const width = process.stdout.isTTY ? Math.min(120, process.stdout.columns || 100) : 100;
  const progress = createProgress();
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    progress.update(`${signal}: stopping everything (again to quit at once)`);
    stop.abort(new Error(`Stopped by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const mode = values.report ? 'report' : 'enforce';
  write(renderHeader(mode, `Demo tenant (emulator/tenants/demo.json and demo/tenant.ts): ${describeTenant(demoTenant())}`, st));
  const started = Date.now();
  let result: DemoResult;
  try {
    result = await runDemo({
      report: values.report,
      latencyMs,
      // The port `npm run host` uses, so the curl lines stay the same from run to run.
      ...(values.keep ? { preferredPort: 7071 } : {}),
      signal: stop.signal,
      out: {
        phase: (m) => progress.update(m),
        stepStarted: (i, total, step) => {
          if (i === 0) {
            progress.clear();
            write(renderStartup(Date.now() - started, st));
          }
          progress.update(`[${i + 1}/${total}] ${step.title}`);
        },
        stepFinished: (r, i, total) => {
          progress.clear();
          write(renderStep(r, i, total, mode, st, width));
        },
      },
      ...(values.keep
        ? {
            beforeStop: async (r: DemoResult) => {
              progress.stop();
              write([...renderSummary(r, st), ...renderNextSteps(r, st, true)]);
              await new Promise<void>((resolve) => {
                if (stop.signal.aborted) resolve();
                else stop.signal.addEventListener('abort', () => resolve(), { once: true });
              });
            },
          }
        : {}),
    });
  } catch (err) {
    progress.stop();
    if (stop.signal.aborted) {
      process.stderr.write('Stopped. Everything the demo started has been shut down.\n');
      return 130;
    }
    process.stderr.write(`The demo could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 2;
  }
  progress.stop();
  result = { ...result, totalMs: Date.now() - started };
  saveLog(result);
  if (!values.keep) write([...renderSummary(result, st), ...renderNextSteps(result, st, false)]);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
