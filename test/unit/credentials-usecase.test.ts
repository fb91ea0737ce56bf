/**
 * The credentials use cases on small in-memory ports (STYLE §6, second layer): the delta-fed
 * inventory (buckets, quiet rounds, expired links, partial entries, re-sharding), the rotation with
 * its safety rules (compensation, retry with the same credential, orphan clean-up, lease), and the
 * "no secret anywhere" check over logs, audit records, alerts and errors. The same behaviour is
 * checked against the emulator with the real SDKs in test/capabilities/credentials*.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Capability, CapabilityName } from '../../shared/capability';
import { DAY_MS, ManualClock } from '../../shared/clock';
import { createCredentialsCapability, type CredentialsCapability } from '../../shared/credentials/capability';
import { bucketCountFor, CredentialInventory, MAX_BUCKET_CHARS } from '../../shared/credentials/inventory';
import { PARTITIONS, removalKey, WARDEN_MARK } from '../../shared/credentials/model';
import { FINDING } from '../../shared/credentials/plan';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy, type PolicyInput } from '../../shared/policy';
import { MemoryAlerter } from '../../shared/ports/alerts';
import type { AppCredential, AppDelta, AppRegistration, Applications, NewPassword } from '../../shared/ports/applications';
import { DeltaExpiredError } from '../../shared/ports/applications';
import { MemoryAuditLog } from '../../shared/ports/audit';
import type { SecretVersion, Secrets } from '../../shared/ports/secrets';
import { MemoryStateStore } from '../../shared/ports/state';
import { reconcile } from '../../shared/reconcile';
import type { WorkRequest } from '../../shared/work/item';

const START = '2026-03-01T00:00:00Z';
const VAULT = 'https://kv1.vault.azure.net';
const guid = (n: number, prefix = '0000'): string => `${prefix.padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

interface FakeApp {
  reg: AppRegistration;
  owners: string[];
  secrets: Map<string, string>;
}

/** An in-memory tenant behind the Applications port, counting every "Graph request". */
class FakeTenant implements Applications {
  readonly apps = new Map<string, FakeApp>();
  readonly requests: string[] = [];
  private log: Array<{ seq: number; id: string }> = [];
  private seq = 0;
  private epoch = 1;
  pageSize = 100;
  failRemove = 0;
  failAdd = 0;
  /** When set, addPassword waits for it (a slow Graph answer). */
  addGate: Promise<void> | undefined;

  constructor(private readonly clock: ManualClock) {}

  add(reg: Omit<AppRegistration, 'id'> & { id?: string }, owners: string[] = []): AppRegistration {
    const full: AppRegistration = { id: reg.id ?? randomUUID(), ...reg, appId: reg.appId.toLowerCase() };
    this.apps.set(full.id, { reg: full, owners, secrets: new Map() });
    this.changed(full.id);
    return full;
  }
  changed(id: string): void {
    this.log.push({ seq: ++this.seq, id });
  }
  remove(id: string): void {
    this.apps.delete(id);
    this.changed(id);
  }
  expireLinks(): void {
    this.epoch++;
  }
  byAppId(appId: string): FakeApp | undefined {
    return [...this.apps.values()].find((a) => a.reg.appId === appId.toLowerCase());
  }

