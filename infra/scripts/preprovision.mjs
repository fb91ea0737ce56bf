#!/usr/bin/env node
// azd `preprovision` hook (azure.yaml). Runs from the repository root with the azd environment's
// values in process.env. It:
// 1. checks policy.json against what infra/ deploys (check-policy.mjs) and stops the deployment on a
//    problem, before anything changes in Azure;
// 2. generates the Graph clientState once per azd environment (WARDEN_CLIENT_STATE, 64 hex
//    characters) and keeps it in the environment, so re-provisioning never changes it by accident.
//    The value is never printed. Rotating it is deliberate: docs/operations.md.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkPolicy } from './check-policy.mjs';

const AZD = process.env.WARDEN_AZD_BIN || 'azd';

function azdEnvSet(key, value) {
  const r = spawnSync(AZD, ['env', 'set', key, value], { stdio: ['ignore', 'ignore', 'inherit'], shell: process.platform === 'win32' });
  if (r.status !== 0) throw new Error(`azd env set ${key} failed (exit ${r.status ?? r.error?.message})`);
}

function main() {
  const file = resolve('policy.json');
  if (!existsSync(file)) {
    console.error('preprovision: policy.json is missing. Warden deploys with the policy in policy.json at the repository root:');
    console.error('  cp policy.example.json policy.json   # then edit it; keep "mode": "report" for the first deployment');
    return 1;
  }
  let policy;
  try {
    policy = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`preprovision: policy.json is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const result = checkPolicy(policy, { env: process.env });
  for (const n of result.notes) console.log(`policy: ${n}`);
  for (const w of result.warnings) console.log(`policy warning: ${w}`);
  for (const e of result.errors) console.error(`policy error: ${e}`);
  if (result.errors.length > 0) {
    console.error('preprovision: fix the policy or the azd environment, then run azd up again. Nothing was deployed.');
    return 1;
  }

  if (!process.env.WARDEN_CLIENT_STATE) {
    azdEnvSet('WARDEN_CLIENT_STATE', randomBytes(32).toString('hex'));
    console.log('preprovision: generated the Graph clientState (WARDEN_CLIENT_STATE) for this environment');
  }
  return 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`preprovision: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
