/**
 * The RBAC adapters over `@azure/arm-authorization` (role assignments and definitions, api
 * 2022-04-01) and the resource catalog (workspaces through the ML port, other resource types through
 * ARM's generic resource list). The only place these SDK calls are made. Every HTTP call goes
 * through the shared limiter (`WARDEN_CONCURRENCY`).
 */
import type { RoleAssignment as SdkRoleAssignment, RoleDefinition as SdkRoleDefinition } from '@azure/arm-authorization';
import { z } from 'zod';
import type { AzureClients } from '../../azure/clients';
import type { Limiter } from '../../concurrency';
import { codeOf, statusOf } from '../../errors';
import type { MlResources, Workspace } from '../ml';
import {
  parseResourceId,
  roleGuidOf,
  sameId,
  type GovernedResource,
  type ResourceCatalog,
  type RoleAssignment,
  type RoleAssignments,
  type RoleDefinition,
} from '../rbac';
import { WORKSPACE_TYPE } from '../../policy';

const passThrough: Limiter = { run: (fn) => fn(), active: 0 };

function subscriptionOf(scope: string): string {
  const sub = /^\/subscriptions\/([^/]+)/i.exec(scope)?.[1];
  if (!sub) throw new Error(`Not a subscription-level scope: ${scope}`);
  return sub;
}

function toAssignment(a: SdkRoleAssignment): RoleAssignment {
  return {
    id: a.id ?? '',
    name: a.name ?? '',
    scope: a.scope ?? '',
    roleDefinitionId: a.roleDefinitionId ?? '',
    principalId: a.principalId ?? '',
    principalType: a.principalType ?? undefined,
    description: a.description ?? undefined,
    condition: a.condition ?? undefined,
  };
}

function toDefinition(d: SdkRoleDefinition): RoleDefinition {
  const id = d.id ?? '';
  return { id, guid: roleGuidOf(d.name ?? id), roleName: d.roleName ?? '', roleType: d.roleType ?? undefined };
}

/** Pages an SDK list one page per limiter slot. */
async function collectPages<T, R>(pages: AsyncIterator<T[]>, limiter: Limiter, map: (t: T) => R): Promise<R[]> {
  const out: R[] = [];
  for (;;) {
    const r = await limiter.run(() => pages.next());
    if (r.done) break;
    for (const item of r.value) out.push(map(item));
  }
  return out;
}

