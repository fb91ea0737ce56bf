/**
 * The demo's story: what happens in a tenant, played through the emulator's control API the way Azure
 * would tell Warden about it (a Graph change notification, an ARM `ResourceWriteSuccess` event, Key
 * Vault's `SecretNearExpiry`, the sweep timer), and what Warden's reaction looks like in the emulator's
 * state once it has happened. The story never calls Warden directly: only the host's triggers do.
 */
import type { Emulator } from '../emulator';
import type { Host } from '../host/host';
import { APPS, GROUPS, ROTATED_SECRET, RG_VISION, USERS, VAULT, workspaceId } from './tenant';

export const ROLES = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  dataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
} as const;

const DAY_MS = 24 * 3600 * 1000;

export const WS = {
  vision: workspaceId(RG_VISION, 'mlw-vision'),
  research: workspaceId(RG_VISION, 'mlw-vision-research'),
} as const;
export const COMPUTES = {
  trainCluster: `${WS.vision}/computes/train-cluster`,
  hedyInstance: `${WS.vision}/computes/ci-hedy`,
  linusInstance: `${WS.vision}/computes/ci-linus`,
} as const;
/** Everyone the vision binding reaches: direct members, the contractors group's member, the pipeline's service principal (the disabled account is left out). */
export const VISION_PRINCIPALS = [USERS.ada, USERS.grace, USERS.linus, '22222222-2222-4222-8222-000000000002'] as const;

export interface StoryContext {
  emu: Emulator;
  host: Host;
  /** Values a step keeps between acting and judging (the Owner assignment's name, a compute as created…). */
  memo: Map<string, unknown>;
}

/** A change the reaction consists of, as Warden plans it (report mode checks these were planned). */
export interface ExpectedChange {
  capability: 'rbac' | 'workspaces' | 'compute' | 'credentials';
  action: string;
  /** The change's resource (case-insensitive). */
  resource: string;
  /** An id the change's data must mention. */
  mentions?: string;
}

export interface StoryStep {
  id: 'start' | 'join' | 'workspace' | 'cluster' | 'instance' | 'owner' | 'secret' | 'leave';
  title: string;
  /** How Warden hears about it. */
  via: string;
  /** Warden hears through one of its timers (run by the story), not through a push. */
  timer?: boolean;
  /** Runs before the step's clock starts (time passing, remembering the state before). */
  prepare?(ctx: StoryContext): void;
  act(ctx: StoryContext): Promise<void>;
  /** The reaction as the emulator's state shows it (one line for people), or undefined while it has not happened. */
  reaction(ctx: StoryContext): string | undefined;
  /** What `reaction` means in report mode: these changes must be planned (and `reaction` must stay undefined). */
  planned: ExpectedChange[];
  /** Report mode: the step's reaction is not a change (the Graph subscription), so it happens there too. */
  alsoInReport?: boolean;
}

function roleOf(roleDefinitionId: string): string {
  return roleDefinitionId.split('/').pop()?.toLowerCase() ?? '';
}

/** Whether `principalId` holds `role` exactly at `scope`, optionally only through an assignment Warden made. */
export function holds(emu: Emulator, scope: string, principalId: string, role: string, opts: { wardenMade?: boolean } = {}): boolean {
  return emu.arm
    .roleAssignments({ scope, principalId })
    .some((a) => roleOf(a.roleDefinitionId) === role && (!opts.wardenMade || (a.description ?? '').startsWith('warden:')));
}

function computeState(emu: Emulator, id: string): string | undefined {
  const state = emu.arm.getCompute(id)?.properties.properties.state;
  return typeof state === 'string' ? state : undefined;
}

function wardenPasswords(emu: Emulator): string[] {
  return (emu.graph.getApplication(APPS.nlpInference)?.passwordCredentials ?? [])
    .filter((p) => (p.displayName ?? '').startsWith('warden:'))
    .map((p) => p.keyId);
}

/** The parts of a cluster Warden must keep when it assigns the identity. */
function clusterShape(emu: Emulator, id: string): string {
  const c = emu.arm.getCompute(id);
  if (!c) return '';
  const { vmSize, scaleSettings, remoteLoginPortPublicAccess } = c.properties.properties;
  return JSON.stringify({ vmSize, scaleSettings, remoteLoginPortPublicAccess, disableLocalAuth: c.properties.disableLocalAuth, tags: c.tags ?? {}, location: c.location });
}

