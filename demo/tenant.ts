/**
 * The demo's tenant: the emulator's demo tenant (`emulator/tenants/demo.json`: teams, workspaces,
 * computes, apps, a vault) plus the few things the story needs that a fresh tenant would not have:
 * - Hedy Lamarr, a data scientist who is not in any team yet (she joins one in the story);
 * - a compute instance that the contractor Linus works on (stopped when he leaves);
 * - a mailbox Warden sends its alert mail from;
 * - nlp-inference's client secret as Warden stored it in Key Vault at its last rotation (tagged with
 *   the password's key id), 35 days from expiry, so the story can let a week pass and Key Vault raise
 *   `SecretNearExpiry` when Warden's rotation is due.
 */
import { readFileSync } from 'node:fs';
import { DEMO_TENANT_PATH, type TenantFile } from '../emulator';

export const SUBSCRIPTION_ID = '8f2c6d1a-4b3e-4c5d-9e7f-0a1b2c3d4e5f';
export const GROUPS = {
  vision: '44444444-4444-4444-8444-000000000001',
  nlp: '44444444-4444-4444-8444-000000000002',
  contractors: '44444444-4444-4444-8444-000000000003',
  platform: '44444444-4444-4444-8444-000000000004',
} as const;
export const USERS = {
  ada: '11111111-1111-4111-8111-000000000001',
  grace: '11111111-1111-4111-8111-000000000002',
  alan: '11111111-1111-4111-8111-000000000003',
  linus: '11111111-1111-4111-8111-000000000007',
  hedy: '11111111-1111-4111-8111-000000000008',
  wardenMailbox: '11111111-1111-4111-8111-000000000009',
} as const;
export const APPS = {
  nlpInference: '33333333-3333-4333-8333-000000000003',
  /** Its current client secret: the one Key Vault holds. */
  nlpInferenceCurrentKeyId: '66666666-6666-4666-8666-000000000032',
} as const;
export const VAULT = 'kv-warden';
export const ROTATED_SECRET = 'nlp-inference-client-secret';
export const RG_VISION = 'rg-ml-vision';
export const ML = 'Microsoft.MachineLearningServices/workspaces';

export function workspaceId(resourceGroup: string, name: string): string {
  return `/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${resourceGroup}/providers/${ML}/${name}`;
}

/** The parts of the tenant file this module edits (the emulator validates the whole file). */
interface TenantJson {
  directory: {
    users: Array<Record<string, unknown>>;
    applications: Array<{ appId: string; passwordCredentials?: Array<Record<string, unknown> & { keyId: string }> }>;
  };
  resources: {
    subscriptions: Array<{
      resourceGroups: Array<{ name: string; workspaces?: Array<{ name: string; computes?: Array<Record<string, unknown>> }> }>;
    }>;
  };
  vaults: Array<{ name: string; secrets: Array<Record<string, unknown> & { name: string }> }>;
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`The emulator's demo tenant has no ${what}; demo/tenant.ts needs updating`);
  return value;
}

/** The demo tenant as a tenant object (relative times like `now+35d` are resolved when the emulator loads it). */
export function demoTenant(): TenantFile {
  const t = JSON.parse(readFileSync(DEMO_TENANT_PATH, 'utf8')) as TenantJson & TenantFile;

  t.directory.users.push(
    { id: USERS.hedy, displayName: 'Hedy Lamarr', userPrincipalName: 'hedy@contoso.example', mail: 'hedy@contoso.example' },
    { id: USERS.wardenMailbox, displayName: 'Warden notifications', userPrincipalName: 'warden@contoso.example', mail: 'warden@contoso.example' },
  );

  const rg = required(t.resources.subscriptions[0]?.resourceGroups.find((g) => g.name === RG_VISION), `resource group ${RG_VISION}`);
  const ws = required(rg.workspaces?.find((w) => w.name === 'mlw-vision'), 'workspace mlw-vision');
  (ws.computes ??= []).push({
    name: 'ci-linus',
    computeType: 'ComputeInstance',
    vmSize: 'STANDARD_DS11_V2',
    assignedUser: USERS.linus,
    identity: { type: 'SystemAssigned' },
    disableLocalAuth: true,
    sshPublicAccess: 'Disabled',
  });

  const app = required(t.directory.applications.find((a) => a.appId === APPS.nlpInference), 'app nlp-inference');
  const current = required(app.passwordCredentials?.find((p) => p.keyId === APPS.nlpInferenceCurrentKeyId), 'nlp-inference current secret');
  current.endDateTime = 'now+35d';

  const vault = required(t.vaults.find((v) => v.name === VAULT), `vault ${VAULT}`);
  const secret = required(vault.secrets.find((s) => s.name === ROTATED_SECRET), `secret ${ROTATED_SECRET}`);
  secret.expiresOn = 'now+35d';
  secret.contentType = 'application/vnd.warden.entra-client-secret';
  secret.tags = { appId: APPS.nlpInference, keyId: APPS.nlpInferenceCurrentKeyId, managedBy: 'warden' };
  return t;
}

/** `3 workspaces, 6 computes, 4 groups, 9 people, 3 app registrations, 1 Key Vault`, counted from the tenant. */
export function describeTenant(tenant: TenantFile): string {
  const t = tenant as Partial<TenantJson> & { directory?: { groups?: unknown[] } };
  const groups = t.resources?.subscriptions.flatMap((s) => s.resourceGroups) ?? [];
  const workspaces = groups.flatMap((g) => g.workspaces ?? []);
  const computes = workspaces.flatMap((w) => w.computes ?? []);
  const n = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`;
  return [
    n(workspaces.length, 'workspace', 'workspaces'),
    n(computes.length, 'compute', 'computes'),
    n(t.directory?.groups?.length ?? 0, 'group', 'groups'),
    n(t.directory?.users.length ?? 0, 'person', 'people'),
    n(t.directory?.applications.length ?? 0, 'app registration', 'app registrations'),
    n(t.vaults?.length ?? 0, 'Key Vault', 'Key Vaults'),
  ].join(', ');
}
