/**
 * The directory adapter over `@microsoft/microsoft-graph-client` (Graph v1.0): groups, transitive
 * members streamed one page at a time, memberships, the groups delta query and change-notification
 * subscriptions. The only place these Graph calls are made; every response is validated with zod
 * and every HTTP call goes through the shared limiter.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import type { AzureClients } from '../../azure/clients';
import type { Limiter } from '../../concurrency';
import { statusOf } from '../../errors';
import {
  DeltaExpiredError,
  type Directory,
  type DirectoryMember,
  type DirectoryObjectType,
  type GraphSubscription,
  type GroupDeltaChange,
} from '../directory';

const passThrough: Limiter = { run: (fn) => fn(), active: 0 };

/** Largest page Graph serves for directory relationships. */
const PAGE_SIZE = 999;

function typeOf(odataType: string | undefined): DirectoryObjectType {
  switch ((odataType ?? '').toLowerCase()) {
    case '#microsoft.graph.user':
      return 'User';
    case '#microsoft.graph.group':
      return 'Group';
    case '#microsoft.graph.serviceprincipal':
      return 'ServicePrincipal';
    case '#microsoft.graph.device':
      return 'Device';
    default:
      return 'Other';
  }
}

const objectSchema = z
  .object({
    '@odata.type': z.string().optional(),
    id: z.string(),
    accountEnabled: z.boolean().nullish(),
  })
  .loose();

const pageSchema = z
  .object({
    value: z.array(objectSchema).default([]),
    '@odata.nextLink': z.string().optional(),
  })
  .loose();

const groupSchema = z
  .object({
    id: z.string(),
    displayName: z.string().nullish(),
    securityEnabled: z.boolean().nullish(),
    mailEnabled: z.boolean().nullish(),
  })
  .loose();

const removedSchema = z.union([z.string(), z.object({ reason: z.string().optional() }).loose()]).optional();

const deltaPageSchema = z
  .object({
    value: z
      .array(
        z
          .object({
            id: z.string(),
            '@removed': removedSchema,
            'members@delta': z.array(z.object({ '@odata.type': z.string().optional(), id: z.string(), '@removed': removedSchema }).loose()).optional(),
          })
          .loose(),
      )
      .default([]),
    '@odata.nextLink': z.string().optional(),
    '@odata.deltaLink': z.string().optional(),
  })
  .loose();

const subscriptionSchema = z
  .object({
    id: z.string(),
    resource: z.string(),
    changeType: z.string(),
    notificationUrl: z.string(),
    lifecycleNotificationUrl: z.string().nullish(),
    expirationDateTime: z.string(),
  })
  .loose();

function toSubscription(raw: unknown): GraphSubscription {
  const s = subscriptionSchema.parse(raw);
  return {
    id: s.id,
    resource: s.resource,
    changeType: s.changeType,
    notificationUrl: s.notificationUrl,
    lifecycleNotificationUrl: s.lifecycleNotificationUrl ?? undefined,
    expirationDateTime: s.expirationDateTime,
  };
}

function idFilter(ids: readonly string[]): string {
  return ids.map((id) => `id eq '${id.replace(/'/g, "''")}'`).join(' or ');
}

function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