export const STORY: readonly StoryStep[] = [
  {
    id: 'start',
    title: 'Warden starts: subscribes to Graph group changes, then runs its first sweep',
    via: 'timers: graphSubscriptions (hourly), then sweep (every 6 hours)',
    timer: true,
    alsoInReport: true,
    async act({ host }) {
      const sub = await host.invoke('graphSubscriptions');
      if (!sub.ok) throw new Error(`The graphSubscriptions timer failed: ${JSON.stringify(sub)}`);
      const sweep = await host.invoke('sweep');
      if (!sweep.ok) throw new Error(`The sweep timer failed: ${JSON.stringify(sweep)}`);
    },
    reaction({ emu, host }) {
      const sub = emu.graph.subscriptions().find((s) => s.resource === '/groups' && s.notificationUrl.startsWith(host.url));
      return sub ? `Graph now notifies ${new URL(sub.notificationUrl).pathname} of every group change (subscription ${sub.id.slice(0, 8)}…)` : undefined;
    },
    planned: [],
  },
  {
    id: 'join',
    title: 'Hedy Lamarr, a data scientist, joins ML Vision Team',
    via: 'Graph change notification',
    async act({ emu }) {
      emu.graph.addMember(GROUPS.vision, USERS.hedy);
    },
    reaction({ emu }) {
      return holds(emu, WS.vision, USERS.hedy, ROLES.dataScientist)
        ? "Hedy holds 'AzureML Data Scientist' on mlw-vision"
        : undefined;
    },
    planned: [{ capability: 'rbac', action: 'createRoleAssignment', resource: WS.vision, mentions: USERS.hedy }],
  },
  {
    id: 'workspace',
    title: 'A new workspace appears: mlw-vision-research (team=vision)',
    via: 'ARM ResourceWriteSuccess event',
    async act({ emu }) {
      emu.arm.createWorkspace(
        RG_VISION,
        {
          name: 'mlw-vision-research',
          friendlyName: 'Vision research',
          tags: { team: 'vision', env: 'research' },
          containerRegistry: 'crmlvision',
          datastores: [{ name: 'workspaceblobstore', credentialsType: 'AccountKey', isDefault: true }],
        },
        { callerObjectId: USERS.grace },
      );
    },
    reaction({ emu }) {
      const people = [...VISION_PRINCIPALS, USERS.hedy].filter((p) => holds(emu, WS.research, p, ROLES.dataScientist));
      const readers = holds(emu, WS.research, GROUPS.platform, ROLES.reader);
      return people.length === VISION_PRINCIPALS.length + 1 && readers
        ? `mlw-vision-research has its ${people.length + 1} role assignments: Data Scientist for the vision team's ${people.length} members, Reader for ML Platform Admins`
        : undefined;
    },
    planned: [
      { capability: 'rbac', action: 'createRoleAssignment', resource: WS.research, mentions: USERS.hedy },
      { capability: 'rbac', action: 'createRoleAssignment', resource: WS.research, mentions: GROUPS.platform },
    ],
  },
  {
    id: 'cluster',
    title: 'Grace creates compute cluster train-cluster without a managed identity',
    via: 'ARM ResourceWriteSuccess event',
    async act({ emu, memo }) {
      emu.arm.createCompute(
        WS.vision,
        {
          name: 'train-cluster',
          computeType: 'AmlCompute',
          vmSize: 'STANDARD_NC6S_V3',
          disableLocalAuth: true,
          remoteLoginPortPublicAccess: 'Disabled',
          scaleSettings: { maxNodeCount: 4, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT300S' },
          tags: { project: 'defect-detection' },
        },
        { callerObjectId: USERS.grace },
      );
      memo.set('clusterShape', clusterShape(emu, COMPUTES.trainCluster));
    },
    reaction({ emu, memo }) {
      const c = emu.arm.getCompute(COMPUTES.trainCluster);
      const identity = c?.identity;
      if (!identity?.type.includes('SystemAssigned') || !identity.principalId) return undefined;
      if (clusterShape(emu, COMPUTES.trainCluster) !== memo.get('clusterShape')) return undefined;
      return `train-cluster runs as its system-assigned identity (${identity.principalId.slice(0, 8)}…); size, scale settings and tags unchanged`;
    },
    planned: [{ capability: 'compute', action: 'assignIdentity', resource: COMPUTES.trainCluster }],
  },
  {
    id: 'instance',
    title: 'Hedy creates compute instance ci-hedy with SSH and local auth enabled',
    via: 'ARM ResourceWriteSuccess event',
    async act({ emu }) {
      emu.arm.createCompute(
        WS.vision,
        {
          name: 'ci-hedy',
          computeType: 'ComputeInstance',
          vmSize: 'STANDARD_DS11_V2',
          assignedUser: USERS.hedy,
          identity: { type: 'SystemAssigned' },
          disableLocalAuth: false,
          sshPublicAccess: 'Enabled',
        },
        { callerObjectId: USERS.hedy },
      );
    },
    reaction({ emu }) {
      return computeState(emu, COMPUTES.hedyInstance) === 'Stopped' ? 'ci-hedy is stopped (SSH and local auth are fixed at creation: it must be recreated)' : undefined;
    },
    planned: [{ capability: 'compute', action: 'stopCompute', resource: COMPUTES.hedyInstance }],
  },
  {
    id: 'owner',
    title: "Later that day, someone grants Alan Turing 'Owner' on mlw-vision by hand",
    via: 'timer: the 6-hourly sweep (a role-assignment write is no Azure ML resource event)',
    timer: true,
    prepare({ emu }) {
      emu.clock.advance(6 * 3600 * 1000);
    },
    async act({ emu, host, memo }) {
      const a = emu.arm.addRoleAssignment({ scope: WS.vision, roleName: 'Owner', principalId: USERS.alan, principalType: 'User', description: 'temporary, to debug a deployment' });
      memo.set('ownerAssignment', a.name);
      const sweep = await host.invoke('sweep');
      if (!sweep.ok) throw new Error(`The sweep timer failed: ${JSON.stringify(sweep)}`);
    },
    reaction({ emu, memo }) {
      const name = memo.get('ownerAssignment');
      const still = emu.arm.roleAssignments({ scope: WS.vision, principalId: USERS.alan }).some((a) => a.name === name);
      const alerted = emu.eventgrid.received().some((r) => r.event.type === 'Warden.Rbac.ForbiddenAssignment' && String(r.event.subject).toLowerCase() === WS.vision.toLowerCase());
      return !still && alerted ? "Alan's Owner assignment is gone, and the platform team was alerted" : undefined;
    },
    planned: [{ capability: 'rbac', action: 'deleteRoleAssignment', resource: WS.vision, mentions: USERS.alan }],
  },
  {
    id: 'secret',
    title: "A week later, nlp-inference's client secret is 28 days from expiry",
    via: 'Key Vault SecretNearExpiry event',
    prepare({ emu, memo }) {
      emu.clock.advance(7 * DAY_MS);
      memo.set('versions', emu.keyvault.versions(VAULT, ROTATED_SECRET).length);
      memo.set('passwords', wardenPasswords(emu).length);
    },
    async act({ emu }) {
      const events = emu.keyvault.checkExpiry();
      if (!events.some((e) => e.eventType === 'Microsoft.KeyVault.SecretNearExpiry')) throw new Error('Key Vault raised no SecretNearExpiry event');
    },
    reaction({ emu, memo }) {
      const versions = emu.keyvault.versions(VAULT, ROTATED_SECRET);
      const latest = versions[versions.length - 1];
      const fresh = wardenPasswords(emu);
      const keyId = latest?.tags?.keyId;
      if (versions.length <= Number(memo.get('versions')) || fresh.length <= Number(memo.get('passwords')) || !keyId || !fresh.includes(keyId)) return undefined;
      return `nlp-inference has a new client secret (${keyId.slice(0, 8)}…), stored as a new version of ${ROTATED_SECRET}; the old one stays for the 7-day overlap`;
    },
    planned: [{ capability: 'credentials', action: 'rotateSecret', resource: APPS.nlpInference }],
  },
  {
    id: 'leave',
    title: "Linus's contract ends: he is removed from Vision Contractors (nested in ML Vision Team)",
    via: 'Graph change notification',
    async act({ emu }) {
      emu.graph.removeMember(GROUPS.contractors, USERS.linus);
    },
    reaction({ emu }) {
      const access = [WS.vision, WS.research].some((ws) => holds(emu, ws, USERS.linus, ROLES.dataScientist, { wardenMade: true }));
      return !access && computeState(emu, COMPUTES.linusInstance) === 'Stopped'
        ? "Linus's role assignments on mlw-vision and mlw-vision-research are gone, and his compute instance ci-linus is stopped"
        : undefined;
    },
    planned: [{ capability: 'rbac', action: 'stopComputeInstance', resource: COMPUTES.linusInstance, mentions: USERS.linus }],
  },
];
