/**
 * `report` mode writes nothing, whatever triggers it. The tenant gives every capability something it
 * would change in `enforce` mode — role assignments to create, a forbidden one and a stale Warden-made
 * one to remove, an offboarded user's compute instance and a non-compliant one to stop, a cluster
 * without identity, a secret to rotate and an expired one to remove — and the app is driven by every
 * trigger (sweep, resource events, Graph notifications, Key Vault events, remediate over HTTP without
 * `dryRun`). The emulator's request record then shows no write to ARM or Key Vault and no Graph write
 * but the alert mail, while the audit trail holds every change as `planned` and the alerts went out.
 */
import { randomUUID } from 'node:crypto';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { auditTrail, deliveredAlerts, IDS, launchApp, VAULT, waitFor, workspaceId, type ResilienceApp } from './helpers';

let azurite: Azurite;
let app: ResilienceApp | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
}, 30_000);

afterAll(async () => {
  await app?.stop();
  await azurite?.stop();
});

describe('report mode', () => {
  it('plans, audits and alerts every capability’s changes and writes nothing, whatever the trigger', async () => {
    const a = await launchApp({
      azurite,
      policy: (emu) => ({
        mode: 'report',
        scopes: [`/subscriptions/${IDS.subscription}`],
        rbac: {
          bindings: [{ id: 'team-a', group: IDS.team, role: 'AzureML Data Scientist', match: { tags: { team: 'a' } }, principals: 'members' }],
          forbidden: [{ role: 'Owner', principalTypes: ['User'], action: 'remove' }],
        },
        compute: { onViolation: { cluster: 'assign-identity', instance: 'stop' } },
        credentials: { rotate: [{ appId: IDS.rotatedApp.appId, vaultUrl: emu.vaultUrl(VAULT), secretName: 'rotated-api-secret' }], removeExpired: true },
        alerts: { eventGridTopic: emu.urls.eventGridTopic, webhookUrl: '%WARDEN_ALERT_WEBHOOK%', mail: { from: 'owner@contoso.example', to: ['ops@contoso.example'] } },
      }),
      env: { WARDEN_HOST_FUNCTION_KEY: 'report-key' },
    });
    app = a;
    const ws = workspaceId();
    // A hand-made Owner for a user (forbidden, "remove"), and a Warden-made assignment nobody wants any more.
    a.emu.arm.addRoleAssignment({ scope: ws, roleName: 'Owner', principalId: IDS.grace, principalType: 'User' });
    a.emu.arm.addRoleAssignment({ scope: ws, roleName: 'AzureML Data Scientist', principalId: IDS.owner, principalType: 'User', name: randomUUID(), description: 'warden:team-a' });
    // The owner (no longer in any binding) has a compute instance; another one runs without an identity.
    a.emu.arm.createCompute(ws, { name: 'ci-owner', computeType: 'ComputeInstance', assignedUser: IDS.owner, identity: { type: 'SystemAssigned' } });
    a.emu.arm.createCompute(ws, { name: 'ci-grace', computeType: 'ComputeInstance', assignedUser: IDS.grace });
    // An expired password (removeExpired).
    a.emu.graph.expirePasswordSoon(IDS.warnedApp.appId, IDS.warnedKey, new Date(Date.now() - 86_400_000));

    const mark = a.emu.record.mark();
    expect((await a.host.invoke('graphSubscriptions')).ok).toBe(true);
    await a.sweep(60_000);
    // Every other trigger too.
    a.emu.graph.addUser({ id: IDS.newcomer, displayName: 'Newcomer', userPrincipalName: 'newcomer@contoso.example' });
    a.emu.graph.addMember(IDS.team, IDS.newcomer);
    a.emu.arm.emitWriteEvent(ws);
    a.emu.arm.emitWriteEvent(`${ws}/computes/cluster-res`);
    a.emu.keyvault.setSecret(VAULT, 'rotated-api-secret', 'report-mode-placeholder', { expiresOn: new Date(Date.now() + 3 * 86_400_000), tags: { appId: IDS.rotatedApp.appId, managedBy: 'warden' } });
    a.emu.keyvault.emitSecretEvent(VAULT, 'rotated-api-secret', 'SecretNearExpiry');
    for (const capability of ['rbac', 'compute', 'credentials', 'workspaces']) {
      const res = await fetch(`${a.url}/api/remediate`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-functions-key': 'report-key' }, body: JSON.stringify({ capability }) });
      expect(res.status).toBe(202);
    }
    const one = await fetch(`${a.url}/api/remediate`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-functions-key': 'report-key' }, body: JSON.stringify({ capability: 'rbac', target: ws }) });
    expect(one.status).toBe(200);
    expect(((await one.json()) as { dryRun: boolean }).dryRun).toBe(true);
    await a.settle(60_000, { visibleOnly: true });

    // Nothing written to Azure, Key Vault or Graph; the only Graph writes are the alert mails and
    // Warden's own change-notification subscription (its input, not a governed resource).
    const writes = a.emu.record.writes().filter((r) => r.seq > mark && ['arm', 'graph', 'keyvault'].includes(r.service));
    const governed = writes.filter((r) => !['graph.sendMail', 'graph.subscriptions.create'].includes(r.operation));
    expect(governed.map((r) => `${r.method} ${r.operation} ${r.path}`)).toEqual([]);

    // Yet every capability planned what enforce mode would do, and the trail says so.
    const trail = await auditTrail();
    const planned = new Set(trail.filter((r) => r.outcome === 'planned').map((r) => `${r.capability} ${r.action}`));
    for (const expected of [
      'rbac createRoleAssignment',
      'rbac deleteRoleAssignment',
      'rbac stopComputeInstance',
      'compute assignIdentity',
      'compute stopCompute',
      'credentials rotateSecret',
      'credentials removePassword',
    ]) {
      expect(planned).toContain(expected);
    }
    // The forbidden Owner and the stale Warden-made assignment, both planned for removal.
    const deletes = trail.filter((r) => r.outcome === 'planned' && r.action === 'deleteRoleAssignment').map((r) => r.summary);
    expect(deletes.some((d) => d.includes("'Owner'"))).toBe(true);
    expect(deletes.some((d) => d.includes(IDS.owner))).toBe(true);
    expect((await auditTrail()).filter((r) => r.outcome === 'applied')).toEqual([]);
    // Findings were alerted, as in enforce mode.
    await waitFor('alerts', () => deliveredAlerts(a.emu).eventGrid.length >= 4, 10_000);
    expect(deliveredAlerts(a.emu).eventGrid.map((x) => x.split(' ')[0])).toEqual(
      expect.arrayContaining(['Warden.Compute.IdentityMissing', 'Warden.Workspaces.RegistryAdminUserEnabled', 'Warden.Rbac.ForbiddenAssignment']),
    );
  }, 120_000);
});
