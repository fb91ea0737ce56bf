/**
 * Graph directory reads through the real `@microsoft/microsoft-graph-client` over HTTPS: users,
 * nested groups, transitive members with paging and casts, a 100,000-member group, and groups delta.
 */
import { Client, PageIterator, type PageCollection } from '@microsoft/microsoft-graph-client';
import { createGraphService } from '../../emulator/graph';
import { startStandaloneGraph, type StandaloneGraph } from '../../emulator/graph/standalone';
import { graphError, tls } from './graph-helpers';

const ADA = '0a0a0a0a-0000-4000-8000-000000000001';
const BOB = '0a0a0a0a-0000-4000-8000-000000000002';
const CY = '0a0a0a0a-0000-4000-8000-000000000003';
const DEE = '0a0a0a0a-0000-4000-8000-000000000004';
const SP = '0b0b0b0b-0000-4000-8000-000000000001';
const G_TOP = '0c0c0c0c-0000-4000-8000-000000000001';
const G_MID = '0c0c0c0c-0000-4000-8000-000000000002';
const G_LEAF = '0c0c0c0c-0000-4000-8000-000000000003';
const G_OTHER = '0c0c0c0c-0000-4000-8000-000000000004';
const G_BIG = '0c0c0c0c-0000-4000-8000-000000000005';
const BIG_PREFIX = 'b1b1b1b1-0000-4000-8000-';

const section = {
  users: [
    { id: ADA, displayName: 'Ada', userPrincipalName: 'ada@contoso.example', mail: 'ada@contoso.example' },
    { id: BOB, displayName: 'Bob', userPrincipalName: 'bob@contoso.example', accountEnabled: false },
    { id: CY, displayName: 'Cy', userPrincipalName: 'cy@contoso.example', userType: 'Guest' },
    { id: DEE, displayName: 'Dee', userPrincipalName: 'dee@contoso.example' },
  ],
  servicePrincipals: [{ id: SP, appId: '0d0d0d0d-0000-4000-8000-000000000001', displayName: 'pipeline' }],
  groups: [
    // top → mid → leaf → top: a cycle, and Ada reachable twice.
    { id: G_TOP, displayName: 'ml-admins', members: [ADA, G_MID, SP] },
    { id: G_MID, displayName: 'ml-team', members: [BOB, G_LEAF, ADA] },
    { id: G_LEAF, displayName: 'ml-contractors', members: [CY, G_TOP] },
    { id: G_OTHER, displayName: 'other', members: [DEE] },
    { id: G_BIG, displayName: 'everyone', generatedMembers: { idPrefix: BIG_PREFIX, count: 100000 } },
  ],
};

let g: StandaloneGraph;
let client: Client;

async function collect(first: PageCollection, headers?: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  const it = new PageIterator(client, first, (item: Record<string, unknown>) => {
    items.push(item);
    return true;
  }, headers ? { headers } : undefined);
  await it.iterate();
  return items;
}

beforeAll(async () => {
  g = await startStandaloneGraph({ tls: tls(), section });
  client = Client.initWithMiddleware({ authProvider: { getAccessToken: async () => 'token' }, baseUrl: g.url, customHosts: new Set(['127.0.0.1']) });
});

afterAll(async () => {
  await g.close();
});

