import { z } from 'zod';
import { Router } from '../core/router';
import type { EmuRequest, EmuResponse, Handler } from '../core/types';
import {
  badName,
  KeyVaultError,
  MAX_TAGS,
  RECOVERABLE_DAYS,
  RECOVERY_LEVEL,
  SECRET_NAME,
  type StoredSecret,
  type StoredVersion,
  type VaultState,
} from './vault';

/** Key Vault pages hold at most 25 items; `maxresults` may ask for fewer. */
const MAX_PAGE = 25;
/** Any well-formed api-version (`7.4`, `7.6-preview.2`, `2025-07-01`): the SDK moves ahead of the fake. */
const API_VERSION = /^(\d+\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?)$/;

const unixSeconds = z.number().int().nonnegative();
const tagsSchema = z
  .record(z.string(), z.string())
  .refine((t) => Object.keys(t).length <= MAX_TAGS, { message: `A secret can have at most ${MAX_TAGS} tags.` });
const attributesSchema = z
  .object({
    enabled: z.boolean().nullish(),
    nbf: unixSeconds.nullish(),
    exp: unixSeconds.nullish(),
  })
  .nullish();
const setBodySchema = z.object({
  value: z.string({ message: 'Property value is required.' }),
  contentType: z.string().nullish(),
  tags: tagsSchema.nullish(),
  attributes: attributesSchema,
});
const updateBodySchema = z.object({
  contentType: z.string().nullish(),
  tags: tagsSchema.nullish(),
  attributes: attributesSchema,
});

export interface VaultRouteDeps {
  tenantId: string;
  /** Called after every successful set (publishes `SecretNewVersionCreated`). */
  onNewVersion(secret: StoredSecret, version: StoredVersion): void;
}