export function createRoleAssignmentsAdapter(clients: AzureClients, limiter: Limiter = passThrough): RoleAssignments {
  return {
    async listForResource(resourceId) {
      const client = await clients.authorization(subscriptionOf(resourceId));
      const pages = client.roleAssignments.listForScope(resourceId, { filter: 'atScope()' }).byPage();
      return collectPages(pages, limiter, toAssignment);
    },

    async create(spec) {
      const client = await clients.authorization(subscriptionOf(spec.scope));
      try {
        await limiter.run(() =>
          client.roleAssignments.create(spec.scope, spec.name, {
            roleDefinitionId: spec.roleDefinitionId,
            principalId: spec.principalId,
            principalType: spec.principalType,
            description: spec.description,
          }),
        );
        return 'created';
      } catch (err) {
        // The same (scope, role, principal) under another name: what we wanted is there.
        if (statusOf(err) === 409 && codeOf(err) === 'RoleAssignmentExists') return 'exists';
        throw err;
      }
    },

    async delete(scope, name) {
      const client = await clients.authorization(subscriptionOf(scope));
      try {
        const res: unknown = await limiter.run(() => client.roleAssignments.delete(scope, name));
        // 200 carries the deleted assignment; 204 (already gone) resolves to undefined or `{ body: undefined }`.
        const id = res && typeof res === 'object' ? (res as { id?: unknown }).id : undefined;
        return typeof id === 'string' && id !== '' ? 'deleted' : 'absent';
      } catch (err) {
        if (statusOf(err) === 404) return 'absent';
        throw err;
      }
    },

    async findRoleDefinitions(scope, roleName) {
      const client = await clients.authorization(subscriptionOf(scope));
      const filter = `roleName eq '${roleName.replace(/'/g, "''")}'`;
      const pages = client.roleDefinitions.list(scope, { filter }).byPage();
      return collectPages(pages, limiter, toDefinition);
    },

    async getRoleDefinition(scope, guid) {
      const client = await clients.authorization(subscriptionOf(scope));
      try {
        return toDefinition(await limiter.run(() => client.roleDefinitions.get(scope, guid)));
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
  };
}

function fromWorkspace(w: Workspace): GovernedResource {
  return { id: w.id, name: w.name, type: WORKSPACE_TYPE, subscriptionId: w.subscriptionId, resourceGroup: w.resourceGroup, tags: { ...w.tags } };
}

const genericListSchema = z.object({
  value: z
    .array(
      z
        .object({
          id: z.string(),
          name: z.string().optional(),
          type: z.string().optional(),
          tags: z.record(z.string(), z.string()).nullish(),
        })
        .loose(),
    )
    .default([]),
  nextLink: z.string().nullish(),
});

/** api-version of ARM's generic resource list. */
const RESOURCES_API = '2021-04-01';

/**
 * Governed resources. Workspaces come from the ML port (one paged list per scope, with tags); any
 * other resource type from `GET {scope}/resources?$filter=resourceType eq '…'`.
 */
export function createResourceCatalog(clients: AzureClients, ml: MlResources, armEndpoint: string, limiter: Limiter = passThrough): ResourceCatalog {
  const listGeneric = async (scope: string, type: string): Promise<GovernedResource[]> => {
    const client = await clients.authorization(subscriptionOf(scope));
    const { createPipelineRequest, RestError } = await import('@azure/core-rest-pipeline');
    const filter = encodeURIComponent(`resourceType eq '${type.replace(/'/g, "''")}'`);
    let url: string | undefined = `${armEndpoint.replace(/\/+$/, '')}${scope}/resources?$filter=${filter}&api-version=${RESOURCES_API}`;
    const out: GovernedResource[] = [];
    while (url) {
      const req = createPipelineRequest({ url, method: 'GET' });
      const res = await limiter.run(() => client.sendRequest(req));
      if (res.status >= 400) {
        let code: string | undefined;
        try {
          code = (JSON.parse(res.bodyAsText ?? '{}') as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        throw new RestError(`Listing ${type} under ${scope} failed with ${res.status}`, { statusCode: res.status, ...(code ? { code } : {}) });
      }
      const page = genericListSchema.parse(JSON.parse(res.bodyAsText ?? '{}'));
      for (const r of page.value) {
        const parsed = parseResourceId(r.id);
        if (!parsed || parsed.type.toLowerCase() !== type.toLowerCase()) continue;
        out.push({ id: r.id, name: parsed.name, type: parsed.type, subscriptionId: parsed.subscriptionId, resourceGroup: parsed.resourceGroup, tags: { ...(r.tags ?? {}) } });
      }
      url = page.nextLink ?? undefined;
    }
    return out;
  };

  return {
    async listResources(scope, type) {
      if (type.toLowerCase() === WORKSPACE_TYPE.toLowerCase()) return (await ml.listWorkspaces(scope)).map(fromWorkspace);
      return listGeneric(scope, type);
    },
    async getResource(id, type) {
      if (type.toLowerCase() === WORKSPACE_TYPE.toLowerCase()) {
        const w = await ml.getWorkspace(id);
        return w ? fromWorkspace(w) : undefined;
      }
      const parsed = parseResourceId(id);
      if (!parsed) return undefined;
      const rg = `/subscriptions/${parsed.subscriptionId}/resourceGroups/${parsed.resourceGroup}`;
      try {
        return (await listGeneric(rg, type)).find((r) => sameId(r.id, id));
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
  };
}