describe('users and service principals', () => {
  it('reads a user by id and by UPN; default properties leave out accountEnabled', async () => {
    const byUpn = await client.api('/users/ada@contoso.example').get();
    expect(byUpn.id).toBe(ADA);
    expect(byUpn.userPrincipalName).toBe('ada@contoso.example');
    expect(byUpn).not.toHaveProperty('accountEnabled');
    const bob = await client.api(`/users/${BOB}`).select(['id', 'accountEnabled', 'userType']).get();
    expect(bob).toMatchObject({ id: BOB, accountEnabled: false, userType: 'Member' });
    expect(bob).not.toHaveProperty('displayName');
  });

  it('answers 404 Request_ResourceNotFound for an unknown user and 400 for an unknown $select property', async () => {
    const missing = await graphError(client.api('/users/nobody@contoso.example').get());
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe('Request_ResourceNotFound');
    const bad = await graphError(client.api(`/users/${ADA}`).select('id,shoeSize').get());
    expect(bad.statusCode).toBe(400);
  });

  it('reads a service principal by id and by appId, and groups by id', async () => {
    expect((await client.api(`/servicePrincipals/${SP}`).get()).displayName).toBe('pipeline');
    expect((await client.api("/servicePrincipals(appId='0d0d0d0d-0000-4000-8000-000000000001')").get()).id).toBe(SP);
    const grp = await client.api(`/groups/${G_TOP}`).select('id,displayName,securityEnabled').get();
    expect(grp).toMatchObject({ id: G_TOP, displayName: 'ml-admins', securityEnabled: true });
  });

  it('refuses /me for an app-only caller', async () => {
    expect((await graphError(client.api('/me').get())).statusCode).toBe(400);
  });

  it('refuses an invalid directory section with every problem named', () => {
    expect(() => createGraphService({ ctx: g.ctx, pusher: g.pusher, events: g.events, tenantId: g.tenantId }, { users: [{ id: 'x' }], groupz: [] })).toThrow(
      /users\.0\.displayName[\s\S]*groupz|groupz[\s\S]*users\.0\.displayName/,
    );
    expect(() =>
      createGraphService({ ctx: g.ctx, pusher: g.pusher, events: g.events, tenantId: g.tenantId }, { groups: [{ id: 'g', displayName: 'g', members: ['ghost'] }] }),
    ).toThrow(/ghost/);
  });

  it('refuses calls without a bearer token', async () => {
    const res = await fetch(`${g.url}/v1.0/users/${ADA}`);
    expect(res.status).toBe(401);
  });
});