/** The routes of one vault's listener (`https://127.0.0.1:<port>` stands for `https://{vault}.vault.azure.net`). */
export function createVaultRouter(vault: VaultState, deps: VaultRouteDeps): Router {
  const guard = (handler: (req: EmuRequest) => EmuResponse, opts: { write?: boolean } = {}): Handler => {
    return (req) => {
      // The challenge comes before anything else: the SDK's first request has no token and no body.
      if (!hasBearer(req)) return challenge(deps.tenantId);
      try {
        checkApiVersion(req);
        if (opts.write) {
          const failure = vault.takeWriteFailure();
          if (failure) return failureResponse(failure);
        }
        return handler(req);
      } catch (err) {
        if (err instanceof KeyVaultError) return errorBody(err);
        throw err;
      }
    };
  };

  const getSecret = (req: EmuRequest): EmuResponse => {
    const name = secretNameParam(req);
    const version = req.params.version;
    const v = version ? vault.version(name, version) : vault.latest(name);
    if (!v.enabled) {
      throw new KeyVaultError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    }
    return { status: 200, body: secretBundle(req.baseUrl, vault.require(name), v, true) };
  };

  const update = (req: EmuRequest): EmuResponse => {
    const name = secretNameParam(req);
    const body = parseBody(updateBodySchema, req);
    const v = vault.update(name, req.params.version || undefined, {
      enabled: body.attributes?.enabled ?? undefined,
      contentType: body.contentType ?? undefined,
      tags: body.tags ?? undefined,
      nbf: body.attributes?.nbf ?? undefined,
      exp: body.attributes?.exp ?? undefined,
    });
    return { status: 200, body: secretBundle(req.baseUrl, vault.require(name), v, false) };
  };

  return new Router()
    .add(
      'PUT',
      '/secrets/:name',
      'keyvault.secrets.set',
      guard(
        (req) => {
          const name = secretNameParam(req);
          const body = parseBody(setBodySchema, req);
          const { secret, version } = vault.set(name, {
            value: body.value,
            enabled: body.attributes?.enabled ?? undefined,
            contentType: body.contentType ?? undefined,
            tags: body.tags ?? undefined,
            nbf: body.attributes?.nbf ?? undefined,
            exp: body.attributes?.exp ?? undefined,
          });
          deps.onNewVersion(secret, version);
          return { status: 200, body: secretBundle(req.baseUrl, secret, version, true) };
        },
        { write: true },
      ),
    )
    .add(
      'GET',
      '/secrets',
      'keyvault.secrets.list',
      guard((req) => {
        const items = vault.live().flatMap((s) => {
          const v = s.versions.at(-1);
          return v ? [secretItem(`${req.baseUrl}/secrets/${s.name}`, v)] : [];
        });
        return { status: 200, body: page(req, items) };
      }),
    )
    .add(
      'GET',
      '/secrets/:name/versions',
      'keyvault.secrets.versions',
      guard((req) => {
        const secret = vault.require(secretNameParam(req));
        const items = secret.versions.map((v) => secretItem(`${req.baseUrl}/secrets/${secret.name}/${v.version}`, v));
        return { status: 200, body: page(req, items) };
      }),
    )
    .add('GET', '/secrets/:name', 'keyvault.secrets.get', guard(getSecret))
    .add('GET', '/secrets/:name/:version', 'keyvault.secrets.get', guard(getSecret))
    .add('PATCH', '/secrets/:name/:version', 'keyvault.secrets.update', guard(update, { write: true }))
    .add('PATCH', '/secrets/:name', 'keyvault.secrets.update', guard(update, { write: true }))
    .add(
      'DELETE',
      '/secrets/:name',
      'keyvault.secrets.delete',
      guard(
        (req) => {
          const secret = vault.delete(secretNameParam(req));
          return { status: 200, body: deletedBundle(req.baseUrl, secret) };
        },
        { write: true },
      ),
    )
    .add(
      'GET',
      '/deletedsecrets',
      'keyvault.secrets.listDeleted',
      guard((req) => {
        const items = vault.deletedSecrets().flatMap((s) => {
          const v = s.versions.at(-1);
          if (!v || !s.deleted) return [];
          return [
            {
              ...secretItem(`${req.baseUrl}/secrets/${s.name}`, v),
              recoveryId: `${req.baseUrl}/deletedsecrets/${s.name}`,
              deletedDate: s.deleted.deletedDate,
              scheduledPurgeDate: s.deleted.scheduledPurgeDate,
            },
          ];
        });
        return { status: 200, body: page(req, items) };
      }),
    )
    .add(
      'GET',
      '/deletedsecrets/:name',
      'keyvault.secrets.getDeleted',
      guard((req) => ({ status: 200, body: deletedBundle(req.baseUrl, vault.deleted(secretNameParam(req))) })),
    )
    .add(
      'DELETE',
      '/deletedsecrets/:name',
      'keyvault.secrets.purge',
      guard(
        (req) => {
          vault.purge(secretNameParam(req));
          return { status: 204 };
        },
        { write: true },
      ),
    )
    .add(
      'POST',
      '/deletedsecrets/:name/recover',
      'keyvault.secrets.recover',
      guard(
        (req) => {
          const secret = vault.recover(secretNameParam(req));
          const v = secret.versions.at(-1);
          if (!v) throw new KeyVaultError(500, 'InternalError', 'Recovered secret has no versions.');
          return { status: 200, body: secretBundle(req.baseUrl, secret, v, false) };
        },
        { write: true },
      ),
    );
}

function hasBearer(req: EmuRequest): boolean {
  const auth = req.headers.authorization;
  return typeof auth === 'string' && /^Bearer \S+/i.test(auth);
}

