/** HTTP helpers: error envelope, bounded JSON bodies, input codes, caller identity and the role check. */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { InputError, ThrottledError, TransientError, WardenError } from '../../shared/errors';
import {
  authorizeCaller, httpRoute, identifyCaller, jsonResponse, parseInput, parsePrincipal, queryObject, readJsonBody, toErrorResponse,
} from '../../shared/http';
import { forgetSecret, registerSecret } from '../../shared/redact';

const principal = (claims: Array<{ typ: string; val: string }>, extra: Record<string, unknown> = {}): string =>
  Buffer.from(JSON.stringify({ auth_typ: 'aad', name_typ: 'preferred_username', role_typ: 'roles', claims, ...extra })).toString('base64');

function post(body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }): HttpRequest {
  return new HttpRequest({ method: 'POST', url: 'https://warden.example/api/remediate', headers, ...(body !== undefined ? { body: { string: body } } : {}) });
}

async function expectInputError(p: Promise<unknown>, status: number, code: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).status).toBe(status);
  expect((err as InputError).code).toBe(code);
}

describe('readJsonBody', () => {
  it('parses a JSON body', async () => {
    await expect(readJsonBody(post('{"capability":"rbac"}'))).resolves.toEqual({ capability: 'rbac' });
    await expect(readJsonBody(post('{}', { 'content-type': 'application/merge-patch+json' }))).resolves.toEqual({});
  });

  it('refuses a body over the limit by its Content-Length and while reading', async () => {
    await expectInputError(readJsonBody(post('{}', { 'content-type': 'application/json', 'content-length': String(1024 * 1024) })), 413, 'PayloadTooLarge');
    const big = JSON.stringify({ target: 'x'.repeat(70 * 1024) });
    await expectInputError(readJsonBody(post(big, { 'content-type': 'application/json' })), 413, 'PayloadTooLarge');
    await expectInputError(readJsonBody(post('{"a":1}'), { maxBytes: 3 }), 413, 'PayloadTooLarge');
  });

  it('refuses other media types with 415, bad JSON with 400, and a missing body', async () => {
    await expectInputError(readJsonBody(post('{}', { 'content-type': 'text/plain' })), 415, 'UnsupportedMediaType');
    await expectInputError(readJsonBody(post('{}', {})), 415, 'UnsupportedMediaType');
    await expectInputError(readJsonBody(post('{"capability":')), 400, 'InvalidJson');
    await expectInputError(readJsonBody(post(undefined)), 400, 'BodyRequired');
    await expect(readJsonBody(post(undefined), { required: false })).resolves.toBeUndefined();
  });
});

describe('parseInput and queryObject', () => {
  const schema = z.strictObject({ capability: z.enum(['rbac', 'all']), target: z.string().max(5).optional() });
  const codes = { capability: 'UnknownCapability', target: 'InvalidTarget' };

  it('names the failing field in the code and the message', () => {
    expect(() => parseInput(schema, { capability: 'nope' }, codes)).toThrow(expect.objectContaining({ code: 'UnknownCapability', status: 400 }));
    expect(() => parseInput(schema, { capability: 'rbac', target: 'toolong' }, codes)).toThrow(expect.objectContaining({ code: 'InvalidTarget' }));
    expect(() => parseInput(schema, { capability: 'rbac', dryrun: true }, codes)).toThrow(expect.objectContaining({ code: 'UnknownField', message: expect.stringContaining('dryrun') }));
    expect(() => parseInput(schema, [], codes)).toThrow(expect.objectContaining({ code: 'InvalidInput' }));
    expect(parseInput(schema, { capability: 'all' }, codes)).toEqual({ capability: 'all' });
  });

  it('takes only the named parameters and refuses one given twice', () => {
    const req = new HttpRequest({ method: 'GET', url: 'https://w.example/api/plan?capability=rbac&code=KEY&x=1' });
    expect(queryObject(req, ['capability', 'target'])).toEqual({ capability: 'rbac' });
    const twice = new HttpRequest({ method: 'GET', url: 'https://w.example/api/plan?capability=rbac&capability=all' });
    expect(() => queryObject(twice, ['capability'])).toThrow(expect.objectContaining({ code: 'DuplicateParameter', status: 400 }));
  });
});

