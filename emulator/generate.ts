/**
 * Generates large tenants for benchmarks. Group members are described as id ranges
 * (`generatedMembers`), which the Graph service expands lazily, so a 100,000-member group costs a
 * few bytes. Every id is derived from `seed`, so the same options give the same tenant.
 */
import { createHash } from 'node:crypto';
import type { TenantFile } from './tenant';

export interface GenerateTenantOptions {
  /** Azure ML workspaces, spread over resource groups and teams. */
  workspaces: number;
  /** Team groups; workspace `i` is tagged `team=team-(i % groups)`. */
  groups: number;
  /** Generated (lazy) user members of each team group. */
  membersPerGroup: number;
  /** A chain of this many nested groups inside each team group (default 0). */
  nestedDepth?: number;
  /** Generated members of each nested group (default 10). */
  membersPerNestedGroup?: number;
  /** App registrations with password credentials, some expiring soon. */
  apps: number;
  /** Computes per workspace, alternating cluster without identity / cluster with identity / instance (default 2). */
  computesPerWorkspace?: number;
  /** Workspaces per resource group (default 25). */
  workspacesPerResourceGroup?: number;
  /** Explicit (stored) users also put in each team group (default 2). */
  explicitMembersPerGroup?: number;
  /** Every `securityEnabledEvery`-th group is security-enabled (default 2: half of them). */
  securityEnabledEvery?: number;
  tenantId?: string;
  subscriptionId?: string;
  location?: string;
  /** Changes every generated id. */
  seed?: string;
  /** Base time for credential dates (default now). */
  nowMs?: number;
}

/** A tenant file (pass it to `startEmulator({ tenant })`) plus the generated ids, for benchmarks to aim at. */
export type GeneratedTenant = TenantFile & {
  index: { groupIds: string[]; workspaceIds: string[]; appIds: string[] };
};

