/**
 * `npm run host`: the Functions app on the project's host runner (see docs/host.md).
 *   npm run host -- [--port 7071] [--functions health,work] [--module functions/index.ts]
 * Settings come from local.settings.json `Values` and the environment (which wins), as with Core Tools.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHost, type StartHostOptions } from './host';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', short: 'p' },
      functions: { type: 'string' },
      module: { type: 'string', short: 'm' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: npm run host -- [--port <port>] [--functions <name,name>] [--module <file registering the functions>]\n');
    return;
  }
  const opts: StartHostOptions = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number; got "${values.port}"`);
    opts.port = port;
  }
  if (values.module) opts.functionsModule = resolve(values.module);
  if (values.functions) opts.functions = values.functions.split(',').map((s) => s.trim()).filter(Boolean);
  const host = await startHost(opts);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`Received ${signal} again; exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    host.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`Stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`The host did not start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