export function createDirectoryAdapter(clients: AzureClients, limiter: Limiter = passThrough): Directory {
  const graph = (): Promise<Client> => clients.graph();

  /** GET one URL (relative to /v1.0, or an absolute nextLink) with optional headers. */
  const get = async (url: string, headers: Record<string, string> = {}): Promise<unknown> => {
    const client = await graph();
    return limiter.run(async () => {
      const res: unknown = await client.api(url).headers(headers).get();
      return res;
    });
  };

  /** Every object of a paged directoryObject collection, page by page. */
  async function* pages(first: string, headers: Record<string, string> = {}): AsyncGenerator<z.infer<typeof objectSchema>[]> {
    let url: string | undefined = first;
    while (url) {
      const page = pageSchema.parse(await get(url, headers));
      yield page.value;
      url = page['@odata.nextLink'];
    }
  }

  const collectGroupIds = async (first: string, headers: Record<string, string> = {}): Promise<string[]> => {
    const out: string[] = [];
    for await (const page of pages(first, headers)) {
      for (const o of page) if (typeOf(o['@odata.type']) === 'Group' || o['@odata.type'] === undefined) out.push(o.id.toLowerCase());
    }
    return out;
  };

  return {
    async getGroup(id) {
      try {
        const g = groupSchema.parse(await get(`/groups/${encodeURIComponent(id)}?$select=id,displayName,securityEnabled,mailEnabled`));
        return { id: g.id.toLowerCase(), displayName: g.displayName ?? '', securityEnabled: g.securityEnabled === true, mailEnabled: g.mailEnabled === true };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async *transitiveMembers(groupId) {
      for await (const page of pages(`/groups/${encodeURIComponent(groupId)}/transitiveMembers?$select=id,accountEnabled&$top=${PAGE_SIZE}`)) {
        yield page.map((o): DirectoryMember => ({ id: o.id.toLowerCase(), type: typeOf(o['@odata.type']), accountEnabled: o.accountEnabled ?? undefined }));
      }
    },

    async nestedGroups(groupId) {
      // A cast on transitive members is an advanced query: ConsistencyLevel on every page (facts, Addenda).
      return collectGroupIds(`/groups/${encodeURIComponent(groupId)}/transitiveMembers/microsoft.graph.group?$select=id&$count=true&$top=${PAGE_SIZE}`, {
        ConsistencyLevel: 'eventual',
      });
    },

    async membershipOf(principalId, type) {
      const kind = type === 'User' ? 'users' : 'servicePrincipals';
      let enabled: boolean;
      try {
        const o = objectSchema.parse(await get(`/${kind}/${encodeURIComponent(principalId)}?$select=id,accountEnabled`));
        enabled = o.accountEnabled !== false;
      } catch (err) {
        if (isNotFound(err)) return { id: principalId.toLowerCase(), exists: false, accountEnabled: false, groups: [] };
        throw err;
      }
      const groups = await collectGroupIds(`/${kind}/${encodeURIComponent(principalId)}/transitiveMemberOf?$select=id&$top=${PAGE_SIZE}`);
      return { id: principalId.toLowerCase(), exists: true, accountEnabled: enabled, groups };
    },

    async groupMemberOf(groupId) {
      try {
        return await collectGroupIds(`/groups/${encodeURIComponent(groupId)}/transitiveMemberOf?$select=id&$top=${PAGE_SIZE}`);
      } catch (err) {
        if (isNotFound(err)) return [];
        throw err;
      }
    },

    async *groupsDelta(deltaLink) {
      let url: string | undefined = deltaLink;
      while (url) {
        let raw: unknown;
        try {
          raw = await get(url);
        } catch (err) {
          // 410 SyncStateNotFound: the token is too old; 400: it is not one Graph accepts any more.
          const status = statusOf(err);
          if (status === 410 || status === 400) throw new DeltaExpiredError(`The groups delta token was refused (${status})`, { cause: err });
          throw err;
        }
        const page = deltaPageSchema.parse(raw);
        const changes: GroupDeltaChange[] = page.value.map((g) => ({
          groupId: g.id.toLowerCase(),
          removed: g['@removed'] !== undefined,
          members: (g['members@delta'] ?? []).map((m) => ({ id: m.id.toLowerCase(), type: typeOf(m['@odata.type'] ?? '#microsoft.graph.user'), removed: m['@removed'] !== undefined })),
        }));
        const next = page['@odata.nextLink'];
        yield { changes, deltaLink: next ? undefined : page['@odata.deltaLink'] };
        url = next;
      }
    },

    async latestGroupsDeltaLink(groupIds) {
      if (groupIds.length === 0 || groupIds.length > 50) throw new Error('A groups delta query takes 1 to 50 group ids');
      const filter = encodeURIComponent(idFilter(groupIds));
      const page = deltaPageSchema.parse(await get(`/groups/delta?$select=displayName,members&$filter=${filter}&$deltatoken=latest`));
      const link = page['@odata.deltaLink'];
      if (!link) throw new Error('Graph answered a $deltatoken=latest request without a deltaLink');
      return link;
    },

    async createSubscription(spec) {
      const client = await graph();
      const raw: unknown = await limiter.run(async () => {
        const res: unknown = await client.api('/subscriptions').post({ ...spec, latestSupportedTlsVersion: 'v1_2' });
        return res;
      });
      return toSubscription(raw);
    },

    async getSubscription(id) {
      try {
        return toSubscription(await get(`/subscriptions/${encodeURIComponent(id)}`));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async renewSubscription(id, expirationDateTime) {
      const client = await graph();
      try {
        const raw: unknown = await limiter.run(async () => {
          const res: unknown = await client.api(`/subscriptions/${encodeURIComponent(id)}`).patch({ expirationDateTime });
          return res;
        });
        return toSubscription(raw);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async reauthorizeSubscription(id) {
      const client = await graph();
      try {
        await limiter.run(async () => {
          await client.api(`/subscriptions/${encodeURIComponent(id)}/reauthorize`).post({});
        });
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },

    async deleteSubscription(id) {
      const client = await graph();
      try {
        await limiter.run(async () => {
          await client.api(`/subscriptions/${encodeURIComponent(id)}`).delete();
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
  };
}
