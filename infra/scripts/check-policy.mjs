#!/usr/bin/env node
// Checks the policy against what infra/ can deploy, before anything is deployed (the preprovision
// hook runs it; so can you: `node infra/scripts/check-policy.mjs [policy.json] [--json]`).
// Plain Node, no dependencies: it runs before `npm ci`. The app validates the policy fully at start
// (policy.schema.json); this checks only what the infrastructure depends on:
// - every scope is a subscription or a resource group (Warden's role assignments and Event Grid
//   topics are made per scope);
// - every binding's role is in infra/bindable-roles.json (the ABAC condition refuses any other), and
//   every forbidden rule with action "remove" names a bindable or removable role;
// - every vault the policy rotates secrets into is in WARDEN_ROTATION_VAULT_IDS (Warden gets Key Vault
//   Secrets Officer and the Key Vault event feed only there);
// - every `%NAME%` placeholder is an app setting the deployment sets, and is set.
// Exit code 1 and one line per problem when something is wrong; warnings do not fail.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SCOPE = /^\/subscriptions\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\/resourceGroups\/[-\w.()]{1,90})?$/i;

/**
 * App settings the policy may refer to as `%NAME%`, each set by infra/modules/functionapp.bicep when
 * the azd environment says so. test/infra checks that each is an app setting of the Bicep.
 */
export const PLACEHOLDER_SETTINGS = {
  WARDEN_ALERT_WEBHOOK: {
    isSet: (env) => nonEmpty(env.WARDEN_ALERT_WEBHOOK_URL),
    how: 'azd env set WARDEN_ALERT_WEBHOOK_URL <url> (stored in Warden\'s Key Vault)',
  },
  WARDEN_ALERT_TOPIC: {
    isSet: (env) => env.WARDEN_CREATE_ALERT_TOPIC === 'true' || nonEmpty(env.WARDEN_ALERT_TOPIC_ID),
    how: 'azd env set WARDEN_CREATE_ALERT_TOPIC true, or azd env set WARDEN_ALERT_TOPIC_ID <topic resource id>',
  },
};

function nonEmpty(v) {
  return typeof v === 'string' && v.trim() !== '';
}

export function loadBindableRoles(file = join(HERE, '..', 'bindable-roles.json')) {
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  return { bindable: raw.bindable, removable: raw.removable };
}

/** The vault name of `https://<name>.vault.azure.net[/]`, lower case, or undefined. */
export function vaultNameOfUrl(url) {
  try {
    return new URL(url).hostname.split('.')[0].toLowerCase();
  } catch {
    return undefined;
  }
}

function roleMatches(ref, role) {
  const r = String(ref).trim().toLowerCase();
  return r === role.id.toLowerCase() || r === role.name.toLowerCase();
}

