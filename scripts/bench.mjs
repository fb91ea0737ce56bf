#!/usr/bin/env node
// `npm run bench`: the emulator's self-signed certificate must be trusted through NODE_EXTRA_CA_CERTS,
// which Node reads only when a process starts, so this launcher makes sure the certificate exists and
// starts the benchmarks (bench/main.ts, through tsx) with it. Extra arguments go to bench/main.ts.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCert } from './tls.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, '.cache'), { recursive: true });
const { certFile, keyFile } = await ensureCert(join(root, '.cache', 'tls'));

const env = { ...process.env };
// A proxy would swallow loopback traffic; the benchmarks talk only to 127.0.0.1.
for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
// DefaultAzureCredential would try these before managed identity.
for (const k of ['AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_TENANT_ID', 'AZURE_CLIENT_CERTIFICATE_PATH']) delete env[k];
env.NO_PROXY = '127.0.0.1,localhost';
env.NODE_EXTRA_CA_CERTS = certFile;
env.WARDEN_EMULATOR_TLS_CERT = certFile;
env.WARDEN_EMULATOR_TLS_KEY = keyFile;

const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'main.ts'), ...process.argv.slice(2)], {
  cwd: root,
  env,
  stdio: 'inherit',
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
process.exit(code);
