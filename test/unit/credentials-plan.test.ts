/**
 * The credentials planner: table-driven cases for each rule, and property tests for what users rely
 * on (the secret Key Vault holds is never removed while valid; a valid password Warden did not make is
 * removed only after a rotation superseded it and its overlap passed; plan → apply → plan converges).
 */
import fc from 'fast-check';
import { DAY_MS } from '../../shared/clock';
import { ORPHAN_GRACE_MS, type PendingRemoval, WARDEN_MARK } from '../../shared/credentials/model';
import { type CredentialsPlanInput, FINDING, needsAttention, planCredentials, withNotify } from '../../shared/credentials/plan';
import type { AppCredential, AppRegistration } from '../../shared/ports/applications';
import type { SecretVersion } from '../../shared/ports/secrets';

const NOW = new Date('2026-03-01T00:00:00Z');
const APP_ID = '0a1b2c3d-0000-4000-8000-000000000001';
const OBJECT_ID = '0a1b2c3d-0000-4000-8000-0000000000aa';
const VAULT = 'https://kv1.vault.azure.net';
const ROTATION = { appId: APP_ID, vaultUrl: VAULT, secretName: 'app-secret' };
const POLICY = { warnDays: 30, rotateDaysBefore: 14, lifetimeDays: 90, overlapDays: 7, removeExpired: false };

const iso = (offsetMs: number): string => new Date(NOW.getTime() + offsetMs).toISOString();
const keyId = (n: number): string => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

function pwd(n: number, opts: { endDays: number; startDays?: number; warden?: boolean; name?: string }): AppCredential {
  return {
    kind: 'password',
    keyId: keyId(n),
    displayName: opts.warden ? `${WARDEN_MARK}kv1/app-secret` : (opts.name ?? `secret ${n}`),
    startDateTime: iso((opts.startDays ?? -60) * DAY_MS),
    endDateTime: iso(opts.endDays * DAY_MS),
  };
}

function cert(n: number, endDays: number): AppCredential {
  return { kind: 'certificate', keyId: keyId(n), displayName: `cert ${n}`, startDateTime: iso(-300 * DAY_MS), endDateTime: iso(endDays * DAY_MS), type: 'AsymmetricX509Cert' };
}

function app(passwords: AppCredential[], certificates: AppCredential[] = []): AppRegistration {
  return { id: OBJECT_ID, appId: APP_ID, displayName: 'Vision API', passwords, certificates };
}

function kv(tagKeyId: string | undefined, opts: { enabled?: boolean; expiresDays?: number } = {}): SecretVersion {
  return {
    vaultUrl: VAULT,
    name: 'app-secret',
    version: 'v1',
    enabled: opts.enabled ?? true,
    createdOn: new Date(NOW.getTime() - 30 * DAY_MS),
    updatedOn: undefined,
    expiresOn: opts.expiresDays === undefined ? undefined : new Date(NOW.getTime() + opts.expiresDays * DAY_MS),
    contentType: undefined,
    tags: tagKeyId ? { appId: APP_ID, keyId: tagKeyId, managedBy: 'warden' } : {},
  };
}

function pending(n: number, removeAfterDays: number, reason: PendingRemoval['reason'] = 'superseded'): PendingRemoval {
  return { appId: APP_ID, objectId: OBJECT_ID, keyId: keyId(n), removeAfter: iso(removeAfterDays * DAY_MS), reason, createdAt: iso(-DAY_MS) };
}

function input(over: Partial<CredentialsPlanInput>): CredentialsPlanInput {
  return { appId: APP_ID, now: NOW, policy: POLICY, mode: 'enforce', app: app([]), pending: [], ...over };
}

const actions = (p: ReturnType<typeof planCredentials>): string[] => p.changes.map((c) => `${c.action}:${String(c.data.keyId ?? c.data.supersedes)}`);

