import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PolicyError } from '../../shared/errors';
import { loadPolicy, parsePolicy, parsePolicyText, policyJsonSchema, substituteSettings } from '../../shared/policy';

const SUB = '/subscriptions/00000000-0000-0000-0000-000000000001';
const G = '11111111-1111-1111-1111-111111111111';
const root = join(__dirname, '..', '..');

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { scopes: [SUB], ...extra };
}

function issuesOf(raw: unknown, settings: Record<string, string> = {}): Array<{ path: string; message: string }> {
  try {
    parsePolicy(raw, settings);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return [...(e as PolicyError).issues];
  }
  throw new Error('expected the policy to be rejected');
}

describe('policy validation', () => {
  it('fills every default from a minimal policy, in report mode first', () => {
    const { policy } = parsePolicy(base());
    expect(policy.mode).toBe('report');
    expect(policy.rbac).toEqual({ bindings: [], prune: 'managed', forbidden: [] });
    expect(policy.compute.identity).toEqual({ type: 'SystemAssigned' });
    expect(policy.compute.onViolation).toEqual({ cluster: 'assign-identity', instance: 'alert' });
    expect(policy.compute.exemptTag).toBe('warden-exempt');
    expect(policy.credentials).toMatchObject({ warnDays: 30, rotateDaysBefore: 14, lifetimeDays: 90, overlapDays: 7, removeExpired: false });
    expect(policy.alerts.repeatHours).toBe(24);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.rbac.bindings)).toBe(true);
  });

  it('defaults a binding to workspaces, auto principals and an empty match', () => {
    const { policy } = parsePolicy(base({ rbac: { bindings: [{ id: 'b', group: G, role: 'Reader' }] } }));
    expect(policy.rbac.bindings[0]).toEqual({
      id: 'b', group: G, role: 'Reader', resourceType: 'Microsoft.MachineLearningServices/workspaces', match: {}, principals: 'auto',
    });
  });

  it('accepts the shipped example policy, which uses every field', () => {
    const text = readFileSync(join(root, 'policy.example.json'), 'utf8');
    const { policy, substitutedValues } = parsePolicyText(text, { WARDEN_ALERT_WEBHOOK: 'https://example.webhook.office.com/hook/abc123' });
    expect(policy.alerts.webhookUrl).toBe('https://example.webhook.office.com/hook/abc123');
    expect(substitutedValues).toEqual(['https://example.webhook.office.com/hook/abc123']);
    expect(policy.rbac.bindings).toHaveLength(3);
    expect(policy.credentials.rotate).toHaveLength(1);
  });

  // Each invalid policy must be refused with a message that names the path and the problem.
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['no scopes', { mode: 'enforce' }, 'scopes', /expected array|required/i],
    ['empty scopes', { scopes: [] }, 'scopes', /at least one scope/],
    ['a scope that is not a subscription', { scopes: ['/providers/Microsoft.Management/managementGroups/x'] }, 'scopes[0]', /\/subscriptions\/<id>/],
    ['an unknown mode', base({ mode: 'yolo' }), 'mode', /enforce|report/],
    ['a group that is not a GUID', base({ rbac: { bindings: [{ id: 'b', group: 'vision-team', role: 'Reader' }] } }), 'rbac.bindings[0].group', /GUID/],
    ['an empty role', base({ rbac: { bindings: [{ id: 'b', group: G, role: '' }] } }), 'rbac.bindings[0].role', /empty/],
    ['a binding without id', base({ rbac: { bindings: [{ group: G, role: 'Reader' }] } }), 'rbac.bindings[0].id', /string/],
    ['duplicate binding ids', base({ rbac: { bindings: [{ id: 'a', group: G, role: 'Reader' }, { id: 'A', group: G, role: 'Owner' }] } }), 'rbac.bindings[1].id', /duplicates/],
    ['an unknown principals mode', base({ rbac: { bindings: [{ id: 'b', group: G, role: 'Reader', principals: 'everyone' }] } }), 'rbac.bindings[0].principals', /auto|group|members/],
    ['a typo in a key', base({ rbac: { bindings: [{ id: 'b', group: G, role: 'Reader', mtach: {} }] } }), 'rbac.bindings[0].mtach', /not a known key/],
    ['an unknown prune value', base({ rbac: { prune: 'all' } }), 'rbac.prune', /managed|none/],
    ['a forbidden rule with an unknown action', base({ rbac: { forbidden: [{ role: 'Owner', action: 'nuke' }] } }), 'rbac.forbidden[0].action', /alert|remove/],
    ['an unknown principal type', base({ rbac: { forbidden: [{ role: 'Owner', principalTypes: ['Robot'] }] } }), 'rbac.forbidden[0].principalTypes[0]', /User/],
    ['a user-assigned identity without a valid id', base({ compute: { identity: { type: 'UserAssigned', id: 'my-identity' } } }), 'compute.identity.id', /user-assigned managed identity/],
    ['an unknown cluster remediation', base({ compute: { onViolation: { cluster: 'stop' } } }), 'compute.onViolation.cluster', /assign-identity/],
    ['an instance remediation that cannot be done', base({ compute: { onViolation: { instance: 'assign-identity' } } }), 'compute.onViolation.instance', /stop|delete|alert/],
    ['rotation due before it is created', base({ credentials: { rotateDaysBefore: 90, lifetimeDays: 30 } }), 'credentials.rotateDaysBefore', /less than lifetimeDays/],
    ['an overlap longer than the lifetime', base({ credentials: { overlapDays: 100, lifetimeDays: 90 } }), 'credentials.overlapDays', /less than lifetimeDays/],
    ['a bad Key Vault secret name', base({ credentials: { rotate: [{ appId: G, vaultUrl: 'https://kv.vault.azure.net', secretName: 'has spaces' }] } }), 'credentials.rotate[0].secretName', /Key Vault secret name/],
    ['a vault over plain http', base({ credentials: { rotate: [{ appId: G, vaultUrl: 'http://kv.vault.azure.net', secretName: 's' }] } }), 'credentials.rotate[0].vaultUrl', /https/],
    ['the same app rotated twice', base({ credentials: { rotate: [{ appId: G, vaultUrl: 'https://a.vault.azure.net', secretName: 's' }, { appId: G, vaultUrl: 'https://b.vault.azure.net', secretName: 't' }] } }), 'credentials.rotate[1].appId', /twice/],
    ['a negative warn window', base({ credentials: { warnDays: -1 } }), 'credentials.warnDays', />=1|too small|1/],
    ['a mail recipient that is not an address', base({ alerts: { mail: { from: 'warden@contoso.com', to: ['not-an-address'] } } }), 'alerts.mail.to[0]', /email/],
    ['a webhook that is not a URL', base({ alerts: { webhookUrl: 'teams channel' } }), 'alerts.webhookUrl', /https URL/],
    ['a hostile, very long role name', base({ rbac: { bindings: [{ id: 'b', group: G, role: 'x'.repeat(10000) }] } }), 'rbac.bindings[0].role', /at most 128/],
    ['a setting reference that is not set', base({ alerts: { webhookUrl: '%MISSING_HOOK%' } }), 'alerts.webhookUrl', /MISSING_HOOK.*not set/],
  ];

  it.each(cases)('refuses %s, naming the path', (_name, raw, path, message) => {
    const issues = issuesOf(raw);
    const hit = issues.find((i) => i.path === path);
    expect(hit).toBeDefined();
    expect(hit?.message).toMatch(message);
  });

  it('reports every problem at once', () => {
    const issues = issuesOf({ mode: 'x', scopes: [], compute: { exemptTag: '' } });
    expect(issues.map((i) => i.path).sort()).toEqual(['compute.exemptTag', 'mode', 'scopes']);
  });

  it('refuses text that is not JSON with a clear message', () => {
    expect(() => parsePolicyText('{ "scopes": [', {})).toThrow(/policy is not valid JSON|not valid JSON/);
  });

  it('puts every issue into the error message, one per line', () => {
    try {
      parsePolicy(base({ mode: 'x', rbac: { bindings: [{ id: 'b', group: 'g', role: 'Reader' }] } }));
      throw new Error('not rejected');
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toContain('  - mode: ');
      expect(msg).toContain('  - rbac.bindings[0].group: ');
    }
  });
});

