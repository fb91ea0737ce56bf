#!/usr/bin/env node
// azd `postdeploy` hook (azure.yaml). Event Grid only accepts a subscription to a function that
// exists, so the first `azd up` provisions without event subscriptions; once the code is deployed
// this hook turns them on (WARDEN_EVENT_SUBSCRIPTIONS=true, kept in the azd environment) and
// provisions again. Later runs find it on and only print the next steps.
// WARDEN_GRANT_GRAPH_PERMISSIONS=true also runs grant-graph-permissions (needs a Privileged Role
// Administrator sign-in in the az CLI); otherwise the exact command is printed.
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const AZD = process.env.WARDEN_AZD_BIN || 'azd';
const WIN = process.platform === 'win32';

/** azd may be a .cmd shim on Windows, which only a shell runs; the scripts are run directly. */
function run(cmd, args, viaShell = false) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', shell: viaShell && WIN });
  return r.status ?? 1;
}

function main() {
  const env = process.env;
  if (env.WARDEN_EVENT_SUBSCRIPTIONS !== 'true') {
    console.log('postdeploy: the functions are deployed; creating the Event Grid subscriptions that feed them (azd provision)…');
    if (run(AZD, ['env', 'set', 'WARDEN_EVENT_SUBSCRIPTIONS', 'true'], true) !== 0) return 1;
    if (run(AZD, ['provision', '--no-prompt'], true) !== 0) {
      console.error('postdeploy: provisioning the Event Grid subscriptions failed; fix the error above and run `azd provision` (WARDEN_EVENT_SUBSCRIPTIONS is already true).');
      return 1;
    }
  }

  const principal = env.WARDEN_IDENTITY_PRINCIPAL_ID ?? '<WARDEN_IDENTITY_PRINCIPAL_ID>';
  const script = WIN ? join(HERE, 'grant-graph-permissions.ps1') : join(HERE, 'grant-graph-permissions.sh');
  const args = WIN ? ['-PrincipalId', principal, '-Policy', 'policy.json'] : ['--principal-id', principal, '--policy', 'policy.json'];
  if (env.WARDEN_GRANT_GRAPH_MAIL === 'true') args.push(WIN ? '-Mail' : '--mail');
  if (env.WARDEN_GRANT_GRAPH_PERMISSIONS === 'true') {
    console.log('postdeploy: granting Warden\'s Microsoft Graph application permissions…');
    const code = WIN ? run('pwsh', ['-NoProfile', '-File', script, ...args]) : run('bash', [script, ...args]);
    if (code !== 0) return code;
  } else {
    console.log('');
    console.log('Next: grant Warden\'s identity its Microsoft Graph application permissions (once; needs a Privileged Role Administrator):');
    console.log(`  ${WIN ? 'pwsh ' : ''}${script.replace(process.cwd() + (WIN ? '\\' : '/'), '')} ${args.join(' ')}`);
  }
  console.log('');
  console.log(`Warden: ${env.WARDEN_URL ?? '(see WARDEN_URL)'}/api/health`);
  console.log('Check the audit trail before switching the policy to "mode": "enforce" (docs/operations.md).');
  return 0;
}

process.exitCode = main();