describe('planCredentials: findings', () => {
  it('reports nothing for an app whose credentials expire after warnDays', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 60 })], [cert(2, 200)]) }));
    expect(plan.changes).toEqual([]);
    expect(plan.findings).toEqual([]);
  });

  it.each([
    ['a password expiring in 10 days', [pwd(1, { endDays: 10 })], [], FINDING.expiring, 'warning'],
    ['a password expired 3 days ago', [pwd(1, { endDays: -3 })], [], FINDING.expired, 'critical'],
    ['a certificate expiring in 20 days', [], [cert(1, 20)], FINDING.expiring, 'warning'],
    ['a certificate expired yesterday', [], [cert(1, -1)], FINDING.expired, 'critical'],
  ])('alerts %s, one finding per credential with a per-credential subject', (_name, passwords, certificates, type, severity) => {
    const plan = planCredentials(input({ app: app(passwords, certificates) }));
    expect(plan.changes).toEqual([]);
    expect(plan.findings).toHaveLength(1);
    const f = plan.findings[0];
    expect(f?.type).toBe(type);
    expect(f?.severity).toBe(severity);
    expect(f?.subject).toMatch(new RegExp(`^${APP_ID}/(passwordCredentials|keyCredentials)/${keyId(1)}$`));
    expect(f?.details).toMatchObject({ appId: APP_ID, keyId: keyId(1) });
  });

  it('gives each expiring credential of one app its own finding identity', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 5 }), pwd(2, { endDays: 6 })], [cert(3, 7)]) }));
    expect(new Set(plan.findings.map((f) => `${f.type}|${f.subject}`)).size).toBe(3);
  });

  it('keeps findings stable from one day to the next (no countdown in the text, so alerts de-duplicate)', () => {
    const a = planCredentials(input({ app: app([pwd(1, { endDays: 10 })]) }));
    const b = planCredentials(input({ app: app([pwd(1, { endDays: 10 })]), now: new Date(NOW.getTime() + 6 * 3600_000) }));
    expect(b.findings).toEqual(a.findings);
  });

  it('removes expired passwords only with removeExpired, never certificates', () => {
    const creds = [pwd(1, { endDays: -3 }), pwd(2, { endDays: 100 })];
    expect(planCredentials(input({ app: app(creds, [cert(3, -2)]) })).changes).toEqual([]);
    const plan = planCredentials(input({ app: app(creds, [cert(3, -2)]), policy: { ...POLICY, removeExpired: true } }));
    expect(actions(plan)).toEqual([`removePassword:${keyId(1)}`]);
    expect(plan.changes[0]).toMatchObject({ destructive: true, data: { reason: 'expired', objectId: OBJECT_ID } });
    expect(plan.findings.find((f) => f.details.keyId === keyId(1))?.actions[0]).toMatch(/Warden removes it/);
  });

  it('names a rotated app that does not exist', () => {
    const plan = planCredentials(input({ app: undefined, rotation: ROTATION }));
    expect(plan.findings.map((f) => f.type)).toEqual([FINDING.appNotFound]);
    expect(plan.changes).toEqual([]);
    expect(planCredentials(input({ app: undefined })).findings).toEqual([]);
  });

  it('adds the owners to every finding and to the rotation', () => {
    const plan = withNotify(planCredentials(input({ app: app([pwd(1, { endDays: 10 }), pwd(2, { endDays: 12 })]), rotation: ROTATION, vaultCurrent: undefined, mode: 'report' })), ['a@contoso.example']);
    expect(plan.findings.length).toBeGreaterThan(0);
    for (const f of plan.findings) expect(f.notify).toEqual(['a@contoso.example']);
    expect(plan.changes.find((c) => c.action === 'rotateSecret')?.data.notify).toEqual(['a@contoso.example']);
  });
});

