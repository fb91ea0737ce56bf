/**
 * Starts Azurite (blob, queue, table) on free loopback ports for tests, the demo and benchmarks.
 * Data lives in a temporary folder, so `restart()` keeps queued work (what a real restart does).
 * A tool, not product code: it lives outside test/ because `npm run demo` needs it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The well-known development account key that every Azurite install uses (public, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  connectionString: string;
  ports: { blob: number; queue: number; table: number };
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/** A loopback port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): string {
  const base = 'http://127.0.0.1';
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=${base}:${ports.blob}/${AZURITE_ACCOUNT}`,
    `QueueEndpoint=${base}:${ports.queue}/${AZURITE_ACCOUNT}`,
    `TableEndpoint=${base}:${ports.table}/${AZURITE_ACCOUNT}`,
  ].join(';') + ';';
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`Azurite did not listen on port ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export async function startAzurite(opts: { location?: string } = {}): Promise<Azurite> {
  const location = opts.location ?? mkdtempSync(join(tmpdir(), 'warden-azurite-'));
  const ports = { blob: await freePort(), queue: await freePort(), table: await freePort() };
  const bin = require.resolve('azurite/dist/src/azurite.js');
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    child = spawn(
      process.execPath,
      [
        bin,
        '--silent',
        '--skipApiVersionCheck',
        '--loose',
        '--disableTelemetry',
        '--location',
        location,
        '--blobPort',
        String(ports.blob),
        '--queuePort',
        String(ports.queue),
        '--tablePort',
        String(ports.table),
      ],
      { stdio: 'ignore' },
    );
    await Promise.all([waitForPort(ports.blob, 20000), waitForPort(ports.queue, 20000), waitForPort(ports.table, 20000)]);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 3000).unref();
    });
  };
  await launch();
  return {
    connectionString: azuriteConnectionString(ports),
    ports,
    async stop() {
      await kill();
      if (!opts.location) rmSync(location, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
  };
}