  async delta(link: string | undefined) {
    let since = 0;
    if (link) {
      const [e, s] = link.split(':').map(Number);
      if (e !== this.epoch) throw new DeltaExpiredError();
      since = s ?? 0;
    }
    const ids = link ? [...new Set(this.log.filter((l) => l.seq > since).map((l) => l.id))] : [...this.apps.keys()];
    const changes: AppDelta[] = ids.map((id) => {
      const a = this.apps.get(id);
      return a ? { id, removed: false, appId: a.reg.appId, displayName: a.reg.displayName, passwords: clone(a.reg.passwords), certificates: clone(a.reg.certificates) } : { id, removed: true };
    });
    const pages = Math.max(1, Math.ceil(changes.length / this.pageSize));
    for (let i = 0; i < pages; i++) this.requests.push('delta');
    return { changes, deltaLink: `${this.epoch}:${this.seq}`, pages };
  }
  async getByAppId(appId: string) {
    this.requests.push('get');
    const a = this.byAppId(appId);
    return a ? { ...a.reg, passwords: clone(a.reg.passwords), certificates: clone(a.reg.certificates) } : undefined;
  }
  async getByObjectId(id: string) {
    this.requests.push('get');
    const a = this.apps.get(id);
    return a ? { ...a.reg, passwords: clone(a.reg.passwords) } : undefined;
  }
  async ownerMails(id: string) {
    this.requests.push('owners');
    return this.apps.get(id)?.owners ?? [];
  }
  async addPassword(id: string, p: { displayName: string; endDateTime: Date }): Promise<NewPassword> {
    this.requests.push('addPassword');
    if (this.addGate) await this.addGate;
    if (this.failAdd > 0) {
      this.failAdd--;
      throw Object.assign(new Error('Insufficient privileges to complete the operation.'), { statusCode: 403, code: 'Authorization_RequestDenied' });
    }
    const a = this.apps.get(id);
    if (!a) throw Object.assign(new Error('not found'), { statusCode: 404 });
    const keyId = randomUUID();
    const secretText = randomBytes(30).toString('base64url');
    const cred: AppCredential = { kind: 'password', keyId, displayName: p.displayName, startDateTime: this.clock.now().toISOString(), endDateTime: p.endDateTime.toISOString() };
    a.reg.passwords.push(cred);
    a.secrets.set(keyId, secretText);
    this.changed(id);
    return { keyId, displayName: p.displayName, startDateTime: cred.startDateTime ?? '', endDateTime: cred.endDateTime ?? '', secretText };
  }
  async removePassword(id: string, keyId: string) {
    this.requests.push('removePassword');
    if (this.failRemove > 0) {
      this.failRemove--;
      throw Object.assign(new Error('Service unavailable'), { statusCode: 503 });
    }
    const a = this.apps.get(id);
    const before = a?.reg.passwords.length ?? 0;
    if (a) a.reg.passwords = a.reg.passwords.filter((p) => p.keyId !== keyId);
    if (a && a.reg.passwords.length !== before) {
      this.changed(id);
      return 'removed' as const;
    }
    return 'absent' as const;
  }
}

const clone = (cs: AppCredential[]): AppCredential[] => cs.map((c) => ({ ...c }));

/** An in-memory Key Vault; `failSets` makes the next writes answer like a 503. */
class FakeVault implements Secrets {
  readonly stored = new Map<string, Array<SecretVersion & { value: string }>>();
  failSets = 0;
  sets = 0;
  constructor(private readonly clock: ManualClock) {}
  async versions(vaultUrl: string, name: string): Promise<SecretVersion[]> {
    return (this.stored.get(`${vaultUrl}|${name.toLowerCase()}`) ?? []).map(({ value: _value, ...v }) => v);
  }
  async set(vaultUrl: string, name: string, value: string, o: { expiresOn: Date; contentType: string; tags: Record<string, string> }): Promise<SecretVersion> {
    this.sets++;
    if (this.failSets > 0) {
      this.failSets--;
      // Like the SDK's RestError: the request (with the secret in its body) rides along on the error.
      throw Object.assign(new Error('The service is unavailable.'), { statusCode: 503, code: 'ServiceUnavailable', request: { body: JSON.stringify({ value }) } });
    }
    const key = `${vaultUrl}|${name.toLowerCase()}`;
    const list = this.stored.get(key) ?? [];
    const v = { vaultUrl, name, version: randomUUID().replace(/-/g, ''), enabled: true, createdOn: this.clock.now(), updatedOn: this.clock.now(), expiresOn: o.expiresOn, contentType: o.contentType, tags: o.tags, value };
    list.push(v);
    this.stored.set(key, list);
    const { value: _v, ...props } = v;
    return props;
  }
  latest(name: string): (SecretVersion & { value: string }) | undefined {
    return this.stored.get(`${VAULT}|${name.toLowerCase()}`)?.at(-1);
  }
}

const ROTATED_APP = guid(1, 'aaaa');