describe('planCredentials: rotation', () => {
  it('rotates a listed app whose secret expires in 10 days and Key Vault has none yet', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 10 }), pwd(2, { endDays: 300, name: 'other consumer' })]), rotation: ROTATION, vaultCurrent: undefined }));
    expect(plan.changes).toHaveLength(1);
    const c = plan.changes[0];
    expect(c).toMatchObject({ action: 'rotateSecret', destructive: false, resource: APP_ID, target: APP_ID });
    // Only the expiring password is superseded; the unrelated valid one is left alone.
    expect(c?.data).toMatchObject({ appId: APP_ID, objectId: OBJECT_ID, vaultUrl: VAULT, secretName: 'app-secret', supersedes: [keyId(1)] });
    // In enforce mode the Rotated finding speaks for it; no separate expiry alert.
    expect(plan.findings).toEqual([]);
  });

  it('in report mode alerts the expiring secret and says Warden would rotate it', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 10 })]), rotation: ROTATION, mode: 'report' }));
    expect(plan.findings).toHaveLength(1);
    expect(plan.findings[0]?.actions[0]).toMatch(/would rotate/);
  });

  it('plans nothing when Key Vault holds a Warden password that is far from expiry', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 80, warden: true })]), rotation: ROTATION, vaultCurrent: kv(keyId(1), { expiresDays: 80 }) }));
    expect(plan.changes).toEqual([]);
    expect(plan.findings).toEqual([]);
  });

  it.each([
    ['the current password expires within rotateDaysBefore', [pwd(1, { endDays: 10, warden: true })], kv(keyId(1), { expiresDays: 10 }), [keyId(1)]],
    ['the Key Vault version expires within rotateDaysBefore', [pwd(1, { endDays: 80, warden: true })], kv(keyId(1), { expiresDays: 5 }), [keyId(1)]],
    ['the Key Vault secret points at a password the app no longer has', [pwd(2, { endDays: 300 })], kv(keyId(9), { expiresDays: 80 }), []],
    ['the Key Vault version is disabled', [pwd(1, { endDays: 80, warden: true })], kv(keyId(1), { enabled: false, expiresDays: 80 }), [keyId(1)]],
    ['the Key Vault secret was not written by Warden', [pwd(2, { endDays: 300 })], kv(undefined, { expiresDays: 300 }), []],
  ])('rotates when %s', (_name, passwords, vaultCurrent, supersedes) => {
    const plan = planCredentials(input({ app: app(passwords), rotation: ROTATION, vaultCurrent }));
    expect(plan.changes.map((c) => c.action)).toEqual(['rotateSecret']);
    expect(plan.changes[0]?.data.supersedes).toEqual(supersedes);
  });

  it('removes a pending password once the overlap has passed, and keeps it before', () => {
    const passwords = [pwd(1, { endDays: 5 }), pwd(2, { endDays: 90, startDays: -1, warden: true })];
    const before = planCredentials(input({ app: app(passwords), rotation: ROTATION, vaultCurrent: kv(keyId(2), { expiresDays: 90 }), pending: [pending(1, 6)] }));
    expect(before.changes).toEqual([]);
    expect(before.skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/^Kept until/)]);
    expect(before.findings).toEqual([]);
    const after = planCredentials(input({ app: app(passwords), rotation: ROTATION, vaultCurrent: kv(keyId(2), { expiresDays: 90 }), pending: [pending(1, -0.01)] }));
    expect(actions(after)).toEqual([`removePassword:${keyId(1)}`]);
    expect(after.changes[0]?.data.reason).toBe('overlapEnded');
  });

  it('never removes the password Key Vault holds, even if a removal was recorded for it', () => {
    const plan = planCredentials(input({ app: app([pwd(1, { endDays: 80, warden: true })]), rotation: ROTATION, vaultCurrent: kv(keyId(1), { expiresDays: 80 }), pending: [pending(1, -1)] }));
    expect(plan.changes).toEqual([]);
    expect(plan.skipped[0]?.reason).toMatch(/still held by Key Vault/);
  });

  it('removes an older Warden password once the overlap after the current one has passed (even without a record)', () => {
    const old = pwd(1, { endDays: 20, startDays: -70, warden: true });
    const current = pwd(2, { endDays: 88, startDays: -2, warden: true });
    const within = planCredentials(input({ app: app([old, current]), rotation: ROTATION, vaultCurrent: kv(keyId(2), { expiresDays: 88 }) }));
    expect(within.changes).toEqual([]);
    const later = { ...current, startDateTime: iso(-8 * DAY_MS) };
    const past = planCredentials(input({ app: app([old, later]), rotation: ROTATION, vaultCurrent: kv(keyId(2), { expiresDays: 88 }) }));
    expect(actions(past)).toEqual([`removePassword:${keyId(1)}`]);
  });

  it('removes a Warden password newer than the one Key Vault holds (an unfinished rotation) after the grace period only', () => {
    const current = pwd(1, { endDays: 60, startDays: -30, warden: true });
    const fresh = { ...pwd(2, { endDays: 90, warden: true }), startDateTime: new Date(NOW.getTime() - ORPHAN_GRACE_MS / 2).toISOString() };
    const inFlight = planCredentials(input({ app: app([current, fresh]), rotation: ROTATION, vaultCurrent: kv(keyId(1), { expiresDays: 60 }) }));
    expect(inFlight.changes).toEqual([]);
    const stale = { ...fresh, startDateTime: new Date(NOW.getTime() - ORPHAN_GRACE_MS).toISOString() };
    const orphan = planCredentials(input({ app: app([current, stale]), rotation: ROTATION, vaultCurrent: kv(keyId(1), { expiresDays: 60 }) }));
    expect(actions(orphan)).toEqual([`removePassword:${keyId(2)}`]);
    expect(orphan.changes[0]?.data.reason).toBe('orphaned');
  });

  it('gives a replanned change the same id', () => {
    const i = input({ app: app([pwd(1, { endDays: 10 })]), rotation: ROTATION, pending: [] });
    expect(planCredentials(i).changes.map((c) => c.id)).toEqual(planCredentials(i).changes.map((c) => c.id));
  });
});

