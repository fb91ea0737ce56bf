#!/usr/bin/env node
// `npm run demo`: makes (once) the certificate the loopback emulator serves, then starts the demo in a
// child Node process that trusts it. Node reads NODE_EXTRA_CA_CERTS only when a process starts, so this
// cannot happen inside the demo itself. Arguments go to the demo (`npm run demo -- --report`); its exit
// code is ours. Ctrl+C is passed on, and whatever the demo started (Azurite) is ended with it.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCert } from './tls.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { certFile, keyFile } = await ensureCert(join(root, '.cache', 'tls'));

const env = { ...process.env };
// A proxy would swallow loopback traffic; the demo talks only to 127.0.0.1.
for (const k of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
// DefaultAzureCredential would try these before managed identity; the demo uses the emulator's identity.
for (const k of ['AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_TENANT_ID', 'AZURE_CLIENT_CERTIFICATE_PATH']) delete env[k];
env.NO_PROXY = '127.0.0.1,localhost';
env.no_proxy = '127.0.0.1,localhost';
env.NODE_EXTRA_CA_CERTS = certFile;
env.WARDEN_EMULATOR_TLS_CERT = certFile;
env.WARDEN_EMULATOR_TLS_KEY = keyFile;

// Its own process group (not on Windows), so one signal reaches the demo and everything it started.
const group = process.platform !== 'win32';
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'demo', 'main.ts'), ...process.argv.slice(2)], {
  cwd: root,
  env,
  stdio: 'inherit',
  detached: group,
});

const killGroup = (signal) => {
  if (!group || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Nothing left in the group.
  }
};

// Ctrl+C under npm arrives twice at once (from the terminal and forwarded by npm): the first lets the
// demo shut down in order; only another one a second later ends the whole group at once.
let firstSignalAt = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (!firstSignalAt) {
      firstSignalAt = Date.now();
      child.kill(signal);
    } else if (Date.now() - firstSignalAt > 1000) killGroup('SIGKILL');
  });
}

const code = await new Promise((resolve) => {
  child.on('error', (err) => {
    process.stderr.write(`Could not start the demo: ${err.message}\n`);
    resolve(2);
  });
  child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (sig === 'SIGINT' ? 2 : 15) : 1)));
});
// Whatever the demo started and did not stop (it crashed, say) goes with it.
killGroup('SIGKILL');
process.exit(code);
