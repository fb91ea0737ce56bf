/**
 * No secret leaks. A full scenario on the whole app — Graph subscription with its clientState, a
 * rotation whose first Key Vault write fails (so a new password is made, compensated and made again),
 * Graph notifications and lifecycle events, Key Vault events, alert sinks failing and recovering,
 * failing health checks and a failing remediation, and every HTTP route — then a scanner reads every
 * captured log line, alert (Event Grid, webhook, mail), audit record, HTTP answer and what Warden keeps
 * in storage, looking for any secret value: the client state, every secret text that existed (seeded,
 * rotated, compensated), the webhook URL and its signature, the function key, the bearer token.
 */
import { TableServiceClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { randomBytes } from 'node:crypto';
import { startAzurite, type Azurite } from '../helpers/azurite';
import {
  auditTrail,
  CLIENT_STATE,
  deliveredAlerts,
  findSecrets,
  IDS,
  launchApp,
  SECRET_NAME,
  SEEDED_SECRETS,
  VAULT,
  waitFor,
  workspaceId,
  type ResilienceApp,
} from './helpers';

const FUNCTION_KEY = `fk-${randomBytes(12).toString('hex')}`;
const WEBHOOK_SIG = `sig${randomBytes(16).toString('hex')}`;
const EMULATOR_TOKEN = 'warden-emulator-token';

let azurite: Azurite;
let app: ResilienceApp | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);

afterAll(async () => {
  await app?.stop();
  await azurite?.stop();
});

/** Every secret text any of the apps' passwords held, sampled while the scenario runs. */
function collectSecretTexts(a: ResilienceApp): { stop(): void; values: Set<string> } {
  const values = new Set<string>();
  const sample = (): void => {
    for (const appId of [IDS.rotatedApp.appId, IDS.warnedApp.appId]) {
      for (const p of a.emu.graph.getApplication(appId)?.passwordCredentials ?? []) {
        const text = a.emu.graph.secretText(appId, p.keyId);
        if (text) values.add(text);
      }
    }
    for (const v of a.emu.keyvault.versions(VAULT, SECRET_NAME)) values.add(v.value);
  };
  const timer = setInterval(sample, 5);
  return {
    values,
    stop() {
      clearInterval(timer);
      sample();
    },
  };
}

async function storageText(connectionString: string): Promise<string> {
  const out: string[] = [];
  const tables = TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true });
  for await (const t of tables.listTables()) {
    if (!t.name) continue;
    const { TableClient } = await import('@azure/data-tables');
    const client = TableClient.fromConnectionString(connectionString, t.name, { allowInsecureConnection: true });
    for await (const e of client.listEntities()) out.push(JSON.stringify(e));
  }
  for (const name of ['warden-work', 'warden-work-poison']) {
    const q = new QueueClient(connectionString, name);
    const peeked = await q.peekMessages({ numberOfMessages: 32 }).catch(() => ({ peekedMessageItems: [] }));
    for (const m of peeked.peekedMessageItems) out.push(m.messageText, Buffer.from(m.messageText, 'base64').toString('utf8'));
  }
  return out.join('\n');
}

