/**
 * `npm run demo` end to end, in process: the real functions on the host runner, the emulator, a fresh
 * Azurite. Each reaction of the story is checked in the emulator's state (not in the printed text), and
 * report mode is checked to write nothing to ARM, Key Vault or Graph (besides Warden's own Graph
 * subscription and its alert mail).
 */
import type { Emulator } from '../../emulator';
import { runDemo, type DemoResult } from '../../demo/run';
import { COMPUTES, ROLES, VISION_PRINCIPALS, WS } from '../../demo/story';
import { APPS, GROUPS, ROTATED_SECRET, USERS, VAULT } from '../../demo/tenant';

interface Assignment {
  scope: string;
  principalId: string;
  roleDefinitionId: string;
  description: string | null;
}

/** What the tests look at, read from the emulator before the demo stops it. */
interface WorldState {
  assignments: Assignment[];
  trainCluster: { identity: { type: string; principalId?: string } | undefined; properties: Record<string, unknown>; disableLocalAuth: boolean; tags: Record<string, string> } | undefined;
  states: Record<string, string | undefined>;
  passwords: Array<{ keyId: string; displayName: string | null }>;
  versions: Array<{ version: string; tags: Record<string, string> }>;
  alertTypes: Array<{ type: string; subject: string }>;
  writes: Array<{ service: string; operation: string }>;
}

function capture(emu: Emulator): WorldState {
  const compute = emu.arm.getCompute(COMPUTES.trainCluster);
  const state = (id: string): string | undefined => {
    const s = emu.arm.getCompute(id)?.properties.properties.state;
    return typeof s === 'string' ? s : undefined;
  };
  return {
    assignments: emu.arm.roleAssignments().map((a) => ({ scope: a.scope, principalId: a.principalId, roleDefinitionId: a.roleDefinitionId, description: a.description })),
    trainCluster: compute
      ? {
          identity: compute.identity,
          properties: { ...compute.properties.properties },
          disableLocalAuth: compute.properties.disableLocalAuth,
          tags: compute.tags ?? {},
        }
      : undefined,
    states: { hedy: state(COMPUTES.hedyInstance), linus: state(COMPUTES.linusInstance) },
    passwords: (emu.graph.getApplication(APPS.nlpInference)?.passwordCredentials ?? []).map((p) => ({ keyId: p.keyId, displayName: p.displayName })),
    versions: emu.keyvault.versions(VAULT, ROTATED_SECRET).map((v) => ({ version: v.version, tags: v.tags })),
    alertTypes: emu.eventgrid.received().map((r) => ({ type: String(r.event.type), subject: String(r.event.subject).toLowerCase() })),
    writes: emu.record.writes().map((r) => ({ service: r.service, operation: r.operation })),
  };
}

function holds(world: WorldState, scope: string, principalId: string, role: string): Assignment[] {
  return world.assignments.filter(
    (a) => a.scope.toLowerCase() === scope.toLowerCase() && a.principalId === principalId && a.roleDefinitionId.toLowerCase().endsWith(role),
  );
}

async function play(report: boolean): Promise<{ result: DemoResult; world: WorldState }> {
  let world: WorldState | undefined;
  const result = await runDemo({
    report,
    latencyMs: 0,
    beforeStop: (_r, live) => {
      world = capture(live.emu);
    },
  });
  if (!world) throw new Error('beforeStop was not called');
  return { result, world };
}

function failures(result: DemoResult): string[] {
  return result.steps.filter((s) => !s.ok).map((s) => `${s.id}: ${s.error ?? '?'}`);
}