describe('needsAttention', () => {
  const opts = { now: NOW, warnDays: 30, rotate: new Set<string>(), pending: new Set<string>() };
  it.each([
    ['nothing expiring', app([pwd(1, { endDays: 100 })]), opts, false],
    ['a password within warnDays', app([pwd(1, { endDays: 29 })]), opts, true],
    ['an expired certificate', app([], [cert(1, -400)]), opts, true],
    ['a rotated app', app([]), { ...opts, rotate: new Set([APP_ID]) }, true],
    ['a pending removal', app([]), { ...opts, pending: new Set([APP_ID]) }, true],
  ])('%s', (_n, a, o, want) => {
    expect(needsAttention(a, o)).toBe(want);
  });
});

// ---- property tests ----

interface World {
  passwords: AppCredential[];
  certificates: AppCredential[];
  vault: SecretVersion | undefined;
  pending: PendingRemoval[];
}

const passwordArb = (i: number) =>
  fc.record({ start: fc.integer({ min: -400, max: 0 }), life: fc.integer({ min: -50, max: 500 }), warden: fc.boolean(), startMinutes: fc.integer({ min: 0, max: 60 }) }).map(
    (r): AppCredential => ({
      kind: 'password',
      keyId: keyId(i),
      displayName: r.warden ? `${WARDEN_MARK}kv1/app-secret` : `secret ${i}`,
      // Some passwords start minutes ago, so the orphan grace period is exercised.
      startDateTime: iso(r.start === 0 ? -r.startMinutes * 60_000 : r.start * DAY_MS),
      endDateTime: iso((r.start + Math.max(r.life, r.start === 0 ? 1 : r.life)) * DAY_MS),
    }),
  );

const worldArb = fc
  .integer({ min: 0, max: 5 })
  .chain((n) =>
    fc.record({
      passwords: n === 0 ? fc.constant([] as AppCredential[]) : fc.tuple(...Array.from({ length: n }, (_, i) => passwordArb(i + 1))),
      certificates: fc.array(fc.integer({ min: -50, max: 400 }).map((d) => cert(100, d)), { maxLength: 1 }),
      vaultKind: fc.constantFrom('absent', 'tagged', 'untagged', 'disabled', 'dangling'),
      vaultPick: fc.nat(),
      vaultExpires: fc.integer({ min: -10, max: 400 }),
      pendingPicks: fc.array(fc.record({ pick: fc.nat(), after: fc.integer({ min: -20, max: 20 }), orphan: fc.boolean() }), { maxLength: 3 }),
    }),
  )
  .map((r): World => {
    const pick = (i: number): AppCredential | undefined => r.passwords[i % Math.max(1, r.passwords.length)];
    const target = pick(r.vaultPick);
    let vault: SecretVersion | undefined;
    if (r.vaultKind === 'tagged' && target) vault = kv(target.keyId, { expiresDays: r.vaultExpires });
    else if (r.vaultKind === 'untagged') vault = kv(undefined, { expiresDays: r.vaultExpires });
    else if (r.vaultKind === 'disabled' && target) vault = kv(target.keyId, { enabled: false, expiresDays: r.vaultExpires });
    else if (r.vaultKind === 'dangling') vault = kv(keyId(999), { expiresDays: r.vaultExpires });
    const pendingList: PendingRemoval[] = [];
    for (const p of r.pendingPicks) {
      const c = pick(p.pick);
      if (c && !pendingList.some((x) => x.keyId === c.keyId)) pendingList.push({ ...pending(0, p.after, p.orphan ? 'orphaned' : 'superseded'), keyId: c.keyId });
    }
    return { passwords: r.passwords, certificates: r.certificates, vault, pending: pendingList };
  });

const policyArb = fc
  .record({
    warnDays: fc.integer({ min: 1, max: 60 }),
    rotateDaysBefore: fc.integer({ min: 1, max: 30 }),
    lifetimeDays: fc.integer({ min: 31, max: 400 }),
    overlapDays: fc.integer({ min: 0, max: 30 }),
    removeExpired: fc.boolean(),
  });