function policyWith(over: Partial<NonNullable<PolicyInput['credentials']>> = {}, mode: 'enforce' | 'report' = 'enforce') {
  return parsePolicy({
    mode,
    scopes: ['/subscriptions/00000000-0000-0000-0000-000000000001'],
    credentials: { rotate: [{ appId: ROTATED_APP, vaultUrl: VAULT, secretName: 'app-secret' }], ...over },
    alerts: { mail: { from: 'warden@contoso.example', notifyOwners: true } },
  }).policy;
}

function setup(over: Partial<NonNullable<PolicyInput['credentials']>> = {}, mode: 'enforce' | 'report' = 'enforce', options: { rotationLeaseMs?: number } = {}) {
  const clock = new ManualClock(START);
  const tenant = new FakeTenant(clock);
  const vault = new FakeVault(clock);
  const state = new MemoryStateStore();
  const sink = memorySink();
  const logger = createLogger(sink, {}, () => clock.now());
  const policy = policyWith(over, mode);
  /** What the capability queued, and whether queueing fails. */
  const queued: Array<{ items: WorkRequest[]; delayMs: number | undefined }> = [];
  const queue = { fail: false };
  const enqueue = async (items: WorkRequest[], o: { delayMs?: number } = {}): Promise<void> => {
    if (queue.fail) throw new Error('The queue is unavailable');
    queued.push({ items, delayMs: o.delayMs });
  };
  const capability = createCredentialsCapability({ policy, clock, logger, state, ports: { applications: tenant, secrets: vault }, enqueue, ...options });
  const audit = new MemoryAuditLog();
  const alerter = new MemoryAlerter();
  const stub = (name: CapabilityName): Capability => ({
    name,
    listTargets: async () => [],
    parseTarget: (t) => t,
    inScope: () => false,
    plan: async () => {
      throw new Error('not used');
    },
    apply: async () => [],
  });
  const capabilities = { rbac: stub('rbac'), workspaces: stub('workspaces'), compute: stub('compute'), credentials: capability };
  const run = (target: string, dryRun = false) =>
    reconcile({ capability: 'credentials', target, trigger: { kind: 'schedule', id: 'sweep' }, dryRun }, { capabilities, audit, alerter, mode: policy.mode, logger, clock });
  /** A sweep: list targets, reconcile each. */
  const sweep = async () => {
    const targets = await capability.listTargets();
    const reports = [];
    for (const t of targets) reports.push(await run(t));
    return { targets, reports };
  };
  return { clock, tenant, vault, state, sink, logger, policy, capability, audit, alerter, run, sweep, queued, queue };
}

function password(n: number, endInDays: number, clock: ManualClock, name = `secret ${n}`): AppCredential {
  return {
    kind: 'password',
    keyId: guid(n, 'beef'),
    displayName: name,
    startDateTime: new Date(clock.now().getTime() - 300 * DAY_MS).toISOString(),
    endDateTime: new Date(clock.now().getTime() + endInDays * DAY_MS).toISOString(),
  };
}