describe('%NAME% substitution', () => {
  it('replaces whole and embedded references anywhere in the policy', () => {
    const { value, issues, substituted } = substituteSettings(
      { a: '%ONE%', b: ['x-%TWO%-y'], c: { d: 5, e: 'no refs, 50% off' } },
      { ONE: 'first', TWO: 'second' },
    );
    expect(issues).toEqual([]);
    expect(value).toEqual({ a: 'first', b: ['x-second-y'], c: { d: 5, e: 'no refs, 50% off' } });
    expect(substituted).toEqual(['first', 'second']);
  });

  it('names the path of a missing setting', () => {
    const { issues } = substituteSettings({ alerts: { mail: { to: ['%NOPE%'] } } }, {});
    expect(issues).toEqual([{ path: 'alerts.mail.to[0]', message: 'refers to app setting NOPE, which is not set' }]);
  });

  it('applies before validation, so a substituted URL is validated', () => {
    const issues = issuesOf(base({ alerts: { webhookUrl: '%HOOK%' } }), { HOOK: 'not a url' });
    expect(issues).toEqual([{ path: 'alerts.webhookUrl', message: 'must be an https URL' }]);
  });
});

describe('loading the policy', () => {
  it('prefers inline WARDEN_POLICY over the file', () => {
    const loaded = loadPolicy({ policySource: { kind: 'inline', json: JSON.stringify(base({ mode: 'enforce' })) }, appSettings: {} }, () => {
      throw new Error('must not read the file');
    });
    expect(loaded.policy.mode).toBe('enforce');
  });

  it('names the file that cannot be read', () => {
    expect(() => loadPolicy({ policySource: { kind: 'file', path: '/nowhere/policy.json' }, appSettings: {} })).toThrow(/cannot read policy file \/nowhere\/policy.json/);
  });
});

describe('policy.schema.json', () => {
  it('is the schema generated from the zod schema (run `npm run schema` after changing it)', () => {
    const committed = JSON.parse(readFileSync(join(root, 'policy.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(policyJsonSchema());
  });

  it('describes the contract fields', () => {
    const s = policyJsonSchema() as { properties: Record<string, unknown>; required?: string[] };
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['mode', 'scopes', 'rbac', 'compute', 'workspaces', 'credentials', 'alerts']));
    expect(s.required).toContain('scopes');
  });
});
