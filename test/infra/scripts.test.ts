/**
 * The deployment scripts, run for real: the policy check, the azd hooks (against a fake `azd` that
 * records what it is asked to do) and the Graph permission grant (against a fake `az` that keeps a
 * tiny Graph state), so "idempotent, prints what it did" is checked, not assumed.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const SCRIPTS = join(ROOT, 'infra', 'scripts');
const PRINCIPAL = '99999999-8888-7777-6666-555555555555';
const VAULT_ID = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-sec/providers/Microsoft.KeyVault/vaults/kv-warden';
const GRAPH_SP = 'aaaaaaaa-0000-0000-0000-000000000001';
const PERMISSION_IDS: Record<string, string> = {
  'GroupMember.Read.All': '98830695-27a2-44f7-8c18-0c3ebc9698f6',
  'Group.Read.All': '5b567255-7703-4780-807c-7be8301ae99b',
  'User.Read.All': 'df021288-bdef-4463-88db-98f22de89214',
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30',
  'Application.ReadWrite.OwnedBy': '18a4783c-866b-4cc7-a460-3d5e5662c884',
  'Mail.Send': 'b633e1c5-b582-4048-a93e-9f11b44c7e96',
};

/** A fake `az` for exactly the calls grant-graph-permissions.sh makes; state in $FAKE_AZ_STATE. */
const FAKE_AZ = `#!/usr/bin/env node
const fs = require('fs');
const file = process.env.FAKE_AZ_STATE;
const state = JSON.parse(fs.readFileSync(file, 'utf8'));
const args = process.argv.slice(2);
state.calls.push(args.join(' '));
const opt = (n) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : undefined; };
const roles = ${JSON.stringify(PERMISSION_IDS)};
let out = '';
const save = () => fs.writeFileSync(file, JSON.stringify(state));
if (args[0] === 'cloud') out = 'https://graph.microsoft.com/';
else if (args[0] === 'ad' && args[1] === 'sp') {
  const q = opt('--query');
  if (q === 'id') out = '${GRAPH_SP}';
  else { const m = /value=='([^']+)'/.exec(q); out = (m && roles[m[1]]) || ''; }
} else if (args[0] === 'ad' && args[1] === 'app') out = 'obj-' + opt('--id');
else if (args[0] === 'rest') {
  const method = opt('--method'); const url = opt('--url');
  let m;
  if ((m = /servicePrincipals\\/([^/]+)\\/appRoleAssignments$/.exec(url))) {
    if (method === 'get') out = state.assignments.join('\\n');
    else { const b = JSON.parse(opt('--body')); if (b.principalId !== m[1] || b.resourceId !== '${GRAPH_SP}') { process.stderr.write('bad body'); process.exit(1); } state.assignments.push(b.appRoleId); }
  } else if ((m = /applications\\/([^/]+)\\/owners/.exec(url))) {
    const owners = state.owners[m[1]] || (state.owners[m[1]] = []);
    if (method === 'get') out = owners.join('\\n');
    else owners.push(JSON.parse(opt('--body'))['@odata.id'].split('/').pop());
  } else { process.stderr.write('unexpected url ' + url); process.exit(1); }
} else { process.stderr.write('unexpected az ' + args.join(' ')); process.exit(1); }
save();
if (out) process.stdout.write(out + '\\n');
`;

/** A fake `azd` that records its calls and keeps `env set` values in $FAKE_AZD_STATE. */
const FAKE_AZD = `#!/usr/bin/env node
const fs = require('fs');
const file = process.env.FAKE_AZD_STATE;
const state = JSON.parse(fs.readFileSync(file, 'utf8'));
const args = process.argv.slice(2);
state.calls.push(args[0] === 'env' && args[1] === 'set' ? 'env set ' + args[2] : args.join(' '));
if (args[0] === 'env' && args[1] === 'set') state.env[args[2]] = args[3];
fs.writeFileSync(file, JSON.stringify(state));
`;

let dir: string;
let bin: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-infra-'));
  bin = join(dir, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'az'), FAKE_AZ);
  writeFileSync(join(bin, 'azd'), FAKE_AZD);
  chmodSync(join(bin, 'az'), 0o755);
  chmodSync(join(bin, 'azd'), 0o755);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
  // Only what the scripts need: no azd environment values leak in from the machine running the tests.
  const env: Record<string, string> = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: dir, ...opts.env };
  return spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, env, encoding: 'utf8', timeout: 20_000 });
}

function freshAz(state: { assignments?: string[]; owners?: Record<string, string[]> } = {}): string {
  const file = join(dir, `az-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ assignments: state.assignments ?? [], owners: state.owners ?? {}, calls: [] }));
  return file;
}

function freshAzd(): string {
  const file = join(dir, `azd-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ env: {}, calls: [] }));
  return file;
}

const readState = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

function workspaceWith(policy: unknown): string {
  const ws = mkdtempSync(join(dir, 'repo-'));
  writeFileSync(join(ws, 'policy.json'), JSON.stringify(policy));
  return ws;
}