function guid(seed: string, what: string): string {
  const h = createHash('sha1').update(`${seed}|${what}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The first 24 characters of a GUID for a generated member range (members are `prefix + 12 hex digits`). */
function rangePrefix(seed: string, what: string): string {
  return `${guid(seed, what).slice(0, 23)}-`;
}

export function generateTenant(opts: GenerateTenantOptions): GeneratedTenant {
  const seed = opts.seed ?? 'warden-bench';
  const tenantId = opts.tenantId ?? guid(seed, 'tenant');
  const subscriptionId = opts.subscriptionId ?? guid(seed, 'subscription');
  const location = opts.location ?? 'westeurope';
  const nowMs = opts.nowMs ?? Date.now();
  const nestedDepth = opts.nestedDepth ?? 0;
  const perRg = Math.max(1, opts.workspacesPerResourceGroup ?? 25);
  const computesPer = opts.computesPerWorkspace ?? 2;
  const explicitPer = opts.explicitMembersPerGroup ?? 2;
  const securityEvery = Math.max(1, opts.securityEnabledEvery ?? 2);
  const day = 86_400_000;

  const users: Array<Record<string, unknown>> = [];
  const groups: Array<Record<string, unknown>> = [];
  const groupIds: string[] = [];
  for (let g = 0; g < opts.groups; g++) {
    const id = guid(seed, `group-${g}`);
    groupIds.push(id);
    const members: string[] = [];
    for (let u = 0; u < explicitPer; u++) {
      const uid = guid(seed, `group-${g}-user-${u}`);
      users.push({
        id: uid,
        displayName: `Team ${g} user ${u}`,
        userPrincipalName: `t${g}u${u}@bench.example`,
        mail: `t${g}u${u}@bench.example`,
        // one disabled account per group keeps the "disabled members are skipped" path busy
        accountEnabled: u !== 1,
      });
      members.push(uid);
    }
    let parent: string[] = members;
    for (let d = 0; d < nestedDepth; d++) {
      const nid = guid(seed, `group-${g}-nested-${d}`);
      parent.push(nid);
      const nestedMembers: string[] = [];
      groups.push({
        id: nid,
        displayName: `Team ${g} nested ${d}`,
        securityEnabled: true,
        members: nestedMembers,
        generatedMembers: {
          idPrefix: rangePrefix(seed, `group-${g}-nested-${d}-range`),
          count: opts.membersPerNestedGroup ?? 10,
          displayNamePrefix: `Team ${g} nested ${d} member`,
          upnPrefix: `t${g}n${d}m`,
          domain: 'bench.example',
        },
      });
      parent = nestedMembers;
    }
    groups.push({
      id,
      displayName: `team-${g}`,
      description: `Benchmark team ${g}`,
      securityEnabled: g % securityEvery === 0,
      mailEnabled: g % securityEvery !== 0,
      members,
      generatedMembers: {
        idPrefix: rangePrefix(seed, `group-${g}-range`),
        count: opts.membersPerGroup,
        displayNamePrefix: `Team ${g} member`,
        upnPrefix: `t${g}m`,
        domain: 'bench.example',
      },
    });
  }

  const applications: Array<Record<string, unknown>> = [];
  const servicePrincipals: Array<Record<string, unknown>> = [];
  const appIds: string[] = [];
  for (let a = 0; a < opts.apps; a++) {
    const appId = guid(seed, `app-${a}`);
    appIds.push(appId);
    // spread expiries from 10 days ago to a year ahead, so some are expired, some expiring, most fine
    const endOffsetDays = ((a * 37) % 375) - 10;
    applications.push({
      id: guid(seed, `app-object-${a}`),
      appId,
      displayName: `bench-app-${a}`,
      owners: users.length > 0 ? [String(users[a % users.length]?.id)] : [],
      passwordCredentials: [
        {
          keyId: guid(seed, `app-${a}-secret-0`),
          displayName: 'generated',
          startDateTime: new Date(nowMs - 300 * day).toISOString(),
          endDateTime: new Date(nowMs + endOffsetDays * day).toISOString(),
          hint: 'gen',
        },
      ],
    });
    servicePrincipals.push({ id: guid(seed, `sp-${a}`), appId, displayName: `bench-app-${a}` });
  }

  const workspaceIds: string[] = [];
  const resourceGroups: Array<Record<string, unknown>> = [];
  for (let w = 0; w < opts.workspaces; w++) {
    const rgIndex = Math.floor(w / perRg);
    let rg = resourceGroups[rgIndex];
    if (!rg) {
      rg = { name: `rg-ml-${rgIndex}`, location, workspaces: [], registries: [{ name: `crbench${rgIndex}`, adminUserEnabled: rgIndex % 2 === 0 }] };
      resourceGroups.push(rg);
    }
    const team = opts.groups > 0 ? `team-${w % opts.groups}` : 'none';
    const computes: Array<Record<string, unknown>> = [];
    for (let c = 0; c < computesPer; c++) {
      const kind = c % 3;
      if (kind === 2) {
        const owner = users[(w + c) % Math.max(1, users.length)];
        computes.push({
          name: `ci-${w}-${c}`,
          computeType: 'ComputeInstance',
          ...(owner ? { assignedUser: owner.id } : {}),
          sshPublicAccess: c % 2 === 0 ? 'Enabled' : 'Disabled',
        });
      } else {
        computes.push({
          name: `cluster-${w}-${c}`,
          computeType: 'AmlCompute',
          ...(kind === 1 ? { identity: { type: 'SystemAssigned' }, disableLocalAuth: true } : {}),
        });
      }
    }
    const name = `mlw-${w}`;
    (rg.workspaces as Array<Record<string, unknown>>).push({
      name,
      tags: { team },
      containerRegistry: `crbench${rgIndex}`,
      datastores: [{ name: 'workspaceblobstore', credentialsType: w % 3 === 0 ? 'AccountKey' : 'None', isDefault: true }],
      computes,
    });
    workspaceIds.push(`/subscriptions/${subscriptionId}/resourceGroups/rg-ml-${rgIndex}/providers/Microsoft.MachineLearningServices/workspaces/${name}`);
  }

  return {
    tenantId,
    subscriptionId,
    directory: { users, groups, servicePrincipals, applications },
    resources: { subscriptions: [{ id: subscriptionId, displayName: 'Benchmark subscription', resourceGroups }] },
    vaults: [{ name: 'kv-bench', secrets: [] }],
    index: { groupIds, workspaceIds, appIds },
  };
}