describe('caller identity', () => {
  const headers = (h: Record<string, string>) => new HttpRequest({ method: 'GET', url: 'https://w.example/api/plan', headers: h });

  it('reads name and roles from the App Service Authentication principal', () => {
    const c = parsePrincipal(principal([
      { typ: 'preferred_username', val: 'ada@contoso.example' },
      { typ: 'roles', val: 'Warden.Remediate' },
      { typ: 'roles', val: 'Reader' },
    ]));
    expect(c).toEqual({ kind: 'principal', name: 'ada@contoso.example', roles: ['Warden.Remediate', 'Reader'] });
    const longForm = parsePrincipal(principal([{ typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role', val: 'Warden.Remediate' }, { typ: 'appid', val: 'app-1' }], { role_typ: undefined, name_typ: undefined }));
    expect(longForm).toEqual({ kind: 'principal', name: 'app-1', roles: ['Warden.Remediate'] });
  });

  it('refuses a malformed principal header with 401', () => {
    expect(() => parsePrincipal('%%%not-base64')).toThrow(expect.objectContaining({ status: 401, code: 'InvalidPrincipal' }));
    expect(() => parsePrincipal(Buffer.from('{"claims":"x"}').toString('base64'))).toThrow(expect.objectContaining({ status: 401, code: 'InvalidPrincipal' }));
  });

  it('trusts the header only when App Service Authentication is on', () => {
    const req = headers({ 'x-ms-client-principal': principal([{ typ: 'preferred_username', val: 'mallory' }, { typ: 'roles', val: 'Warden.Remediate' }]) });
    expect(identifyCaller(req, { appServiceAuthEnabled: false })).toEqual({ kind: 'function-key', name: 'function-key', roles: [] });
    expect(identifyCaller(req, { appServiceAuthEnabled: true }).name).toBe('mallory');
    expect(identifyCaller(headers({}), { appServiceAuthEnabled: true }).kind).toBe('function-key');
  });

  it('requires the remediation role when one is set: 401 without a principal, 403 without the role', () => {
    const role = { remediationRole: 'Warden.Remediate', appServiceAuthEnabled: true };
    expect(() => authorizeCaller({ kind: 'function-key', name: 'function-key', roles: [] }, { remediationRole: undefined, appServiceAuthEnabled: false })).not.toThrow();
    expect(() => authorizeCaller({ kind: 'function-key', name: 'function-key', roles: [] }, role)).toThrow(expect.objectContaining({ status: 401, code: 'PrincipalRequired' }));
    expect(() => authorizeCaller({ kind: 'function-key', name: 'function-key', roles: [] }, { ...role, appServiceAuthEnabled: false })).toThrow(
      expect.objectContaining({ status: 401, message: expect.stringContaining('App Service Authentication is not enabled') }),
    );
    expect(() => authorizeCaller({ kind: 'principal', name: 'bob', roles: ['Reader'] }, role)).toThrow(expect.objectContaining({ status: 403, code: 'RoleRequired' }));
    expect(() => authorizeCaller({ kind: 'principal', name: 'ada', roles: ['Warden.Remediate'] }, role)).not.toThrow();
  });
});

describe('error envelope', () => {
  it('answers input errors with their status, code and message', () => {
    expect(toErrorResponse(new InputError('InvalidTarget', 'bad target'), 'inv-1')).toMatchObject({
      status: 400,
      jsonBody: { error: { code: 'InvalidTarget', message: 'bad target' } },
    });
  });

  it('answers anything else with a 5xx that names the invocation and nothing of the error', () => {
    const err = new Error('connect ECONNREFUSED 10.0.0.1 at /srv/app/shared/secret.ts:12');
    const res = toErrorResponse(err, 'inv-2');
    expect(res.status).toBe(500);
    const text = JSON.stringify(res.jsonBody);
    expect(text).toContain('inv-2');
    expect(text).not.toContain('ECONNREFUSED');
    expect(text).not.toMatch(/\bat\s+\S+:\d+/);
    expect(res.jsonBody).toMatchObject({ error: { code: 'InternalError', invocationId: 'inv-2' } });
    expect(toErrorResponse(new TransientError('GraphUnavailable', 'x'), 'i').status).toBe(503);
    expect(toErrorResponse(new WardenError('InvalidPolicy', 'policy broken'), 'i')).toMatchObject({ status: 500, jsonBody: { error: { code: 'InvalidPolicy' } } });
    expect(toErrorResponse(new ThrottledError('slow down', 4500), 'i').headers).toMatchObject({ 'Retry-After': '5' });
    const upstream = toErrorResponse(Object.assign(new Error('Too many requests to ARM'), { statusCode: 429 }), 'i');
    expect(upstream).toMatchObject({ status: 503, jsonBody: { error: { code: 'UpstreamUnavailable', invocationId: 'i' } } });
    expect(toErrorResponse(Object.assign(new Error('Forbidden'), { statusCode: 403 }), 'i').status).toBe(500);
  });

  it('masks secrets in client error messages', () => {
    registerSecret('s3cr3t-client-state');
    try {
      const res = toErrorResponse(new InputError('Bad', 'got s3cr3t-client-state'), 'i');
      expect(JSON.stringify(res)).not.toContain('s3cr3t-client-state');
    } finally {
      forgetSecret('s3cr3t-client-state');
    }
  });
});

describe('httpRoute', () => {
  const ctx = () => new InvocationContext({ invocationId: 'inv-42', functionName: 'plan', logHandler: () => undefined });

  it('answers a wrong method with 405 and Allow, without running the handler', async () => {
    let ran = false;
    const route = httpRoute(['GET'], async () => {
      ran = true;
      return jsonResponse(200, {});
    });
    const res = await route(new HttpRequest({ method: 'DELETE', url: 'https://w.example/api/plan' }), ctx());
    expect(ran).toBe(false);
    expect(res.status).toBe(405);
    expect(res.headers).toMatchObject({ allow: 'GET', 'x-warden-invocation-id': 'inv-42' });
    expect(res.jsonBody).toEqual({ error: { code: 'MethodNotAllowed', message: 'DELETE is not allowed here; use GET.' } });
  });

  it('turns a thrown error into the envelope and logs it with the invocation id', async () => {
    const lines: string[] = [];
    const context = new InvocationContext({ invocationId: 'inv-43', functionName: 'plan', logHandler: (_l, ...args) => lines.push(args.join(' ')) });
    const route = httpRoute(['GET'], async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    });
    const res = await route(new HttpRequest({ method: 'GET', url: 'https://w.example/api/plan' }), context);
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.jsonBody)).not.toContain('Cannot read');
    expect(lines.join('\n')).toContain('inv-43');
    expect(lines.join('\n')).toContain('Cannot read');
  });
});
