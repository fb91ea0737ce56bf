import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SettingsError } from '../../shared/errors';
import { CLOUDS, isLoopbackUrl, loadSettings, SETTING_DOCS } from '../../shared/settings';

const minimal = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };

function issues(env: Record<string, string>): Array<{ path: string; message: string }> {
  try {
    loadSettings(env, '/app');
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return [...(e as SettingsError).issues];
  }
  throw new Error('expected the settings to be rejected');
}

describe('settings', () => {
  it('parses every SPEC §3 setting with its default', () => {
    const s = loadSettings(minimal, '/app');
    expect(s.storage).toEqual({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' });
    expect(s.policySource).toEqual({ kind: 'file', path: '/app/policy.json' });
    expect(s.cloud).toBe('public');
    expect(s.endpoints.arm).toBe('https://management.azure.com');
    expect(s.endpoints.graph).toBe('https://graph.microsoft.com');
    expect(s.endpoints.authority).toBe('https://login.microsoftonline.com');
    expect(s.credential).toBe('default');
    expect(s.publicUrl).toBeUndefined();
    expect(s.clientState).toBeUndefined();
    expect(s.sweepSchedule).toBe('0 0 */6 * * *');
    expect(s.concurrency).toBe(8);
    expect(s.remediationRole).toBeUndefined();
    expect(s.appServiceAuthEnabled).toBe(false);
    expect(s.managedIdentityClientId).toBeUndefined();
    expect(s.lroPollMs).toBeUndefined();
    expect(s.logLevel).toBe('info');
    expect(s.retryDelayMs).toBeUndefined();
    expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.endpoints)).toBe(true);
  });

  it('reads every setting when given', () => {
    const s = loadSettings(
      {
        ...minimal,
        WARDEN_POLICY: '{"scopes":[]}',
        WARDEN_CLOUD: 'usgov',
        WARDEN_ARM_ENDPOINT: 'https://arm.example.net/',
        WARDEN_GRAPH_ENDPOINT: 'https://graph.example.net',
        WARDEN_CREDENTIAL: 'default',
        AZURE_CLIENT_ID: 'uami-client-id',
        WARDEN_PUBLIC_URL: 'https://warden.azurewebsites.net/',
        WARDEN_CLIENT_STATE: 'state-secret-value',
        WARDEN_SWEEP_SCHEDULE: '0 30 1 * * *',
        WARDEN_CONCURRENCY: '16',
        WARDEN_REMEDIATION_ROLE: 'Warden.Remediate',
        WEBSITE_AUTH_ENABLED: 'true',
        WARDEN_LRO_POLL_MS: '50',
        WARDEN_RETRY_DELAY_MS: '20',
      },
      '/app',
    );
    expect(s.policySource).toEqual({ kind: 'inline', json: '{"scopes":[]}' });
    expect(s.cloud).toBe('usgov');
    expect(s.endpoints).toEqual({ ...CLOUDS.usgov, arm: 'https://arm.example.net', graph: 'https://graph.example.net' });
    expect(s.managedIdentityClientId).toBe('uami-client-id');
    expect(s.publicUrl).toBe('https://warden.azurewebsites.net');
    expect(s.clientState).toBe('state-secret-value');
    expect(s.sweepSchedule).toBe('0 30 1 * * *');
    expect(s.concurrency).toBe(16);
    expect(s.remediationRole).toBe('Warden.Remediate');
    expect(s.appServiceAuthEnabled).toBe(true);
    expect(s.lroPollMs).toBe(50);
    expect(s.retryDelayMs).toBe(20);
  });

  it('accepts identity-based storage as the Functions host does', () => {
    const byName = loadSettings({ AzureWebJobsStorage__accountName: 'stwarden', AzureWebJobsStorage__credential: 'managedidentity', AZURE_CLIENT_ID: 'uami' });
    expect(byName.storage).toEqual({ kind: 'identity', queueServiceUri: 'https://stwarden.queue.core.windows.net', tableServiceUri: 'https://stwarden.table.core.windows.net', clientId: 'uami' });
    const china = loadSettings({ AzureWebJobsStorage__accountName: 'st', WARDEN_CLOUD: 'china' });
    expect(china.storage).toMatchObject({ queueServiceUri: 'https://st.queue.core.chinacloudapi.cn' });
    const byUri = loadSettings({
      AzureWebJobsStorage__queueServiceUri: 'https://q.example',
      AzureWebJobsStorage__tableServiceUri: 'https://t.example',
      AzureWebJobsStorage__clientId: 'storage-uami',
    });
    expect(byUri.storage).toEqual({ kind: 'identity', queueServiceUri: 'https://q.example', tableServiceUri: 'https://t.example', clientId: 'storage-uami' });
    expect(issues({ AzureWebJobsStorage__queueServiceUri: 'https://q.example' }).map((i) => i.path)).toEqual(['AzureWebJobsStorage__tableServiceUri']);
    expect(issues({ AzureWebJobsStorage__accountName: 'st', AzureWebJobsStorage__credential: 'key' }).map((i) => i.path)).toEqual(['AzureWebJobsStorage__credential']);
  });

  it.each([
    ['china', CLOUDS.china.arm],
    ['usgov', CLOUDS.usgov.arm],
    ['PUBLIC', CLOUDS.public.arm],
  ])('sets the endpoints of the %s cloud', (cloud, arm) => {
    expect(loadSettings({ ...minimal, WARDEN_CLOUD: cloud }).endpoints.arm).toBe(arm);
  });

  it('resolves a relative WARDEN_POLICY_FILE against the app root and keeps an absolute one', () => {
    expect(loadSettings({ ...minimal, WARDEN_POLICY_FILE: 'conf/p.json' }, '/app').policySource).toEqual({ kind: 'file', path: '/app/conf/p.json' });
    expect(loadSettings({ ...minimal, WARDEN_POLICY_FILE: '/etc/p.json' }, '/app').policySource).toEqual({ kind: 'file', path: '/etc/p.json' });
  });

  it('reports every bad or missing key at once, by name', () => {
    const found = issues({
      WARDEN_CLOUD: 'mars',
      WARDEN_CREDENTIAL: 'password',
      WARDEN_CONCURRENCY: 'lots',
      WARDEN_SWEEP_SCHEDULE: '*/5 * * * *',
      WARDEN_PUBLIC_URL: 'https://warden.example.net',
      WEBSITE_AUTH_ENABLED: 'maybe',
    });
    expect(found.map((i) => i.path).sort()).toEqual(
      ['AzureWebJobsStorage', 'WARDEN_CLIENT_STATE', 'WARDEN_CLOUD', 'WARDEN_CONCURRENCY', 'WARDEN_CREDENTIAL', 'WARDEN_SWEEP_SCHEDULE', 'WEBSITE_AUTH_ENABLED'].sort(),
    );
  });

  it.each([
    [{ WARDEN_ARM_ENDPOINT: 'not a url' }, 'WARDEN_ARM_ENDPOINT', /absolute URL/],
    [{ WARDEN_ARM_ENDPOINT: 'http://127.0.0.1:8443' }, 'WARDEN_ARM_ENDPOINT', /https/],
    [{ WARDEN_GRAPH_ENDPOINT: 'https://graph.microsoft.com/v1.0' }, 'WARDEN_GRAPH_ENDPOINT', /without a version/],
    [{ WARDEN_CONCURRENCY: '0' }, 'WARDEN_CONCURRENCY', /1 to 64/],
    [{ WARDEN_CONCURRENCY: '2.5' }, 'WARDEN_CONCURRENCY', /whole number/],
    [{ WARDEN_SWEEP_SCHEDULE: '0 0 99 * * *' }, 'WARDEN_SWEEP_SCHEDULE', /not a valid NCRONTAB/],
    [{ WARDEN_PUBLIC_URL: 'http://warden.example.net', WARDEN_CLIENT_STATE: 'abcdefgh' }, 'WARDEN_PUBLIC_URL', /https/],
    [{ WARDEN_CLIENT_STATE: 'x'.repeat(129) }, 'WARDEN_CLIENT_STATE', /128/],
    [{ WARDEN_LOG_LEVEL: 'verbose' }, 'WARDEN_LOG_LEVEL', /debug, info, warn or error/],
    [{ WARDEN_LRO_POLL_MS: '5' }, 'WARDEN_LRO_POLL_MS', /10 to 60000/],
    [{ WARDEN_RETRY_DELAY_MS: 'soon' }, 'WARDEN_RETRY_DELAY_MS', /whole number of milliseconds/],
  ])('refuses %j, naming %s', (env, key, message) => {
    const found = issues({ ...minimal, ...(env as Record<string, string>) });
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe(key);
    expect(found[0]?.message).toMatch(message);
  });

  it('never echoes the client state in an error', () => {
    const secret = `s3cret-${'y'.repeat(130)}`;
    try {
      loadSettings({ ...minimal, WARDEN_CLIENT_STATE: secret });
      throw new Error('not rejected');
    } catch (e) {
      expect((e as Error).message).not.toContain(secret);
    }
  });

  describe('the emulator credential', () => {
    it('is accepted when every endpoint is a loopback address', () => {
      const s = loadSettings({
        ...minimal,
        WARDEN_CREDENTIAL: 'emulator',
        WARDEN_ARM_ENDPOINT: 'https://127.0.0.1:8443',
        WARDEN_GRAPH_ENDPOINT: 'https://localhost:9443',
        WARDEN_PUBLIC_URL: 'http://127.0.0.1:7071',
        WARDEN_CLIENT_STATE: 'state-for-tests',
      });
      expect(s.credential).toBe('emulator');
      expect(s.publicUrl).toBe('http://127.0.0.1:7071');
    });

    it('refuses a public endpoint', () => {
      const found = issues({ ...minimal, WARDEN_CREDENTIAL: 'emulator', WARDEN_ARM_ENDPOINT: 'https://127.0.0.1:8443' });
      expect(found).toEqual([{ path: 'WARDEN_GRAPH_ENDPOINT', message: expect.stringMatching(/only for loopback endpoints; https:\/\/graph.microsoft.com/) }]);
      const found2 = issues({ ...minimal, WARDEN_CREDENTIAL: 'emulator' });
      expect(found2.map((i) => i.path).sort()).toEqual(['WARDEN_ARM_ENDPOINT', 'WARDEN_GRAPH_ENDPOINT']);
    });
  });

  it('recognises loopback URLs and nothing else', () => {
    expect(isLoopbackUrl('https://127.0.0.1:1')).toBe(true);
    expect(isLoopbackUrl('https://127.8.9.10')).toBe(true);
    expect(isLoopbackUrl('https://localhost')).toBe(true);
    expect(isLoopbackUrl('https://[::1]:443')).toBe(true);
    expect(isLoopbackUrl('https://127.0.0.1.evil.example')).toBe(false);
    expect(isLoopbackUrl('https://10.0.0.1')).toBe(false);
    expect(isLoopbackUrl('https://management.azure.com')).toBe(false);
    expect(isLoopbackUrl('nonsense')).toBe(false);
  });

  it('documents every setting it reads', () => {
    const documented = new Set(SETTING_DOCS.map((d) => d.name));
    const src = readFileSync(join(__dirname, '..', '..', 'shared', 'settings.ts'), 'utf8');
    const read = new Set([...src.matchAll(/get\('([A-Za-z_]+)'\)|env\.([A-Z_]+)|optionalMs\('([A-Z_]+)'/g)].map((m) => m[1] ?? m[2] ?? m[3]));
    expect(read.size).toBeGreaterThan(12);
    for (const k of read) expect(documented).toContain(k);
  });
});