function placeholders(value, path, out) {
  if (typeof value === 'string') {
    for (const m of value.matchAll(/%([A-Za-z_][A-Za-z0-9_]*)%/g)) out.push({ name: m[1], path });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => placeholders(v, `${path}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) placeholders(v, path ? `${path}.${k}` : k, out);
  }
  return out;
}

/**
 * @param {unknown} policy parsed policy.json
 * @param {{ roles?: {bindable: Array<{name:string,id:string}>, removable: Array<{name:string,id:string}>}, env?: Record<string,string|undefined> }} options
 * @returns {{ errors: string[], warnings: string[], notes: string[] }}
 */
export function checkPolicy(policy, options = {}) {
  const roles = options.roles ?? loadBindableRoles();
  const env = options.env ?? {};
  const errors = [];
  const warnings = [];
  const notes = [];
  if (!policy || typeof policy !== 'object' || Array.isArray(policy)) {
    return { errors: ['the policy must be a JSON object'], warnings, notes };
  }

  const scopes = Array.isArray(policy.scopes) ? policy.scopes : [];
  if (scopes.length === 0) errors.push('scopes: at least one subscription or resource group is required');
  scopes.forEach((s, i) => {
    if (typeof s !== 'string' || !SCOPE.test(s)) {
      errors.push(`scopes[${i}]: "${s}" must be /subscriptions/<id> or /subscriptions/<id>/resourceGroups/<name> (no trailing slash): infra/ grants Warden access per scope`);
    }
  });

  const mode = policy.mode ?? 'enforce';
  notes.push(mode === 'report' ? 'mode "report": Warden plans, records and alerts, and changes nothing' : `mode "${mode}": Warden changes Azure and Graph to match the policy`);

  const bindings = Array.isArray(policy.rbac?.bindings) ? policy.rbac.bindings : [];
  bindings.forEach((b, i) => {
    const role = b?.role;
    if (typeof role !== 'string') return;
    if (!roles.bindable.some((r) => roleMatches(role, r))) {
      errors.push(`rbac.bindings[${i}] ("${b.id ?? '?'}"): role "${role}" is not in infra/bindable-roles.json, so Warden's ABAC condition would refuse it; add its name and GUID to "bindable" (then provision again)`);
    }
  });
  const forbidden = Array.isArray(policy.rbac?.forbidden) ? policy.rbac.forbidden : [];
  forbidden.forEach((f, i) => {
    if (f?.action !== 'remove' || typeof f.role !== 'string') return;
    if (![...roles.bindable, ...roles.removable].some((r) => roleMatches(f.role, r))) {
      errors.push(`rbac.forbidden[${i}]: Warden may not delete assignments of "${f.role}"; add its name and GUID to "removable" in infra/bindable-roles.json`);
    }
  });

  const vaultIds = String(env.WARDEN_ROTATION_VAULT_IDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const vaultNames = new Map();
  for (const id of vaultIds) {
    const parts = id.split('/');
    if (parts.length !== 9 || parts[1].toLowerCase() !== 'subscriptions' || parts[6].toLowerCase() !== 'microsoft.keyvault' || parts[7].toLowerCase() !== 'vaults') {
      errors.push(`WARDEN_ROTATION_VAULT_IDS: "${id}" is not a Key Vault resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>)`);
    } else vaultNames.set(parts[8].toLowerCase(), id);
  }
  const rotate = Array.isArray(policy.credentials?.rotate) ? policy.credentials.rotate : [];
  const used = new Set();
  rotate.forEach((r, i) => {
    const name = vaultNameOfUrl(r?.vaultUrl);
    if (!name) return;
    used.add(name);
    if (!vaultNames.has(name)) {
      errors.push(`credentials.rotate[${i}]: vault "${name}" is not in WARDEN_ROTATION_VAULT_IDS, so Warden could not store the rotated secret there; azd env set WARDEN_ROTATION_VAULT_IDS "<resource id>[,<resource id>…]"`);
    }
  });
  for (const name of vaultNames.keys()) {
    if (!used.has(name)) warnings.push(`WARDEN_ROTATION_VAULT_IDS: vault "${name}" is not used by credentials.rotate; Warden gets Key Vault Secrets Officer there anyway`);
  }

  for (const p of placeholders(policy, '', [])) {
    const known = PLACEHOLDER_SETTINGS[p.name];
    if (!known) {
      errors.push(`${p.path}: %${p.name}% is not an app setting the deployment sets (known: ${Object.keys(PLACEHOLDER_SETTINGS).join(', ')}); the app would refuse to start`);
    } else if (!known.isSet(env)) {
      errors.push(`${p.path}: %${p.name}% would be empty and the app would refuse to start; ${known.how}`);
    }
  }

  const topic = policy.alerts?.eventGridTopic;
  if (typeof topic === 'string' && !topic.includes('%') && !nonEmpty(env.WARDEN_ALERT_TOPIC_ID)) {
    warnings.push('alerts.eventGridTopic is a fixed URL: Warden needs EventGrid Data Sender on that topic; azd env set WARDEN_ALERT_TOPIC_ID <topic resource id> (or use "%WARDEN_ALERT_TOPIC%")');
  }
  if (policy.alerts?.mail) {
    notes.push('alerts.mail is used: grant Mail.Send (infra/scripts/grant-graph-permissions.sh --mail)');
  }
  if (rotate.length > 0) {
    notes.push(`credentials.rotate names ${rotate.length} app(s): Warden's identity must own each (grant-graph-permissions.sh --policy policy.json)`);
  }
  return { errors, warnings, notes };
}

function main(argv) {
  const json = argv.includes('--json');
  const file = resolve(argv.find((a) => !a.startsWith('--')) ?? 'policy.json');
  if (!existsSync(file)) {
    const msg = `${file} does not exist. Warden deploys with the policy in policy.json at the repository root: cp policy.example.json policy.json, edit it (start with "mode": "report"), then run azd up again.`;
    if (json) process.stdout.write(`${JSON.stringify({ errors: [msg], warnings: [], notes: [] })}\n`);
    else process.stderr.write(`${msg}\n`);
    return 1;
  }
  let policy;
  try {
    policy = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const msg = `${file} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
    if (json) process.stdout.write(`${JSON.stringify({ errors: [msg], warnings: [], notes: [] })}\n`);
    else process.stderr.write(`${msg}\n`);
    return 1;
  }
  const result = checkPolicy(policy, { env: process.env });
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    for (const n of result.notes) process.stdout.write(`policy: ${n}\n`);
    for (const w of result.warnings) process.stdout.write(`policy warning: ${w}\n`);
    for (const e of result.errors) process.stderr.write(`policy error: ${e}\n`);
    if (result.errors.length === 0) process.stdout.write(`policy: ${file} is deployable\n`);
  }
  return result.errors.length > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
