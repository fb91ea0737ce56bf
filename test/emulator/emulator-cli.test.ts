/**
 * `npm run emulator` (emulator/cli.ts) in a child process: prints its endpoints and the env lines
 * for Warden, serves them, and exits cleanly on SIGTERM. Plus the benchmark tenant generator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTenant } from '../../emulator/generate';
import { loadTenant, TenantFileError } from '../../emulator/tenant';
import { withEmulator, machineLearningClient } from '../helpers/emulator';

const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

function startCli(args: string[]): { child: ChildProcess; output: () => string; waitFor: (re: RegExp, ms?: number) => Promise<string>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [TSX, join(ROOT, 'emulator', 'cli.ts'), ...args], { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exit,
    waitFor: async (re, ms = 30_000) => {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`CLI did not print ${String(re)}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out;
    },
  };
}

describe('npm run emulator', () => {
  it('prints every endpoint and the env for Warden, serves them, and stops on SIGTERM', async () => {
    const cli = startCli([]);
    try {
      const out = await cli.waitFor(/Ctrl\+C stops it/);
      const env = Object.fromEntries([...out.matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
      expect(env).toMatchObject({ WARDEN_CREDENTIAL: 'emulator' });
      for (const k of ['WARDEN_ARM_ENDPOINT', 'WARDEN_GRAPH_ENDPOINT', 'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'NODE_EXTRA_CA_CERTS', 'WARDEN_EMULATOR_CONTROL']) {
        expect(env[k]).toBeTruthy();
      }
      expect(env.NODE_EXTRA_CA_CERTS).toMatch(/emulator\.crt$/);
      expect(out).toMatch(/Key Vault kv-warden\s+https:\/\/127\.0\.0\.1:\d+/);
      const res = await fetch(`${env.WARDEN_ARM_ENDPOINT}/subscriptions/8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f?api-version=2022-12-01`, { headers: { Authorization: 'Bearer t' } });
      expect(res.status).toBe(200);
      const state = await fetch(`${env.WARDEN_EMULATOR_CONTROL}/_emulator/state`);
      expect(((await state.json()) as { tenantId: string }).tenantId).toBe('b3a5c8e1-7d4f-4a2b-9c6e-1f0d2e3a4b5c');
      cli.child.kill('SIGTERM');
      expect(await cli.exit).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('starts from --tenant with --json output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tenant-'));
    const file = join(dir, 'tenant.json');
    writeFileSync(file, JSON.stringify(generateTenant({ workspaces: 3, groups: 1, membersPerGroup: 5, apps: 1 })));
    const cli = startCli(['--tenant', file, '--json']);
    try {
      const out = await cli.waitFor(/^\{.*\}\s*$/m);
      const line = out.split('\n').find((l) => l.startsWith('{')) ?? '{}';
      const info = JSON.parse(line) as { urls: { arm: string }; env: Record<string, string>; vaults: Record<string, string> };
      expect(info.env.WARDEN_ARM_ENDPOINT).toBe(info.urls.arm);
      expect(Object.keys(info.vaults)).toEqual(['kv-bench']);
      cli.child.kill('SIGINT');
      expect(await cli.exit).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid tenant file with a message naming the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-tenant-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ directory: {} }));
    const cli = startCli(['--tenant', file]);
    try {
      expect(await cli.exit).toBe(1);
      expect(cli.output()).toMatch(/Invalid tenant file[\s\S]*tenantId/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('generateTenant', () => {
  it('describes 100,000-member groups compactly and the emulator serves them', async () => {
    const generated = generateTenant({ workspaces: 60, groups: 3, membersPerGroup: 100_000, nestedDepth: 2, apps: 20, seed: 'cli-test' });
    expect(JSON.stringify(generated).length).toBeLessThan(200_000);
    const emu = await withEmulator({ tenant: generated });
    try {
      const group = generated.index.groupIds[0] ?? '';
      // 100,000 generated + 2 explicit users + 2 nested groups with 10 members each
      expect(emu.graph.transitiveMemberIds(group)).toHaveLength(100_000 + 2 + 2 + 20);
      const ml = machineLearningClient(emu, emu.subscriptionId);
      const names: string[] = [];
      for await (const w of ml.workspaces.listBySubscription()) names.push(w.name ?? '');
      expect(names).toHaveLength(60);
      expect(generated.index.workspaceIds).toHaveLength(60);
      const ws = await ml.workspaces.get('rg-ml-1', 'mlw-30');
      expect(ws.tags).toEqual({ team: 'team-0' });
      expect(emu.graph.listApplications()).toHaveLength(20);
    } finally {
      await emu.stop();
    }
  });
});

describe('tenant files', () => {
  it('turns now±N<unit> under time keys into times relative to loading, leaving Dates and other strings alone', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const expires = new Date('2031-01-01T00:00:00Z');
    const t = loadTenant(
      {
        tenantId: 't',
        vaults: [{ name: 'kv-x', secrets: [{ name: 's', value: 'now', expiresOn: expires }, { name: 't', value: 'v', expiresOn: 'now+1w' }] }],
        directory: { apps: [{ endDateTime: 'now+10d', startDateTime: 'now-12h', displayName: 'now+1d' }] },
      },
      ROOT,
      now,
    );
    expect(t.directory).toEqual({ apps: [{ endDateTime: '2030-01-11T00:00:00.000Z', startDateTime: '2029-12-31T12:00:00.000Z', displayName: 'now+1d' }] });
    const secrets = (t.vaults as Array<{ secrets: Array<{ value: string; expiresOn: unknown }> }>)[0]?.secrets;
    expect(secrets?.[0]).toMatchObject({ value: 'now', expiresOn: expires });
    expect(secrets?.[1]?.expiresOn).toBe('2030-01-08T00:00:00.000Z');
  });

  it('names the file and the problem when it is invalid', () => {
    expect(() => loadTenant(join(ROOT, 'no-such-tenant.json'))).toThrow(TenantFileError);
    expect(() => loadTenant({ tenantId: '' })).toThrow(/tenantId/);
  });
});
