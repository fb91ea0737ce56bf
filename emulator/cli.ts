/**
 * `npm run emulator [-- --tenant file.json] [--latency ms] [--page-size n] [--control-port n] [--json]`
 *
 * Starts the emulator standalone (demo tenant by default), prints every endpoint and the exact env
 * lines that point Warden at it, and runs until SIGINT/SIGTERM. `--json` prints one JSON line
 * (`{ urls, env, vaults }`) instead, for scripts that start it as a child process.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmulator, type Emulator } from './index';
import { DEMO_TENANT_PATH } from './tenant';

const ROOT = join(__dirname, '..');

interface CertFiles {
  certFile: string;
  keyFile: string;
}

/** scripts/tls.mjs is ESM; load it at run time and check what came back. */
async function ensureCert(dir: string): Promise<CertFiles> {
  const mod: unknown = await import(join(ROOT, 'scripts', 'tls.mjs'));
  const fn = (mod as { ensureCert?: unknown }).ensureCert;
  if (typeof fn !== 'function') throw new Error('scripts/tls.mjs does not export ensureCert');
  const out: unknown = await (fn as (d: string) => Promise<unknown>)(dir);
  const files = out as Partial<CertFiles>;
  if (typeof files.certFile !== 'string' || typeof files.keyFile !== 'string') throw new Error('ensureCert returned no certificate paths');
  return { certFile: files.certFile, keyFile: files.keyFile };
}

function intOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseInt(value, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** The human-readable banner: endpoints, then env lines ready to paste. */
export function describe(emu: Emulator, tenantLabel: string): string {
  const env = emu.wardenEnv();
  const vaults = emu.keyvault.vaultNames();
  const lines = [
    `Warden Azure emulator — tenant ${emu.tenantId} (${tenantLabel}), subscription ${emu.subscriptionId}`,
    '',
    'Endpoints:',
    `  ARM                 ${emu.urls.arm}`,
    `  Microsoft Graph     ${emu.urls.graph}/v1.0`,
    ...vaults.map((v) => `  Key Vault ${v.padEnd(10)}${emu.vaultUrl(v)}`),
    `  Event Grid topic    ${emu.urls.eventGridTopic}`,
    `  Chat webhooks       ${emu.urls.webhook}/{name}`,
    `  Managed identity    ${emu.urls.msi}`,
    `  Control API         ${emu.urls.control}/_emulator/state`,
    '',
    'Point Warden at it (these env lines; NODE_EXTRA_CA_CERTS must be set before Node starts):',
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    '',
    'Ctrl+C stops it.',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tenant: { type: 'string' },
      latency: { type: 'string' },
      'page-size': { type: 'string' },
      'control-port': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  const { certFile, keyFile } = await ensureCert(join(ROOT, '.cache', 'tls'));
  const latencyMs = intOption(values.latency, 'latency');
  const pageSize = intOption(values['page-size'], 'page-size');
  const controlPort = intOption(values['control-port'], 'control-port');
  const emu = await startEmulator({
    tenant: values.tenant ?? DEMO_TENANT_PATH,
    tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) },
    tlsCertFile: certFile,
    ...(latencyMs !== undefined ? { latencyMs } : {}),
    ...(pageSize !== undefined ? { pageSize } : {}),
    ...(controlPort !== undefined ? { controlPort } : {}),
  });

  if (values.json) {
    const vaults = Object.fromEntries(emu.keyvault.vaultNames().map((v) => [v, emu.vaultUrl(v)]));
    process.stdout.write(`${JSON.stringify({ tenantId: emu.tenantId, subscriptionId: emu.subscriptionId, urls: emu.urls, vaults, env: emu.wardenEnv() })}\n`);
  } else {
    process.stdout.write(`${describe(emu, values.tenant ?? 'demo tenant')}\n`);
  }

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    if (!values.json) process.stdout.write(`\n${signal}: stopping the emulator…\n`);
    emu
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      });
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