describe('npm run demo (enforce mode)', () => {
  let result: DemoResult;
  let world: WorldState;
  beforeAll(async () => {
    ({ result, world } = await play(false));
  }, 90_000);

  it('sees every reaction of the story happen', () => {
    expect(failures(result)).toEqual([]);
    expect(result.steps.map((s) => s.id)).toEqual(['start', 'join', 'workspace', 'cluster', 'instance', 'owner', 'secret', 'leave']);
    expect(result.ok).toBe(true);
  });

  it('gives the data scientist who joined the team her role on the team workspace', () => {
    const mine = holds(world, WS.vision, USERS.hedy, ROLES.dataScientist);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.description).toBe('warden:vision-data-scientists');
  });

  it("gives the new workspace every binding's role assignments", () => {
    for (const p of [...VISION_PRINCIPALS, USERS.hedy].filter((id) => id !== USERS.linus)) {
      expect(holds(world, WS.research, p, ROLES.dataScientist)).toHaveLength(1);
    }
    expect(holds(world, WS.research, GROUPS.platform, ROLES.reader)).toHaveLength(1);
  });

  it('assigns the policy identity to the new cluster and keeps everything else as created', () => {
    const c = world.trainCluster;
    expect(c?.identity?.type).toContain('SystemAssigned');
    expect(c?.identity?.principalId).toMatch(/^[0-9a-f-]{36}$/);
    expect(c?.properties).toMatchObject({
      vmSize: 'STANDARD_NC6S_V3',
      remoteLoginPortPublicAccess: 'Disabled',
      scaleSettings: { maxNodeCount: 4, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT300S' },
    });
    expect(c?.disableLocalAuth).toBe(true);
    expect(c?.tags).toEqual({ project: 'defect-detection' });
  });

  it('stops the compute instance created with SSH and local auth', () => {
    expect(world.states.hedy).toBe('Stopped');
  });

  it('rotates the expiring client secret into a new Key Vault version, keeping the old one for the overlap', () => {
    const fresh = world.passwords.filter((p) => p.displayName?.startsWith('warden:'));
    expect(fresh).toHaveLength(1);
    expect(world.passwords.map((p) => p.keyId)).toContain(APPS.nlpInferenceCurrentKeyId);
    expect(world.versions).toHaveLength(2);
    expect(world.versions[1]?.tags.keyId).toBe(fresh[0]?.keyId);
  });

  it('removes the Owner granted by hand and alerts it', () => {
    expect(holds(world, WS.vision, USERS.alan, ROLES.owner)).toEqual([]);
    expect(world.alertTypes).toContainEqual({ type: 'Warden.Rbac.ForbiddenAssignment', subject: WS.vision.toLowerCase() });
  });

  it("takes the leaving member's access away and stops his compute instance", () => {
    for (const ws of [WS.vision, WS.research]) expect(holds(world, ws, USERS.linus, ROLES.dataScientist)).toEqual([]);
    expect(world.states.linus).toBe('Stopped');
    expect(world.alertTypes.map((a) => a.type)).toContain('Warden.Rbac.PrincipalOffboarded');
  });

  it('leaves the hand-made assignment and the exempt workspace alone', () => {
    const grace = holds(world, WS.vision, USERS.grace, ROLES.dataScientist);
    expect(grace.map((a) => a.description)).toEqual(['granted by hand']);
    const dev = WS.vision.replace(/mlw-vision$/, 'mlw-vision-dev');
    expect(world.assignments.filter((a) => a.scope.toLowerCase() === dev.toLowerCase())).toEqual([]);
  });

  it('reports a summary and an audit trail that match what happened', () => {
    const row = (c: string) => result.summary.find((r) => r.capability === c);
    expect(row('rbac')?.fixed).toBeGreaterThanOrEqual(18);
    expect(row('compute')?.fixed).toBe(5);
    expect(row('credentials')?.fixed).toBe(1);
    expect(result.auditRecords).toBeGreaterThan(50);
    expect(result.finalPlan?.changes).toBe(0);
  });
});

describe('npm run demo -- --report', () => {
  let result: DemoResult;
  let world: WorldState;
  beforeAll(async () => {
    ({ result, world } = await play(true));
  }, 90_000);

  it('plans every reaction of the story', () => {
    expect(failures(result)).toEqual([]);
    expect(result.mode).toBe('report');
  });

  it('writes nothing to ARM or Key Vault, and nothing to Graph but its subscription and alert mail', () => {
    expect(world.writes.filter((w) => w.service === 'arm')).toEqual([]);
    expect(world.writes.filter((w) => w.service === 'keyvault')).toEqual([]);
    expect(world.writes.filter((w) => w.service === 'graph' && w.operation !== 'graph.sendMail' && !w.operation.startsWith('graph.subscriptions'))).toEqual([]);
    expect(world.writes.filter((w) => w.operation === 'graph.subscriptions.create')).toHaveLength(1);
  });

  it('changes nothing the story gave it reason to change', () => {
    expect(holds(world, WS.vision, USERS.hedy, ROLES.dataScientist)).toEqual([]);
    expect(world.assignments.filter((a) => a.scope.toLowerCase() === WS.research.toLowerCase())).toEqual([]);
    expect(world.trainCluster?.identity).toBeUndefined();
    expect(world.states).toEqual({ hedy: 'Running', linus: 'Running' });
    expect(holds(world, WS.vision, USERS.alan, ROLES.owner)).toHaveLength(1);
    expect(world.versions).toHaveLength(1);
    expect(world.passwords.filter((p) => p.displayName?.startsWith('warden:'))).toEqual([]);
  });

  it('still alerts and records what it would do', () => {
    expect(world.alertTypes.map((a) => a.type)).toEqual(expect.arrayContaining(['Warden.Rbac.ForbiddenAssignment', 'Warden.Compute.IdentityMissing', 'Warden.Compute.LocalAuthEnabled']));
    expect(result.summary.find((r) => r.capability === 'rbac')?.wouldFix).toBeGreaterThan(0);
    expect(result.finalPlan?.changes).toBeGreaterThan(0);
  });
});