describe('transitive members', () => {
  it('follows nesting, de-duplicates, survives the cycle and pages past page 1', async () => {
    const mark = g.ctx.record.mark();
    const first = await client.api(`/groups/${G_TOP}/transitiveMembers`).select('id,displayName,accountEnabled').top(2).get();
    expect(first['@odata.nextLink']).toMatch(new RegExp(`^${g.url}/v1\\.0/groups/${G_TOP}/transitiveMembers\\?`));
    const items = await collect(first);
    const ids = items.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual([ADA, BOB, CY, SP, G_MID, G_LEAF].sort());
    expect(items.find((i) => i.id === SP)?.['@odata.type']).toBe('#microsoft.graph.servicePrincipal');
    expect(items.find((i) => i.id === G_LEAF)?.['@odata.type']).toBe('#microsoft.graph.group');
    expect(items.find((i) => i.id === BOB)).toMatchObject({ '@odata.type': '#microsoft.graph.user', accountEnabled: false });
    // Groups have no accountEnabled: the property is left out rather than null.
    expect(items.find((i) => i.id === G_MID)).not.toHaveProperty('accountEnabled');
    expect(g.ctx.record.since(mark, { operation: 'graph.groups.transitiveMembers' })).toHaveLength(3);
  });

  it('lists direct members only on /members', async () => {
    const page = await client.api(`/groups/${G_MID}/members`).select('id').get();
    expect(page.value.map((v: { id: string }) => v.id)).toEqual([BOB, G_LEAF, ADA]);
  });

  it('requires ConsistencyLevel eventual and $count for a cast on transitive members, and carries them through pages', async () => {
    const err = await graphError(client.api(`/groups/${G_TOP}/transitiveMembers/microsoft.graph.user`).get());
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('Request_UnsupportedQuery');

    const headers = { ConsistencyLevel: 'eventual' };
    const first = await client
      .api(`/groups/${G_TOP}/transitiveMembers/microsoft.graph.user`)
      .header('ConsistencyLevel', 'eventual')
      .query({ $count: 'true' })
      .select('id')
      .top(1)
      .get();
    expect(first['@odata.count']).toBe(3);
    const users = await collect(first, headers);
    expect(users.map((u) => u.id).sort()).toEqual([ADA, BOB, CY].sort());

    // PageIterator does not carry the header by itself: the next page then fails, as in Graph.
    const again = await client
      .api(`/groups/${G_TOP}/transitiveMembers/microsoft.graph.user`)
      .header('ConsistencyLevel', 'eventual')
      .query({ $count: 'true' })
      .top(1)
      .get();
    await expect(collect(again)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('casts direct members without the header', async () => {
    const page = await client.api(`/groups/${G_TOP}/members/microsoft.graph.group`).get();
    expect(page.value.map((v: { id: string }) => v.id)).toEqual([G_MID]);
  });

  it('lists transitive memberships of a user, by id or UPN', async () => {
    const page = await client.api(`/users/${CY}/transitiveMemberOf`).select('id').get();
    expect(page.value.map((v: { id: string }) => v.id).sort()).toEqual([G_TOP, G_MID, G_LEAF].sort());
    const byUpn = await client.api('/users/dee@contoso.example/transitiveMemberOf').select('id').get();
    expect(byUpn.value.map((v: { id: string }) => v.id)).toEqual([G_OTHER]);
  });

  it('counts with /$count under ConsistencyLevel eventual only', async () => {
    const n: unknown = await client.api(`/groups/${G_TOP}/transitiveMembers/$count`).header('ConsistencyLevel', 'eventual').get();
    expect(String(n)).toBe('6');
    const users: unknown = await client
      .api(`/groups/${G_TOP}/transitiveMembers/microsoft.graph.user/$count`)
      .header('ConsistencyLevel', 'eventual')
      .get();
    expect(String(users)).toBe('3');
    expect((await graphError(client.api(`/groups/${G_TOP}/transitiveMembers/$count`).get())).statusCode).toBe(400);
  });

  it('resolves ids in bulk with getByIds', async () => {
    const res = await client.api('/directoryObjects/getByIds').select('id').post({ ids: [ADA, SP, 'missing'], types: ['user'] });
    expect(res.value).toEqual([{ '@odata.type': '#microsoft.graph.user', id: ADA }]);
  });

  it('pages a 100,000-member group at 999 per page without materialising it', async () => {
    const mark = g.ctx.record.mark();
    const first = await client.api(`/groups/${G_BIG}/transitiveMembers`).select('id').top(999).get();
    const seen = new Set<string>();
    let pages = 1;
    let page: PageCollection = first;
    for (;;) {
      for (const v of page.value as Array<{ id: string }>) seen.add(v.id);
      const next = page['@odata.nextLink'];
      if (typeof next !== 'string') break;
      page = await client.api(next).get();
      pages++;
    }
    expect(seen.size).toBe(100000);
    expect(seen.has(`${BIG_PREFIX}00000001869f`)).toBe(true);
    expect(pages).toBe(101);
    expect(g.ctx.record.since(mark, { operation: 'graph.groups.transitiveMembers' })).toHaveLength(101);
    expect(g.principals.lookup(`${BIG_PREFIX}000000000010`)).toEqual({ type: 'User' });
    expect(g.principals.lookup(`${BIG_PREFIX}0000000186a0`)).toBeUndefined();
  });

  it('sees a removed generated member disappear and a disabled one stay with accountEnabled false', async () => {
    const victim = `${BIG_PREFIX}000000000002`;
    const disabled = `${BIG_PREFIX}000000000003`;
    g.control.removeMember(G_BIG, victim);
    g.control.setAccountEnabled(disabled, false);
    const page = await client.api(`/groups/${G_BIG}/members`).select('id,accountEnabled').top(5).get();
    const ids = page.value.map((v: { id: string }) => v.id);
    expect(ids).not.toContain(victim);
    expect(page.value.find((v: { id: string }) => v.id === disabled)).toMatchObject({ accountEnabled: false });
    g.control.addMember(G_BIG, victim);
    g.control.setAccountEnabled(disabled, true);
  });
});

describe('groups delta', () => {
  it('syncs fully in pages, then returns only groups changed since, with members@delta', async () => {
    const first = await client
      .api('/groups/delta')
      .select('displayName,members')
      .filter(`id eq '${G_TOP}' or id eq '${G_MID}' or id eq '${G_OTHER}'`)
      .header('Prefer', 'odata.maxpagesize=1')
      .get();
    const initial: Array<Record<string, unknown>> = [];
    let page: PageCollection = first;
    let deltaLink: string | undefined;
    for (;;) {
      initial.push(...(page.value as Array<Record<string, unknown>>));
      if (typeof page['@odata.nextLink'] === 'string') {
        page = await client.api(page['@odata.nextLink']).get();
        continue;
      }
      deltaLink = page['@odata.deltaLink'];
      break;
    }
    expect(initial.map((v) => v.id)).toEqual([G_TOP, G_MID, G_OTHER]);
    expect(initial[1]).toMatchObject({ displayName: 'ml-team' });
    expect((initial[1]?.['members@delta'] as Array<{ id: string }>).map((m) => m.id)).toEqual([BOB, G_LEAF, ADA]);
    expect(deltaLink).toMatch(new RegExp(`^${g.url}/v1\\.0/groups/delta\\?\\$deltatoken=`));

    g.control.addMember(G_MID, DEE);
    g.control.removeMember(G_MID, BOB);
    g.control.addMember(G_LEAF, DEE); // not in the filter: not reported
    const mark = g.ctx.record.mark();
    const changed = await client.api(deltaLink as string).get();
    expect(changed.value).toHaveLength(1);
    expect(changed.value[0]).toMatchObject({ id: G_MID, displayName: 'ml-team' });
    expect(changed.value[0]['members@delta']).toEqual([
      { '@odata.type': '#microsoft.graph.user', id: DEE },
      { '@odata.type': '#microsoft.graph.user', id: BOB, '@removed': { reason: 'deleted' } },
    ]);
    expect(changed['@odata.nextLink']).toBeUndefined();

    const quiet = await client.api(changed['@odata.deltaLink']).get();
    expect(quiet.value).toEqual([]);
    expect(typeof quiet['@odata.deltaLink']).toBe('string');
    expect(g.ctx.record.since(mark, { operation: 'graph.groups.delta' })).toHaveLength(2);

    g.control.removeMember(G_LEAF, DEE);
    g.control.removeMember(G_MID, DEE);
    g.control.addMember(G_MID, BOB);
  });

  it('splits a huge membership across pages and repeats the group', async () => {
    const first = await client.api('/groups/delta').select('members').filter(`id eq '${G_BIG}'`).get();
    let page: PageCollection = first;
    let appearances = 0;
    let members = 0;
    for (;;) {
      for (const v of page.value as Array<Record<string, unknown>>) {
        expect(v.id).toBe(G_BIG);
        appearances++;
        members += (v['members@delta'] as unknown[] | undefined)?.length ?? 0;
      }
      const next = page['@odata.nextLink'];
      if (typeof next !== 'string') break;
      page = await client.api(next).get();
    }
    expect(members).toBe(100000);
    expect(appearances).toBeGreaterThan(1);
  });

  it('answers $deltatoken=latest with an empty page and a deltaLink that sees later changes', async () => {
    const latest = await client.api('/groups/delta').query({ $deltatoken: 'latest' }).select('displayName,members').get();
    expect(latest.value).toEqual([]);
    g.control.updateGroup(G_OTHER, { displayName: 'other-renamed' });
    const after = await client.api(latest['@odata.deltaLink']).get();
    expect(after.value).toEqual([expect.objectContaining({ id: G_OTHER, displayName: 'other-renamed' })]);
  });

  it('refuses filters other than id eq, and tokens invalidated by resetDeltaTokens with 410', async () => {
    const bad = await graphError(client.api('/groups/delta').filter("displayName eq 'x'").get());
    expect(bad.statusCode).toBe(400);
    const latest = await client.api('/groups/delta').query({ $deltatoken: 'latest' }).get();
    g.control.resetDeltaTokens();
    const gone = await graphError(client.api(latest['@odata.deltaLink']).get());
    expect(gone.statusCode).toBe(410);
  });
});
