/**
 * A small in-memory capability (our own domain interface, not an SDK) for the remediation and audit
 * tests: each target has an actual and a desired set of "assignments"; the plan is their difference.
 */
import type { Capability, CapabilityName, Change, ChangeOutcome, Finding, Plan } from '../../shared/capability';
import { InputError, TerminalError, TransientError } from '../../shared/errors';
import { failedOutcome } from '../../shared/reconcile';

export interface FakeWorld {
  actual: Map<string, Set<string>>;
  desired: Map<string, Set<string>>;
  /** Targets that fail to apply: `transient` or `terminal`. */
  failing: Map<string, 'transient' | 'terminal'>;
  outOfScope: Set<string>;
  findings: Map<string, Finding[]>;
  writes: number;
  plans: number;
}

export function fakeWorld(): FakeWorld {
  return { actual: new Map(), desired: new Map(), failing: new Map(), outOfScope: new Set(), findings: new Map(), writes: 0, plans: 0 };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE = /^\/subscriptions\/[0-9a-f-]{36}\/resourceGroups\/[^/]+\/providers\/Microsoft\.MachineLearningServices\/workspaces\/[^/]+$/i;

export function fakeCapability(name: CapabilityName, world: FakeWorld, shape: 'guid' | 'resource' = 'guid'): Capability {
  const re = shape === 'guid' ? GUID : RESOURCE;
  const plan = async (target: string): Promise<Plan> => {
    world.plans++;
    const actual = world.actual.get(target) ?? new Set<string>();
    const desired = world.desired.get(target) ?? new Set<string>();
    const changes: Change[] = [];
    for (const a of [...desired].sort()) {
      if (!actual.has(a)) {
        changes.push({ id: `${name}:${target}:add:${a}`, capability: name, target, action: 'createAssignment', description: `Create assignment ${a} on ${target}`, resource: `${target}/${a}`, destructive: false, data: { assignment: a } });
      }
    }
    for (const a of [...actual].sort()) {
      if (!desired.has(a)) {
        changes.push({ id: `${name}:${target}:del:${a}`, capability: name, target, action: 'deleteAssignment', description: `Delete assignment ${a} on ${target}`, resource: `${target}/${a}`, destructive: true, data: { assignment: a } });
      }
    }
    return { capability: name, target, changes, findings: world.findings.get(target) ?? [], skipped: [] };
  };
  return {
    name,
    async listTargets() {
      return [...new Set([...world.actual.keys(), ...world.desired.keys()])].filter((t) => re.test(t)).sort();
    },
    parseTarget(t) {
      const s = t.trim();
      if (!re.test(s)) throw new InputError('InvalidTarget', `${name} needs a ${shape === 'guid' ? 'group id (a GUID)' : 'workspace resource id'}, got "${s}"`);
      return shape === 'guid' ? s.toLowerCase() : s;
    },
    inScope: (t) => !world.outOfScope.has(t),
    plan,
    async apply(p) {
      const out: ChangeOutcome[] = [];
      for (const c of p.changes) {
        const failing = world.failing.get(p.target);
        if (failing) {
          out.push(failedOutcome(c, failing === 'transient' ? new TransientError('Busy', 'try later') : new TerminalError('AuthorizationFailed', 'Warden may not write here')));
          continue;
        }
        world.writes++;
        const set = world.actual.get(p.target) ?? new Set<string>();
        const a = String(c.data.assignment);
        if (c.action === 'createAssignment') set.add(a);
        else set.delete(a);
        world.actual.set(p.target, set);
        out.push({ change: c, outcome: 'applied', result: c.action === 'createAssignment' ? 'created' : 'deleted' });
      }
      return out;
    },
  };
}

/** All four capability names backed by fakes over one world (rbac and credentials take GUIDs, the others workspace ids). */
export function fakeCapabilities(world: FakeWorld): Record<CapabilityName, Capability> {
  return {
    rbac: fakeCapability('rbac', world, 'guid'),
    workspaces: fakeCapability('workspaces', world, 'resource'),
    compute: fakeCapability('compute', world, 'resource'),
    credentials: fakeCapability('credentials', world, 'guid'),
  };
}