/** The 401 that starts the SDK's challenge-based auth (facts §5.2). */
export function challenge(tenantId: string): EmuResponse {
  return {
    status: 401,
    headers: {
      'WWW-Authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`,
    },
    body: { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
  };
}

function checkApiVersion(req: EmuRequest): void {
  const v = req.query.get('api-version');
  if (!v || !API_VERSION.test(v)) {
    throw new KeyVaultError(400, 'BadParameter', 'The request URI contains an invalid or missing api-version.');
  }
}

function secretNameParam(req: EmuRequest): string {
  const name = req.params.name ?? '';
  if (!SECRET_NAME.test(name)) throw badName(name);
  return name;
}

function parseBody<T>(schema: z.ZodType<T>, req: EmuRequest): T {
  if (req.body === undefined) {
    throw new KeyVaultError(400, 'BadParameter', 'The request body is missing or is not valid JSON.');
  }
  const r = schema.safeParse(req.body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new KeyVaultError(400, 'BadParameter', `${where}${issue?.message ?? 'Invalid request body.'}`);
  }
  return r.data;
}

function errorBody(e: KeyVaultError): EmuResponse {
  return {
    status: e.status,
    body: { error: { code: e.code, message: e.message, ...(e.innerCode ? { innererror: { code: e.innerCode } } : {}) } },
  };
}

function failureResponse(f: { status: number; retryAfterSeconds?: number }): EmuResponse {
  const code = f.status === 429 ? 'Throttled' : f.status >= 500 ? 'InternalServerError' : 'Fault';
  return {
    status: f.status,
    ...(f.retryAfterSeconds === undefined ? {} : { headers: { 'Retry-After': String(f.retryAfterSeconds) } }),
    body: { error: { code, message: `Injected fault (${code}).` } },
  };
}

function attributes(v: StoredVersion): Record<string, unknown> {
  return {
    enabled: v.enabled,
    ...(v.nbf === undefined ? {} : { nbf: v.nbf }),
    ...(v.exp === undefined ? {} : { exp: v.exp }),
    created: v.created,
    updated: v.updated,
    recoveryLevel: RECOVERY_LEVEL,
    recoverableDays: RECOVERABLE_DAYS,
  };
}

function secretBundle(baseUrl: string, s: StoredSecret, v: StoredVersion, withValue: boolean): Record<string, unknown> {
  return {
    ...(withValue ? { value: v.value } : {}),
    id: `${baseUrl}/secrets/${s.name}/${v.version}`,
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
    attributes: attributes(v),
  };
}

function deletedBundle(baseUrl: string, s: StoredSecret): Record<string, unknown> {
  const v = s.versions.at(-1);
  if (!v || !s.deleted) throw new KeyVaultError(500, 'InternalError', 'Deleted secret has no state.');
  return {
    recoveryId: `${baseUrl}/deletedsecrets/${s.name}`,
    deletedDate: s.deleted.deletedDate,
    scheduledPurgeDate: s.deleted.scheduledPurgeDate,
    ...secretBundle(baseUrl, s, v, false),
  };
}

function secretItem(id: string, v: StoredVersion): Record<string, unknown> {
  return {
    id,
    attributes: attributes(v),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
  };
}

/** One page and an absolute `nextLink` carrying the offset, as Key Vault's `$skiptoken` does. */
function page(req: EmuRequest, items: Record<string, unknown>[]): { value: Record<string, unknown>[]; nextLink: string | null } {
  const max = req.query.get('maxresults');
  let size = MAX_PAGE;
  if (max !== null && max !== '') {
    size = Number(max);
    if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) {
      throw new KeyVaultError(400, 'BadParameter', `Invalid maxresults: ${max}. It must be between 1 and ${MAX_PAGE}.`);
    }
  }
  let offset = 0;
  const token = req.query.get('$skiptoken');
  if (token) {
    const decoded = Number(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Number.isInteger(decoded) || decoded < 0) throw new KeyVaultError(400, 'BadParameter', 'Invalid $skiptoken.');
    offset = decoded;
  }
  const value = items.slice(offset, offset + size);
  const next = offset + size;
  if (next >= items.length) return { value, nextLink: null };
  const q = new URLSearchParams();
  q.set('api-version', req.query.get('api-version') ?? '');
  q.set('$skiptoken', Buffer.from(String(next)).toString('base64url'));
  if (max !== null && max !== '') q.set('maxresults', String(size));
  return { value, nextLink: `${req.baseUrl}${req.path.replace(/\/$/, '')}?${q.toString()}` };
}