const scenarioArb = fc.record({ world: worldArb, policy: policyArb, rotated: fc.boolean(), mode: fc.constantFrom('enforce' as const, 'report' as const) });

function planFor(s: { world: World; policy: typeof POLICY; rotated: boolean; mode: 'enforce' | 'report' }, now = NOW) {
  return planCredentials({
    appId: APP_ID,
    now,
    policy: s.policy,
    mode: s.mode,
    app: app(s.world.passwords, s.world.certificates),
    rotation: s.rotated ? ROTATION : undefined,
    vaultCurrent: s.rotated ? s.world.vault : undefined,
    pending: s.world.pending,
  });
}

/** What the executor does, on the in-memory world. */
function simulateApply(world: World, plan: ReturnType<typeof planCredentials>, policy: typeof POLICY, step: number): World {
  let passwords = [...world.passwords];
  let pendingList = [...world.pending];
  let vault = world.vault;
  for (const c of plan.changes) {
    if (c.action === 'rotateSecret') {
      const newKey = keyId(500 + step);
      const end = NOW.getTime() + policy.lifetimeDays * DAY_MS;
      passwords.push({ kind: 'password', keyId: newKey, displayName: `${WARDEN_MARK}kv1/app-secret`, startDateTime: NOW.toISOString(), endDateTime: new Date(end).toISOString() });
      vault = { ...kv(newKey), version: `v${step}`, createdOn: NOW, expiresOn: new Date(end) };
      for (const k of c.data.supersedes as string[]) {
        pendingList = pendingList.filter((p) => p.keyId !== k);
        pendingList.push({ ...pending(0, policy.overlapDays), keyId: k });
      }
    }
  }
  for (const c of plan.changes) {
    if (c.action === 'removePassword') {
      passwords = passwords.filter((p) => p.keyId !== c.data.keyId);
      pendingList = pendingList.filter((p) => p.keyId !== c.data.keyId);
    }
  }
  return { ...world, passwords, pending: pendingList, vault };
}

describe('planCredentials: properties', () => {
  it('never removes the valid password Key Vault currently holds', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const plan = planFor(s);
        const v = s.world.vault;
        if (!s.rotated || !v?.enabled || !v.tags.keyId) return;
        const held = s.world.passwords.find((p) => p.keyId === v.tags.keyId);
        if (!held || Date.parse(held.endDateTime ?? '') <= NOW.getTime()) return;
        expect(plan.changes.filter((c) => c.action === 'removePassword').map((c) => c.data.keyId)).not.toContain(held.keyId);
      }),
      { numRuns: 400 },
    );
  });

  it('removes a valid password Warden did not make only through a due pending removal', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const plan = planFor(s);
        for (const c of plan.changes.filter((x) => x.action === 'removePassword')) {
          const p = s.world.passwords.find((x) => x.keyId === c.data.keyId);
          expect(p).toBeDefined();
          if (!p) continue;
          const expired = Date.parse(p.endDateTime ?? '') <= NOW.getTime();
          const wardenMade = (p.displayName ?? '').startsWith(WARDEN_MARK) && s.rotated;
          const duePending = s.world.pending.some((r) => r.keyId === p.keyId && Date.parse(r.removeAfter) <= NOW.getTime());
          expect(wardenMade || duePending || (expired && s.policy.removeExpired)).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('is deterministic, with unique change ids and at most one rotation', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const a = planFor(s);
        expect(planFor(s)).toEqual(a);
        expect(new Set(a.changes.map((c) => c.id)).size).toBe(a.changes.length);
        expect(a.changes.filter((c) => c.action === 'rotateSecret').length).toBeLessThanOrEqual(1);
        if (!s.rotated) expect(a.changes.every((c) => c.action === 'removePassword')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('converges: applying the plan and planning again reaches a plan with no changes, with a valid secret in Key Vault', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        let world = s.world;
        let plan = planFor({ ...s, world });
        let steps = 0;
        while (plan.changes.length > 0 && steps < 3) {
          world = simulateApply(world, plan, s.policy, steps);
          plan = planFor({ ...s, world });
          steps++;
        }
        expect(plan.changes).toEqual([]);
        if (s.rotated) {
          const held = world.passwords.find((p) => p.keyId === world.vault?.tags.keyId);
          expect(held).toBeDefined();
          expect(Date.parse(held?.endDateTime ?? '')).toBeGreaterThan(NOW.getTime() + s.policy.rotateDaysBefore * DAY_MS);
        }
      }),
      { numRuns: 400 },
    );
  });
});
