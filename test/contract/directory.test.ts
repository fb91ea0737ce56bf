/**
 * The directory adapter (`ports/azure/directory.ts`) with the real Graph client built by
 * `createAzureClients`, against the emulator's Graph over HTTPS.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Emulator, TenantFile } from '../../emulator';
import { createLimiter } from '../../shared/concurrency';
import { createDirectoryAdapter } from '../../shared/ports/azure/directory';
import { DeltaExpiredError, type Directory, type DirectoryMember, type GroupDeltaChange } from '../../shared/ports/directory';
import { wardenClients, withEmulator } from '../helpers/emulator';

const TENANT = 'c0c0c0c0-0000-4000-8000-000000000002';
const SUB = 'c1c1c1c1-0000-4000-8000-000000000002';
const u = (i: number): string => `d1d1d1d1-0000-4000-8000-${String(i).padStart(12, '0')}`;
const SP = 'd2d2d2d2-0000-4000-8000-000000000001';
const BIG = 'd3d3d3d3-0000-4000-8000-000000000001';
const NESTED = 'd3d3d3d3-0000-4000-8000-000000000002';
const M365 = 'd3d3d3d3-0000-4000-8000-000000000003';
const OUTER = 'd3d3d3d3-0000-4000-8000-000000000004';

const tenant: TenantFile = {
  tenantId: TENANT,
  subscriptionId: SUB,
  directory: {
    users: [
      { id: u(1), displayName: 'Ada', userPrincipalName: 'ada@contoso.example' },
      { id: u(2), displayName: 'Grace', userPrincipalName: 'grace@contoso.example', accountEnabled: false },
      { id: u(3), displayName: 'Alan', userPrincipalName: 'alan@contoso.example' },
    ],
    servicePrincipals: [{ id: SP, appId: 'd4d4d4d4-0000-4000-8000-000000000001', displayName: 'pipeline' }],
    groups: [
      { id: NESTED, displayName: 'Nested', members: [u(2)] },
      { id: BIG, displayName: 'Big', members: [u(1), SP, NESTED], generatedMembers: { idPrefix: 'e0e0e0e0-0000-4000-8000-', count: 2500 } },
      { id: M365, displayName: 'M365', securityEnabled: false, mailEnabled: true, members: [u(3)] },
      { id: OUTER, displayName: 'Outer', members: [BIG] },
    ],
  },
  resources: { subscriptions: [{ id: SUB, resourceGroups: [] }] },
};

let emu: Emulator;
let dir: Directory;
let hook: Server;
let hookUrl: string;

beforeAll(async () => {
  emu = await withEmulator({ tenant });
  dir = createDirectoryAdapter(wardenClients(emu).clients, createLimiter(4));
  // A notification endpoint that passes Graph's validation handshake.
  hook = createServer((req, res) => {
    const token = new URL(req.url ?? '/', 'http://x').searchParams.get('validationToken');
    req.resume();
    if (token !== null) res.writeHead(200, { 'Content-Type': 'text/plain' }).end(token);
    else res.writeHead(202).end();
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await emu.stop();
  hook.closeAllConnections();
  await new Promise<void>((r) => hook.close(() => r()));
});

beforeEach(() => emu.faults.clear());

async function roundOf(link: string): Promise<{ changes: GroupDeltaChange[]; deltaLink: string | undefined }> {
  const changes: GroupDeltaChange[] = [];
  let deltaLink: string | undefined;
  for await (const page of dir.groupsDelta(link)) {
    changes.push(...page.changes);
    if (page.deltaLink) deltaLink = page.deltaLink;
  }
  return { changes, deltaLink };
}

describe('groups and members', () => {
  it('reads a group (securityEnabled) or undefined', async () => {
    expect(await dir.getGroup(BIG)).toMatchObject({ id: BIG, securityEnabled: true });
    expect(await dir.getGroup(M365)).toMatchObject({ securityEnabled: false, mailEnabled: true });
    expect(await dir.getGroup('d3d3d3d3-0000-4000-8000-00000000ffff')).toBeUndefined();
  });

  it('streams transitive members page by page, with types and accountEnabled, following nesting', async () => {
    const mark = emu.record.mark();
    let pages = 0;
    const all: DirectoryMember[] = [];
    for await (const page of dir.transitiveMembers(BIG)) {
      pages++;
      expect(page.length).toBeLessThanOrEqual(999);
      all.push(...page);
    }
    expect(pages).toBe(3);
    expect(all).toHaveLength(2500 + 4);
    const byId = new Map(all.map((m) => [m.id, m]));
    expect(byId.get(u(1))).toEqual({ id: u(1), type: 'User', accountEnabled: true });
    expect(byId.get(u(2))).toEqual({ id: u(2), type: 'User', accountEnabled: false });
    expect(byId.get(SP)).toMatchObject({ type: 'ServicePrincipal', accountEnabled: true });
    expect(byId.get(NESTED)).toMatchObject({ type: 'Group' });
    const reqs = emu.record.since(mark, { service: 'graph' });
    expect(reqs.map((r) => r.operation)).toEqual(['graph.groups.transitiveMembers', 'graph.groups.transitiveMembers', 'graph.groups.transitiveMembers']);
  });

  it('lists nested groups with the advanced-query header on every page', async () => {
    expect(await dir.nestedGroups(BIG)).toEqual([NESTED]);
    expect((await dir.nestedGroups(OUTER)).sort()).toEqual([BIG, NESTED].sort());
  });

  it('tells who holds a principal or a group, and whether a principal is enabled', async () => {
    expect(await dir.membershipOf(u(2), 'User')).toEqual({ id: u(2), exists: true, accountEnabled: false, groups: expect.arrayContaining([NESTED, BIG, OUTER]) });
    expect((await dir.membershipOf(SP, 'ServicePrincipal')).groups.sort()).toEqual([BIG, OUTER].sort());
    expect(await dir.membershipOf('d1d1d1d1-0000-4000-8000-00000000ffff', 'User')).toMatchObject({ exists: false, groups: [] });
    expect((await dir.groupMemberOf(NESTED)).sort()).toEqual([BIG, OUTER].sort());
  });
});

describe('groups delta', () => {
  it('starts at latest, reports member adds and removals of the filtered groups only, and refuses expired tokens', async () => {
    const link = await dir.latestGroupsDeltaLink([BIG, NESTED]);
    const quiet = await roundOf(link);
    expect(quiet.changes).toEqual([]);
    expect(quiet.deltaLink).toBeDefined();

    emu.graph.addMember(NESTED, u(3));
    emu.graph.removeMember(BIG, u(1));
    emu.graph.addMember(M365, u(1));
    const round = await roundOf(quiet.deltaLink ?? '');
    const byGroup = new Map(round.changes.map((c) => [c.groupId, c]));
    expect([...byGroup.keys()].sort()).toEqual([BIG, NESTED].sort());
    expect(byGroup.get(NESTED)?.members).toEqual([{ id: u(3), type: 'User', removed: false }]);
    expect(byGroup.get(BIG)?.members).toEqual([{ id: u(1), type: 'User', removed: true }]);
    expect((await roundOf(round.deltaLink ?? '')).changes).toEqual([]);

    emu.graph.resetDeltaTokens();
    await expect(roundOf(round.deltaLink ?? '')).rejects.toBeInstanceOf(DeltaExpiredError);
  });
});

describe('subscriptions', () => {
  it('creates (after the validation handshake), reads, renews, reauthorizes; reports a dropped one as gone', async () => {
    const expiration = new Date(emu.clock.now() + 41_000 * 60_000).toISOString();
    const sub = await dir.createSubscription({
      resource: '/groups',
      changeType: 'updated',
      notificationUrl: `${hookUrl}/api/graph/notifications`,
      lifecycleNotificationUrl: `${hookUrl}/api/graph/lifecycle`,
      expirationDateTime: expiration,
      clientState: 'contract-client-state',
    });
    expect(sub).toMatchObject({ resource: '/groups', changeType: 'updated', notificationUrl: `${hookUrl}/api/graph/notifications`, lifecycleNotificationUrl: `${hookUrl}/api/graph/lifecycle` });
    expect(emu.graph.subscriptions()[0]).toMatchObject({ clientState: 'contract-client-state', latestSupportedTlsVersion: 'v1_2' });
    expect(await dir.getSubscription(sub.id)).toMatchObject({ id: sub.id });

    const later = new Date(emu.clock.now() + 41_500 * 60_000).toISOString();
    const renewed = await dir.renewSubscription(sub.id, later);
    expect(Date.parse(renewed?.expirationDateTime ?? '')).toBe(Date.parse(later));
    expect(await dir.reauthorizeSubscription(sub.id)).toBe(true);

    emu.graph.dropSubscription(sub.id);
    expect(await dir.getSubscription(sub.id)).toBeUndefined();
    expect(await dir.renewSubscription(sub.id, later)).toBeUndefined();
    expect(await dir.reauthorizeSubscription(sub.id)).toBe(false);
  });
});