describe('secrets across a full scenario', () => {
  it('no secret value appears in any log line, alert, audit record, HTTP answer or stored state', async () => {
    let webhookUrl = '';
    // The policy names %WARDEN_ALERT_WEBHOOK%; give it a signed URL as a Teams workflow has.
    const b = await launchApp({
      azurite,
      env: (emu) => {
        webhookUrl = `${emu.urls.webhook}/alerts?sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${WEBHOOK_SIG}`;
        return { WARDEN_HOST_FUNCTION_KEY: FUNCTION_KEY, WARDEN_ALERT_WEBHOOK: webhookUrl };
      },
    });
    app = b;
    const collector = collectSecretTexts(b);
    const responses: string[] = [];
    const call = async (path: string, init: RequestInit = {}): Promise<Response> => {
      const res = await fetch(`${b.url}${path}`, { ...init, headers: { 'x-functions-key': FUNCTION_KEY, ...(init.headers ?? {}) } });
      const text = await res.clone().text();
      responses.push(`${init.method ?? 'GET'} ${path} -> ${res.status} ${JSON.stringify(Object.fromEntries(res.headers))}\n${text}`);
      return res;
    };

    // The Graph subscription (validation handshake; the clientState goes to Graph).
    expect((await b.host.invoke('graphSubscriptions')).ok).toBe(true);
    // The first rotation's Key Vault writes fail: the new password is removed again, then rotated anew.
    b.emu.keyvault.failNextWrites(VAULT, 12, 500);
    // The webhook refuses twice; the topic throttles once.
    b.emu.webhook.failNext('alerts', 2, 500);
    b.emu.faults.add({ operation: 'eventgrid.topic.publish', status: 429, retryAfterSeconds: 1, times: 1 });
    await b.sweep(90_000);
    await waitFor('the rotation to succeed', () => b.emu.keyvault.versions(VAULT, SECRET_NAME).length === 1, 30_000);

    // Graph: a member joins (notification carrying the clientState), a forged notification, a lifecycle event.
    b.emu.graph.addUser({ id: IDS.newcomer, displayName: 'Newcomer', userPrincipalName: 'newcomer@contoso.example' });
    b.emu.graph.addMember(IDS.team, IDS.newcomer);
    const forged = { value: [{ subscriptionId: 'forged', clientState: `${CLIENT_STATE}-guess`, changeType: 'updated', resource: `Groups/${IDS.team}`, resourceData: { id: IDS.team } }] };
    await call('/api/graph/notifications', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) });
    const sub = b.emu.graph.subscriptions()[0];
    expect(sub).toBeDefined();
    b.emu.graph.sendLifecycle(sub?.id ?? '', 'reauthorizationRequired');
    // Key Vault: the rotated secret "near expiry".
    b.emu.keyvault.emitSecretEvent(VAULT, SECRET_NAME, 'SecretNearExpiry');
    await b.settle(60_000);

    // Every route, including failing ones.
    await call('/api/health');
    await call('/api/plan?capability=all');
    await call(`/api/plan?capability=credentials&target=${IDS.rotatedApp.appId}`);
    await call('/api/remediate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'all', dryRun: true }) });
    await call('/api/remediate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'credentials', target: IDS.rotatedApp.appId }) });
    await call('/api/audit?limit=1000');
    await call('/api/health/deep');
    const broken = b.emu.faults.add({ service: 'graph', status: 500 });
    const armDown = b.emu.faults.add({ operation: 'arm.workspaces.get', status: 500 });
    await call('/api/health/deep');
    const failed = await call('/api/remediate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'workspaces', target: workspaceId() }) });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    b.emu.faults.remove(broken);
    b.emu.faults.remove(armDown);
    await call('/api/plan', { headers: { 'x-functions-key': 'wrong-key' } });
    await b.settle(30_000);
    collector.stop();

    // The scenario did what it should: the secrets exist, so finding none of them means something.
    const rotated = [...collector.values].filter((v) => !SEEDED_SECRETS.includes(v));
    expect(rotated.length).toBeGreaterThanOrEqual(2);
    expect(b.emu.webhook.received('alerts').length).toBeGreaterThan(0);
    expect(b.emu.graph.outbox().length).toBeGreaterThan(0);
    expect(deliveredAlerts(b.emu).eventGrid.map((x) => x.split(' ')[0])).toContain('Warden.Credentials.Rotated');
    expect(b.allLogs()).toMatch(/Key Vault did not take the new secret/);

    const secrets: Record<string, string> = {
      clientState: CLIENT_STATE,
      functionKey: FUNCTION_KEY,
      webhookUrl,
      webhookSignature: WEBHOOK_SIG,
      bearerToken: EMULATOR_TOKEN,
      ...Object.fromEntries(SEEDED_SECRETS.map((s, i) => [`seededSecret${i}`, s])),
      ...Object.fromEntries(rotated.map((s, i) => [`rotatedSecret${i}`, s])),
    };
    const texts: Record<string, string> = {
      logs: b.allLogs(),
      'alerts/eventGrid': JSON.stringify(b.emu.eventgrid.received()),
      'alerts/webhook': JSON.stringify(b.emu.webhook.received()),
      'alerts/mail': JSON.stringify(b.emu.graph.outbox()),
      audit: JSON.stringify(await auditTrail()),
      'http responses': responses.join('\n'),
      storage: await storageText(azurite.connectionString),
    };
    // The scanner sees a secret when there is one.
    expect(findSecrets({ plain: `"clientState":"${CLIENT_STATE}"`, encoded: `x-state: ${Buffer.from(CLIENT_STATE).toString('base64')}` }, secrets)).toEqual([
      'plain: clientState',
      'encoded: clientState (base64)',
    ]);
    expect(findSecrets(texts, secrets)).toEqual([]);
  }, 180_000);
});