const example = (): Record<string, unknown> => JSON.parse(readFileSync(join(ROOT, 'policy.example.json'), 'utf8')) as Record<string, unknown>;

describe('check-policy.mjs', () => {
  const check = (policy: unknown, env: Record<string, string> = {}): { code: number | null; result: { errors: string[]; warnings: string[]; notes: string[] } } => {
    const ws = workspaceWith(policy);
    const r = run('node', [join(SCRIPTS, 'check-policy.mjs'), join(ws, 'policy.json'), '--json'], { env });
    return { code: r.status, result: JSON.parse(r.stdout) as { errors: string[]; warnings: string[]; notes: string[] } };
  };

  test('the example policy is deployable once its vault and webhook are configured', () => {
    const { code, result } = check(example(), { WARDEN_ROTATION_VAULT_IDS: VAULT_ID, WARDEN_ALERT_WEBHOOK_URL: 'https://hooks.example/x', WARDEN_CREATE_ALERT_TOPIC: 'true' });
    expect(result.errors).toEqual([]);
    expect(code).toBe(0);
    expect(result.notes.join('\n')).toMatch(/mode "report"/);
  });

  test('names every problem the infrastructure would trip over, and fails', () => {
    const p = example();
    p.scopes = ['/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws', '/subscriptions/x/'];
    (p.rbac as { bindings: Array<{ role: string }> }).bindings[0]!.role = 'Contributor';
    (p.rbac as { forbidden: Array<{ role: string; action: string }> }).forbidden.push({ role: 'Owner', action: 'remove' });
    (p.alerts as Record<string, unknown>).eventGridTopic = '%WARDEN_ALERT_TOPIC%';
    (p.alerts as Record<string, unknown>).webhookUrl = '%SOMETHING_ELSE%';
    const { code, result } = check(p);
    expect(code).toBe(1);
    const text = result.errors.join('\n');
    expect(result.errors).toHaveLength(7);
    expect(text).toMatch(/scopes\[0\].*must be \/subscriptions/);
    expect(text).toMatch(/scopes\[1\]/);
    expect(text).toMatch(/role "Contributor" is not in infra\/bindable-roles\.json/);
    expect(text).toMatch(/may not delete assignments of "Owner"/);
    expect(text).toMatch(/vault "kv-warden" is not in WARDEN_ROTATION_VAULT_IDS/);
    expect(text).toMatch(/%WARDEN_ALERT_TOPIC% would be empty.*WARDEN_CREATE_ALERT_TOPIC/);
    expect(text).toMatch(/%SOMETHING_ELSE% is not an app setting the deployment sets/);
  });

  test('a missing policy.json is a clear error', () => {
    const r = run('node', [join(SCRIPTS, 'check-policy.mjs'), join(dir, 'nope.json')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cp policy\.example\.json policy\.json/);
  });
});

describe('azd hooks', () => {
  const deployablePolicy = (): Record<string, unknown> => ({ ...example(), alerts: { repeatHours: 24 }, credentials: { warnDays: 30, rotate: [] } });

  test('preprovision generates the clientState once and never prints it', () => {
    const ws = workspaceWith(deployablePolicy());
    const state = freshAzd();
    const first = run('node', [join(SCRIPTS, 'preprovision.mjs')], { cwd: ws, env: { FAKE_AZD_STATE: state } });
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const value = readState<{ env: Record<string, string> }>(state).env.WARDEN_CLIENT_STATE ?? '';
    expect(value).toMatch(/^[0-9a-f]{64}$/);
    expect(first.stdout).not.toContain(value);

    const again = freshAzd();
    const second = run('node', [join(SCRIPTS, 'preprovision.mjs')], { cwd: ws, env: { FAKE_AZD_STATE: again, WARDEN_CLIENT_STATE: value } });
    expect(second.status).toBe(0);
    expect(readState<{ calls: string[] }>(again).calls).toEqual([]);
  });

  test('preprovision stops the deployment on a policy problem or a missing policy.json, before azd changes anything', () => {
    const bad = deployablePolicy();
    (bad.rbac as { bindings: Array<{ role: string }> }).bindings[0]!.role = 'Owner';
    const state = freshAzd();
    const r = run('node', [join(SCRIPTS, 'preprovision.mjs')], { cwd: workspaceWith(bad), env: { FAKE_AZD_STATE: state } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/role "Owner" is not in infra\/bindable-roles\.json/);
    expect(readState<{ calls: string[] }>(state).calls).toEqual([]);

    const empty = mkdtempSync(join(dir, 'empty-'));
    const missing = run('node', [join(SCRIPTS, 'preprovision.mjs')], { cwd: empty, env: { FAKE_AZD_STATE: state } });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/policy\.json is missing/);
  });

  test('postdeploy turns the Event Grid subscriptions on once, then only prints the next steps', () => {
    const state = freshAzd();
    const first = run('node', [join(SCRIPTS, 'postdeploy.mjs')], { env: { FAKE_AZD_STATE: state, WARDEN_IDENTITY_PRINCIPAL_ID: PRINCIPAL, WARDEN_URL: 'https://func-warden.azurewebsites.net' } });
    expect(first.status).toBe(0);
    const s = readState<{ env: Record<string, string>; calls: string[] }>(state);
    expect(s.calls).toEqual(['env set WARDEN_EVENT_SUBSCRIPTIONS', 'provision --no-prompt']);
    expect(s.env.WARDEN_EVENT_SUBSCRIPTIONS).toBe('true');
    expect(first.stdout).toContain(`grant-graph-permissions.sh --principal-id ${PRINCIPAL} --policy policy.json`);
    expect(first.stdout).toContain('https://func-warden.azurewebsites.net/api/health');

    const again = freshAzd();
    const second = run('node', [join(SCRIPTS, 'postdeploy.mjs')], { env: { FAKE_AZD_STATE: again, WARDEN_EVENT_SUBSCRIPTIONS: 'true', WARDEN_IDENTITY_PRINCIPAL_ID: PRINCIPAL } });
    expect(second.status).toBe(0);
    expect(readState<{ calls: string[] }>(again).calls).toEqual([]);
  });

  test('postdeploy runs the grant itself when asked to', () => {
    const ws = workspaceWith(example());
    copyFileSync(join(ROOT, 'policy.example.json'), join(ws, 'policy.json'));
    const az = freshAz();
    const r = run('node', [join(SCRIPTS, 'postdeploy.mjs')], {
      cwd: ws,
      env: { FAKE_AZD_STATE: freshAzd(), FAKE_AZ_STATE: az, WARDEN_EVENT_SUBSCRIPTIONS: 'true', WARDEN_IDENTITY_PRINCIPAL_ID: PRINCIPAL, WARDEN_GRANT_GRAPH_PERMISSIONS: 'true', WARDEN_GRANT_GRAPH_MAIL: 'true' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readState<{ assignments: string[] }>(az).assignments.sort()).toEqual(Object.values(PERMISSION_IDS).sort());
  });
});

describe('grant-graph-permissions.sh', () => {
  const grant = (az: string, ...args: string[]): SpawnSyncReturns<string> => run('bash', [join(SCRIPTS, 'grant-graph-permissions.sh'), '--principal-id', PRINCIPAL, ...args], { env: { FAKE_AZ_STATE: az } });

  test('grants what is missing, leaves what is granted, and says which is which', () => {
    const az = freshAz({ assignments: [PERMISSION_IDS['GroupMember.Read.All'] as string] });
    const first = grant(az);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('already granted: GroupMember.Read.All');
    for (const p of ['User.Read.All', 'Application.ReadWrite.OwnedBy', 'Group.Read.All', 'Application.Read.All']) expect(first.stdout).toContain(`granted: ${p}`);
    expect(first.stdout).not.toContain('Mail.Send');
    const after = readState<{ assignments: string[] }>(az).assignments;
    expect(after).toHaveLength(5);

    const second = grant(az);
    expect(second.status).toBe(0);
    expect(second.stdout.split('\n').filter((l) => l.startsWith('granted:'))).toEqual([]);
    expect(readState<{ assignments: string[]; calls: string[] }>(az).calls.filter((c) => c.includes('--method post'))).toHaveLength(4);
  });

  test('--mail adds Mail.Send; --owned-apps-only and --no-change-notifications leave out the tenant-wide reads', () => {
    const az = freshAz();
    const r = grant(az, '--mail', '--owned-apps-only', '--no-change-notifications');
    expect(r.status).toBe(0);
    const granted = readState<{ assignments: string[] }>(az).assignments.sort();
    expect(granted).toEqual(['GroupMember.Read.All', 'User.Read.All', 'Application.ReadWrite.OwnedBy', 'Mail.Send'].map((p) => PERMISSION_IDS[p]).sort());
  });

  test('makes Warden an owner of the apps the policy rotates, once', () => {
    const az = freshAz({ owners: { 'obj-55555555-5555-5555-5555-555555555555': [PRINCIPAL] } });
    const r = grant(az, '--policy', join(ROOT, 'policy.example.json'), '--owner-of', '55555555-5555-5555-5555-555555555555');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('added owner: app 44444444-4444-4444-4444-444444444444');
    expect(r.stdout).toContain('already an owner: app 55555555-5555-5555-5555-555555555555');
    expect(readState<{ owners: Record<string, string[]> }>(az).owners['obj-44444444-4444-4444-4444-444444444444']).toEqual([PRINCIPAL]);
  });

  test('--dry-run changes nothing; a missing principal id is refused', () => {
    const az = freshAz();
    const r = grant(az, '--dry-run', '--mail');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('would grant: Mail.Send');
    expect(readState<{ assignments: string[] }>(az).assignments).toEqual([]);

    const none = run('bash', [join(SCRIPTS, 'grant-graph-permissions.sh')], { env: { FAKE_AZ_STATE: freshAz() } });
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/--principal-id/);
  });
});
