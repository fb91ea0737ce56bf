/**
 * The App Service / Functions managed-identity endpoint (`IDENTITY_ENDPOINT`, plain HTTP as in Azure):
 * `GET /msi/token?api-version=2019-08-01&resource=…[&client_id=…]` with `X-IDENTITY-HEADER`.
 * Lets production code use `ManagedIdentityCredential` / `DefaultAzureCredential` unchanged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Router } from '../core/router';
import type { EmuContext } from '../core/server';
import type { EmuRequest, EmuResponse } from '../core/types';

/** Tokens live 24 h, like App Service managed-identity tokens. */
const TOKEN_LIFETIME_SECONDS = 24 * 3600;

export interface MsiIdentity {
  clientId: string;
  objectId: string;
}

export interface MsiService {
  router: Router;
  /** The value `IDENTITY_HEADER` must hold. */
  identityHeader: string;
  /** The app's system-assigned identity (stable for a tenant id). */
  systemAssigned: MsiIdentity;
}

/** A GUID derived from a seed, so identities are the same on every run. */
export function stableGuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function createMsiService(deps: { ctx: EmuContext; tenantId: string }): MsiService {
  const identityHeader = randomBytes(16).toString('hex');
  const systemAssigned: MsiIdentity = {
    clientId: stableGuid(`${deps.tenantId}/system-assigned/client`),
    objectId: stableGuid(`${deps.tenantId}/system-assigned/object`),
  };

  const identityFor = (req: EmuRequest): MsiIdentity => {
    const clientId = req.query.get('client_id');
    if (clientId) return { clientId, objectId: stableGuid(`${deps.tenantId}/uami-object/${clientId.toLowerCase()}`) };
    const objectId = req.query.get('object_id') ?? req.query.get('principal_id');
    if (objectId) return { clientId: stableGuid(`${deps.tenantId}/uami-client/${objectId.toLowerCase()}`), objectId };
    const resourceId = req.query.get('mi_res_id') ?? req.query.get('msi_res_id');
    if (resourceId) {
      const key = resourceId.toLowerCase();
      return { clientId: stableGuid(`${deps.tenantId}/uami-client/${key}`), objectId: stableGuid(`${deps.tenantId}/uami-object/${key}`) };
    }
    return systemAssigned;
  };

  const token = (req: EmuRequest): EmuResponse => {
    const given = req.headers['x-identity-header'];
    if (given === undefined) return failure(400, 'Required header X-IDENTITY-HEADER is missing.');
    if (given !== identityHeader) return failure(401, 'The X-IDENTITY-HEADER value is not valid.');
    const apiVersion = req.query.get('api-version');
    if (apiVersion !== '2019-08-01') {
      return failure(400, `Unsupported or missing api-version '${apiVersion ?? ''}'; this endpoint serves 2019-08-01.`);
    }
    const resource = req.query.get('resource');
    if (!resource) return failure(400, 'Required query parameter resource is missing.');
    const who = identityFor(req);
    // Token lifetimes are judged by the SDK against real time, so they ignore the emulator clock offset.
    const now = Math.floor(Date.now() / 1000);
    const expiresOn = now + TOKEN_LIFETIME_SECONDS;
    return {
      status: 200,
      body: {
        access_token: fakeJwt({
          aud: resource,
          iss: `https://sts.windows.net/${deps.tenantId}/`,
          iat: now,
          nbf: now,
          exp: expiresOn,
          appid: who.clientId,
          oid: who.objectId,
          sub: who.objectId,
          tid: deps.tenantId,
          idtyp: 'app',
        }),
        expires_on: String(expiresOn),
        resource,
        token_type: 'Bearer',
        client_id: who.clientId,
      },
    };
  };

  return {
    router: new Router().add('GET', '/msi/token', 'msi.token', token),
    identityHeader,
    systemAssigned,
  };
}

function failure(status: number, message: string): EmuResponse {
  return { status, body: { statusCode: status, message } };
}

/** JWT-shaped (code that reads `oid`/`aud` from a token works); the signature is not real. */
function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ typ: 'JWT', alg: 'RS256', kid: 'warden-emulator' })}.${enc(claims)}.${Buffer.from('warden-emulator-signature').toString('base64url')}`;
}
