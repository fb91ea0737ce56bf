#!/usr/bin/env node
// `npm test`: prepares what the suite needs before Jest starts (the emulator's certificate must be
// trusted through NODE_EXTRA_CA_CERTS, which Node reads only at process start), runs Jest, and ends
// with one plain `N passed, N failed` line for CI. Extra arguments go to Jest (`npm test -- test/unit`).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCert } from './tls.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache');
mkdirSync(cache, { recursive: true });
const { certFile, keyFile } = await ensureCert(join(cache, 'tls'));
// One results file per run: several runs at once must not read each other's totals.
const results = join(cache, `jest-results-${process.pid}.json`);
rmSync(results, { force: true });

const env = { ...process.env };
// A proxy would swallow loopback traffic (see AZURE-API-FACTS §1.3); the suite talks only to 127.0.0.1.
for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
// DefaultAzureCredential would try these before managed identity.
for (const k of ['AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_TENANT_ID', 'AZURE_CLIENT_CERTIFICATE_PATH']) delete env[k];
env.NO_PROXY = '127.0.0.1,localhost';
env.NODE_EXTRA_CA_CERTS = certFile;
env.WARDEN_EMULATOR_TLS_CERT = certFile;
env.WARDEN_EMULATOR_TLS_KEY = keyFile;

const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
const args = [jestBin, '--json', `--outputFile=${results}`, ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
const code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(results)) {
  const r = JSON.parse(readFileSync(results, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  if (passed + failed === 0 && code !== 0) failed = 1;
} else {
  failed = 1;
}
rmSync(results, { force: true });
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code === 0 && failed === 0 && passed > 0 ? 0 : 1);