describe('credential inventory', () => {
  function inventory(h: ReturnType<typeof setup>): CredentialInventory {
    return new CredentialInventory({ state: h.state, applications: h.tenant, clock: h.clock, logger: h.logger });
  }

  it('scans a 2,000-app tenant once, then answers a quiet round with one request and no bucket writes', async () => {
    const h = setup();
    for (let i = 0; i < 2000; i++) h.tenant.add({ appId: guid(i), displayName: `app ${i}`, passwords: [password(i, 100 + (i % 300), h.clock)], certificates: [] });
    const inv = inventory(h);
    const first = await inv.sync();
    expect(first.full).toBe(true);
    expect(first.apps.size).toBe(2000);
    expect(h.tenant.requests).toHaveLength(20);
    const rows = await h.state.list<{ apps?: unknown[] }>(PARTITIONS.inventory);
    expect(rows.length).toBeLessThan(200);
    for (const r of rows) expect(JSON.stringify(r.value).length).toBeLessThanOrEqual(MAX_BUCKET_CHARS + 20);

    const etags = new Map(rows.map((r) => [r.key, r.etag]));
    h.tenant.requests.length = 0;
    const second = await inv.sync();
    expect(second.full).toBe(false);
    expect(second.apps.size).toBe(2000);
    expect(h.tenant.requests).toEqual(['delta']);
    const after = await h.state.list(PARTITIONS.inventory);
    const rewritten = after.filter((r) => r.key !== 'meta' && etags.get(r.key) !== r.etag);
    expect(rewritten).toEqual([]);
  });

  it('merges changes, removals and entries without unchanged properties; looks one app up by app id', async () => {
    const h = setup();
    const a = h.tenant.add({ appId: guid(1), displayName: 'one', passwords: [password(1, 10, h.clock)], certificates: [] });
    const b = h.tenant.add({ appId: guid(2), displayName: 'two', passwords: [], certificates: [] });
    const inv = inventory(h);
    await inv.sync();
    h.tenant.remove(b.id);
    const appA = h.tenant.apps.get(a.id);
    if (!appA) throw new Error('missing');
    appA.reg.passwords.push(password(7, 50, h.clock));
    h.tenant.changed(a.id);
    // Graph may omit unchanged properties: drop appId and displayName from this round's entry.
    const real = h.tenant.delta.bind(h.tenant);
    h.tenant.delta = async (link) => {
      const r = await real(link);
      return { ...r, changes: r.changes.map((c): AppDelta => (c.removed ? c : { id: c.id, removed: false, ...(c.passwords ? { passwords: c.passwords } : {}) })) };
    };
    const snap = await inv.sync();
    expect([...snap.apps.keys()]).toEqual([guid(1)]);
    expect(snap.apps.get(guid(1))?.displayName).toBe('one');
    expect(snap.apps.get(guid(1))?.passwords.map((p) => p.keyId)).toEqual([guid(1, 'beef'), guid(7, 'beef')]);
    expect((await inv.lookup(guid(1).toUpperCase()))?.app?.passwords).toHaveLength(2);
    expect((await inv.lookup(guid(2)))?.app).toBeUndefined();
  });

  it('reads an unknown app reported without its app id once, by object id', async () => {
    const h = setup();
    const inv = inventory(h);
    await inv.sync();
    const c = h.tenant.add({ appId: guid(3), displayName: 'three', passwords: [], certificates: [] });
    const real = h.tenant.delta.bind(h.tenant);
    h.tenant.delta = async (link) => {
      const r = await real(link);
      return { ...r, changes: r.changes.map((x): AppDelta => ({ id: x.id, removed: x.removed })) };
    };
    const snap = await inv.sync();
    expect(snap.apps.get(guid(3))?.id).toBe(c.id);
    expect(h.tenant.requests.filter((r) => r === 'get')).toHaveLength(1);
  });

  it('falls back to a full scan when Graph refuses the stored delta link', async () => {
    const h = setup();
    h.tenant.add({ appId: guid(1), displayName: 'one', passwords: [], certificates: [] });
    const inv = inventory(h);
    await inv.sync();
    h.tenant.expireLinks();
    const snap = await inv.sync();
    expect(snap.full).toBe(true);
    expect(snap.apps.size).toBe(1);
    const keys = (await h.state.list(PARTITIONS.inventory)).map((r) => r.key);
    expect(keys.every((k) => k === 'meta' || k.startsWith('g2-'))).toBe(true);
  });

  it('re-shards into more buckets when a delta round overfills one', async () => {
    const h = setup();
    h.tenant.add({ appId: guid(0), displayName: 'seed', passwords: [], certificates: [] });
    const inv = inventory(h);
    await inv.sync();
    const metaBefore = (await h.state.get<{ buckets: number }>(PARTITIONS.inventory, 'meta'))?.value.buckets ?? 0;
    const many = Array.from({ length: 8 }, (_, i) => password(i, 100, h.clock, `a long display name ${'x'.repeat(200)}`));
    for (let i = 1; i <= 600; i++) h.tenant.add({ appId: guid(i), displayName: `app ${i} ${'y'.repeat(100)}`, passwords: many, certificates: [] });
    const snap = await inv.sync();
    expect(snap.apps.size).toBe(601);
    const metaAfter = (await h.state.get<{ buckets: number; gen: number }>(PARTITIONS.inventory, 'meta'))?.value;
    expect(metaAfter?.buckets).toBeGreaterThan(metaBefore);
    for (const r of await h.state.list(PARTITIONS.inventory)) expect(JSON.stringify(r.value).length).toBeLessThanOrEqual(MAX_BUCKET_CHARS + 20);
    expect((await inv.lookup(guid(600)))?.app?.passwords).toHaveLength(8);
    expect(bucketCountFor(1)).toBe(16);
  });
});

