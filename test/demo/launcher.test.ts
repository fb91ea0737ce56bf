/**
 * `npm run demo -- --report` as a user runs it: through `scripts/demo.mjs` (certificate, proxies,
 * NODE_EXTRA_CA_CERTS, a child Node process), exit code 0, the report on stdout, and no process left
 * behind (Azurite included). The child gets its own temporary folder, so its Azurite is recognisable.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** Command lines of the processes running now that mention `text`. */
function processesMentioning(text: string): string[] {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(text));
}

describe('scripts/demo.mjs', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'warden-demo-launcher-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('plays the story in report mode, exits 0 and leaves no process behind', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, NO_COLOR: '1' };
    // The launcher must work without them, as on a fresh machine.
    delete env.NODE_EXTRA_CA_CERTS;
    delete env.WARDEN_EMULATOR_TLS_CERT;
    delete env.WARDEN_EMULATOR_TLS_KEY;
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'demo.mjs'), '--report', '--latency', '0'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));

    expect({ code, tail: code === 0 ? '' : `${stdout.slice(-3000)}\n${stderr.slice(-3000)}` }).toEqual({ code: 0, tail: '' });
    expect(stdout).toContain('report mode');
    expect(stdout).toContain('Writes to Azure: ARM 0, Key Vault 0, Graph 0');
    expect(stdout).toContain('Warden reacted to every event of the story');
    expect(processesMentioning(tmp)).toEqual([]);
  }, 60_000);
});