describe('credentials capability (in-memory ports)', () => {
  function seedRotated(h: ReturnType<typeof setup>, endInDays = 10): AppRegistration {
    return h.tenant.add({ appId: ROTATED_APP, displayName: 'Vision API', passwords: [password(1, endInDays, h.clock, 'original')], certificates: [] }, ['owner@contoso.example']);
  }

  it('rotates a listed app whose secret expires in 10 days, then removes the old one after the overlap', async () => {
    const h = setup();
    const app = seedRotated(h);
    for (let i = 2; i < 50; i++) h.tenant.add({ appId: guid(i), displayName: `quiet ${i}`, passwords: [password(i, 200, h.clock)], certificates: [] });

    const first = await h.sweep();
    expect(first.targets).toEqual([ROTATED_APP]);
    const report = first.reports[0];
    expect(report?.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['rotateSecret:applied']);
    const reg = h.tenant.apps.get(app.id)?.reg;
    const added = reg?.passwords.find((p) => p.displayName?.startsWith(WARDEN_MARK));
    expect(added).toBeDefined();
    expect(Date.parse(added?.endDateTime ?? '')).toBe(h.clock.now().getTime() + 90 * DAY_MS);
    const stored = h.vault.latest('app-secret');
    expect(stored?.value).toBe(h.tenant.apps.get(app.id)?.secrets.get(added?.keyId ?? ''));
    expect(stored?.tags).toEqual({ appId: ROTATED_APP, keyId: added?.keyId, managedBy: 'warden' });
    expect(stored?.expiresOn?.toISOString()).toBe(added?.endDateTime);
    const rotated = h.alerter.sent.find((f) => f.type === FINDING.rotated);
    expect(rotated?.notify).toEqual(['owner@contoso.example']);

    // Inside the overlap: nothing to do, the old password stays.
    h.clock.advance(6 * DAY_MS);
    const during = await h.sweep();
    expect(during.reports.flatMap((r) => r.plan.changes)).toEqual([]);
    expect(reg?.passwords).toHaveLength(2);

    h.clock.advance(1 * DAY_MS + 1000);
    const after = await h.sweep();
    expect(after.reports.flatMap((r) => r.outcomes.map((o) => `${o.change.action}:${o.outcome}:${String(o.change.data.keyId)}`))).toEqual([`removePassword:applied:${guid(1, 'beef')}`]);
    expect(h.tenant.apps.get(app.id)?.reg.passwords.map((p) => p.keyId)).toEqual([added?.keyId]);
    expect(await h.state.list(PARTITIONS.removals)).toEqual([]);

    const again = await h.sweep();
    expect(again.reports.flatMap((r) => r.plan.changes)).toEqual([]);
  });

  it('keeps a second sweep of a quiet tenant at one Graph request, even after a rotation', async () => {
    const h = setup();
    seedRotated(h);
    for (let i = 2; i < 300; i++) h.tenant.add({ appId: guid(i), displayName: `app ${i}`, passwords: [password(i, i % 3 === 0 ? 20 : 200, h.clock)], certificates: [] }, ['o@contoso.example']);
    await h.sweep();
    h.tenant.requests.length = 0;
    const second = await h.sweep();
    expect(second.targets.length).toBeGreaterThan(90);
    expect(h.tenant.requests).toEqual(['delta']);
  });

  it('leaves no extra password when Key Vault keeps failing, and a retry completes the rotation', async () => {
    const h = setup();
    const app = seedRotated(h);
    h.vault.failSets = 100;
    const failed = await h.run(ROTATED_APP);
    expect(failed.retryable).toBe(true);
    expect(failed.outcomes[0]).toMatchObject({ outcome: 'failed', error: { retryable: true } });
    expect(h.tenant.apps.get(app.id)?.reg.passwords.map((p) => p.keyId)).toEqual([guid(1, 'beef')]);
    expect(h.vault.latest('app-secret')).toBeUndefined();

    h.vault.failSets = 0;
    const retried = await h.run(ROTATED_APP);
    expect(retried.outcomes.map((o) => o.outcome)).toEqual(['applied']);
    expect(h.tenant.apps.get(app.id)?.reg.passwords).toHaveLength(2);
  });

  it('retries the Key Vault write with the same credential before giving up on it', async () => {
    const h = setup();
    const app = seedRotated(h);
    h.vault.failSets = 1;
    const report = await h.run(ROTATED_APP);
    expect(report.outcomes.map((o) => o.outcome)).toEqual(['applied']);
    expect(h.tenant.requests.filter((r) => r === 'addPassword')).toHaveLength(1);
    expect(h.vault.sets).toBe(2);
    const added = h.tenant.apps.get(app.id)?.reg.passwords.find((p) => p.displayName?.startsWith(WARDEN_MARK));
    expect(h.vault.latest('app-secret')?.tags.keyId).toBe(added?.keyId);
  });

  it('records a password it could not take back, and the next reconcile removes it', async () => {
    const h = setup();
    const app = seedRotated(h);
    h.vault.failSets = 100;
    h.tenant.failRemove = 3;
    await h.run(ROTATED_APP);
    const orphan = h.tenant.apps.get(app.id)?.reg.passwords.find((p) => p.displayName?.startsWith(WARDEN_MARK));
    expect(orphan).toBeDefined();
    expect((await h.state.get(PARTITIONS.removals, removalKey(ROTATED_APP, orphan?.keyId ?? '')))?.value).toMatchObject({ reason: 'orphaned' });

    h.vault.failSets = 0;
    const next = await h.run(ROTATED_APP);
    expect(next.outcomes.map((o) => `${o.change.action}:${o.outcome}`).sort()).toEqual(['removePassword:applied', 'rotateSecret:applied']);
    const warden = h.tenant.apps.get(app.id)?.reg.passwords.filter((p) => p.displayName?.startsWith(WARDEN_MARK)) ?? [];
    expect(warden.map((p) => p.keyId)).toEqual([h.vault.latest('app-secret')?.tags.keyId]);
  });

  it('does not rotate twice when reconciled twice (duplicate event), and plans nothing the second time', async () => {
    const h = setup();
    seedRotated(h);
    await h.run(ROTATED_APP);
    const second = await h.run(ROTATED_APP);
    expect(second.plan.changes).toEqual([]);
    expect(h.tenant.requests.filter((r) => r === 'addPassword')).toHaveLength(1);
    expect(h.vault.sets).toBe(1);
  });

  it('leaves a rotation another run holds: the item completes, a re-check is queued for when the lease ends, and a crashed holder is picked up then', async () => {
    const h = setup();
    const app = seedRotated(h);
    const until = new Date(h.clock.now().getTime() + 60_000);
    // A holder that crashed: its lease is never renewed nor released.
    await h.state.put(PARTITIONS.locks, ROTATED_APP, { owner: 'someone', until: until.toISOString() });
    const report = await h.run(ROTATED_APP);
    expect(report.outcomes.map((o) => [o.change.action, o.outcome, o.result])).toEqual([['rotateSecret', 'skipped', 'rotationInProgress']]);
    // Not a failure: the work item is not retried on the queue's schedule (and never poisoned).
    expect(report.retryable).toBe(false);
    expect(h.alerter.sent.some((f) => f.type === 'Warden.Credentials.ChangeFailed')).toBe(false);
    expect(h.tenant.requests).not.toContain('addPassword');
    expect(h.queued).toHaveLength(1);
    const followUp = h.queued[0];
    expect(followUp?.items).toEqual([expect.objectContaining({ capability: 'credentials', target: ROTATED_APP, trigger: expect.objectContaining({ kind: 'followup' }) })]);
    expect(followUp?.delayMs).toBeGreaterThanOrEqual(60_000);
    expect(followUp?.delayMs).toBeLessThanOrEqual(65_000);

    // The re-check, when the lease has run out: the rotation is done once.
    h.clock.advance(followUp?.delayMs ?? 0);
    const recheck = await h.run(ROTATED_APP);
    expect(recheck.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['rotateSecret:applied']);
    expect(h.tenant.requests.filter((r) => r === 'addPassword')).toHaveLength(1);
    expect(h.vault.sets).toBe(1);
    expect(h.vault.latest('app-secret')?.tags.keyId).toBe(h.tenant.apps.get(app.id)?.reg.passwords.find((p) => p.displayName?.startsWith(WARDEN_MARK))?.keyId);
    expect(await h.state.get(PARTITIONS.locks, ROTATED_APP)).toBeUndefined();
  });

  it('renews the lease while a slow rotation runs: a concurrent run defers to it and its re-check finds nothing to do', async () => {
    const h = setup({}, 'enforce', { rotationLeaseMs: 90 });
    seedRotated(h);
    let open: () => void = () => undefined;
    h.tenant.addGate = new Promise<void>((resolve) => (open = resolve));
    const first = h.run(ROTATED_APP);
    const deadline = Date.now() + 5000;
    while (!h.tenant.requests.includes('addPassword') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const taken = (await h.state.get<{ until: string }>(PARTITIONS.locks, ROTATED_APP))?.value.until;
    // Well past the lease as first taken; only renewals (every 30 ms) keep it.
    h.clock.advance(500);
    await new Promise((r) => setTimeout(r, 120));
    const renewed = (await h.state.get<{ until: string }>(PARTITIONS.locks, ROTATED_APP))?.value.until;
    expect(Date.parse(renewed ?? '')).toBeGreaterThan(h.clock.now().getTime());
    expect(Date.parse(renewed ?? '')).toBeGreaterThan(Date.parse(taken ?? ''));

    const second = await h.run(ROTATED_APP);
    expect(second.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['rotateSecret:skipped']);
    expect(second.retryable).toBe(false);
    expect(h.queued).toHaveLength(1);

    open();
    const done = await first;
    expect(done.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['rotateSecret:applied']);
    expect(await h.state.get(PARTITIONS.locks, ROTATED_APP)).toBeUndefined();
    h.clock.advance(h.queued[0]?.delayMs ?? 0);
    const recheck = await h.run(ROTATED_APP);
    expect(recheck.plan.changes).toEqual([]);
    expect(h.tenant.requests.filter((r) => r === 'addPassword')).toHaveLength(1);
    expect(h.vault.sets).toBe(1);
  });

  it('fails the rotation transiently when the re-check cannot be queued, so the work item is retried', async () => {
    const h = setup();
    seedRotated(h);
    await h.state.put(PARTITIONS.locks, ROTATED_APP, { owner: 'someone', until: new Date(h.clock.now().getTime() + 60_000).toISOString() });
    h.queue.fail = true;
    const report = await h.run(ROTATED_APP);
    expect(report.outcomes[0]).toMatchObject({ outcome: 'failed', error: { code: 'RotationInProgress', retryable: true } });
    expect(report.retryable).toBe(true);
    expect(h.tenant.requests).not.toContain('addPassword');
  });

  it('explains a 403 from addPassword: Warden must own the app (terminal, alerted)', async () => {
    const h = setup();
    seedRotated(h);
    h.tenant.failAdd = 1;
    const report = await h.run(ROTATED_APP);
    expect(report.outcomes[0]).toMatchObject({ outcome: 'failed', error: { code: 'NotAnOwner', retryable: false } });
    expect(h.alerter.sent.some((f) => f.type === 'Warden.Credentials.ChangeFailed' && /owner/.test(f.summary))).toBe(true);
  });

  it('in report mode plans and alerts but writes nothing', async () => {
    const h = setup({}, 'report');
    seedRotated(h);
    const report = await h.run(ROTATED_APP);
    expect(report.outcomes.map((o) => o.outcome)).toEqual(['planned']);
    expect(h.tenant.requests.filter((r) => r === 'addPassword' || r === 'removePassword')).toEqual([]);
    expect(h.vault.sets).toBe(0);
    expect(h.alerter.sent.map((f) => f.type)).toEqual([FINDING.expiring]);
  });

  it('alerts expiring credentials of apps it does not rotate to their owners, and removes expired ones with removeExpired', async () => {
    const h = setup({ removeExpired: true });
    const other = h.tenant.add({ appId: guid(9), displayName: 'Legacy', passwords: [password(5, -2, h.clock), password(6, 20, h.clock)], certificates: [] }, ['legacy-owner@contoso.example']);
    const { reports } = await h.sweep();
    const r = reports.find((x) => x.target === guid(9));
    expect(r?.outcomes.map((o) => `${o.change.action}:${o.outcome}`)).toEqual(['removePassword:applied']);
    expect(h.tenant.apps.get(other.id)?.reg.passwords.map((p) => p.keyId)).toEqual([guid(6, 'beef')]);
    const found = h.alerter.sent.filter((f) => f.subject.startsWith(guid(9)));
    expect(found.map((f) => f.type).sort()).toEqual([FINDING.expired, FINDING.expiring]);
    for (const f of found) expect(f.notify).toEqual(['legacy-owner@contoso.example']);
  });

  it('never lets the secret text reach a log line, an audit record, an alert or an error message', async () => {
    const h = setup();
    const app = seedRotated(h);
    h.vault.failSets = 100;
    h.tenant.failRemove = 3;
    const failed = await h.run(ROTATED_APP);
    const lostSecret = [...(h.tenant.apps.get(app.id)?.secrets.values() ?? [])];
    h.vault.failSets = 1;
    const reports = [failed, await h.run(ROTATED_APP)];
    h.clock.advance(8 * DAY_MS);
    reports.push(...(await h.sweep()).reports);

    const secrets = [...lostSecret, ...(h.vault.stored.get(`${VAULT}|app-secret`) ?? []).map((v) => v.value)];
    expect(secrets.length).toBeGreaterThanOrEqual(2);
    const channels: Array<[string, string]> = [
      ...h.sink.records.map((r, i): [string, string] => [`log record ${i}`, JSON.stringify(r)]),
      ['log text', h.sink.text()],
      ...h.audit.records.map((r, i): [string, string] => [`audit record ${i}`, JSON.stringify(r)]),
      ...h.alerter.sent.map((f, i): [string, string] => [`alert ${i}`, JSON.stringify(f)]),
      ...reports.map((r, i): [string, string] => [`report ${i} (plan, outcomes, error messages)`, JSON.stringify(r)]),
      ...(await h.state.list(PARTITIONS.removals)).map((r): [string, string] => [`state ${r.key}`, JSON.stringify(r)]),
      ...(await h.state.list(PARTITIONS.inventory)).map((r): [string, string] => [`state ${r.key}`, JSON.stringify(r)]),
    ];
    expect(channels.some(([, text]) => text.includes('rotateSecret'))).toBe(true);
    // Name the channel, never print the text: a failing run must not put the secret into the test output.
    const leaks = channels.filter(([, text]) => secrets.some((s) => text.includes(s))).map(([where]) => where);
    expect(leaks).toEqual([]);
  });

  it('plans an app from Graph when the inventory is stale, and from the inventory right after a sweep', async () => {
    const h = setup();
    h.tenant.add({ appId: guid(4), displayName: 'four', passwords: [password(4, 5, h.clock)], certificates: [] });
    await h.capability.listTargets();
    h.tenant.requests.length = 0;
    await h.capability.plan(guid(4));
    expect(h.tenant.requests.filter((r) => r === 'get')).toEqual([]);
    h.clock.advance(11 * 60 * 1000);
    await h.capability.plan(guid(4));
    expect(h.tenant.requests.filter((r) => r === 'get')).toEqual(['get']);
  });

  it('validates targets as app ids', () => {
    const h = setup();
    const cap: CredentialsCapability = h.capability;
    expect(cap.parseTarget(` ${ROTATED_APP.toUpperCase()} `)).toBe(ROTATED_APP);
    expect(() => cap.parseTarget('/subscriptions/x')).toThrow(/GUID/);
  });
});
