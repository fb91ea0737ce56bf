/**
 * Who is calling a protected route. The Functions platform enforces the function key before our code
 * runs, so every caller holds one ("function-key"). When App Service Authentication is on, the
 * platform also strips any client-sent `x-ms-client-principal` and injects its own, so only then is
 * the header trusted: it names the signed-in principal and carries its app roles, which
 * `WARDEN_REMEDIATION_ROLE` is checked against.
 */
import type { HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { InputError } from '../errors';
import type { Settings } from '../settings';

export const PRINCIPAL_HEADER = 'x-ms-client-principal';

export interface Caller {
  kind: 'principal' | 'function-key';
  /** Principal name (UPN, app id or object id) or "function-key": recorded as the trigger's caller. */
  name: string;
  roles: string[];
}

const principalSchema = z.object({
  auth_typ: z.string().optional(),
  name_typ: z.string().optional(),
  role_typ: z.string().optional(),
  claims: z.array(z.object({ typ: z.string(), val: z.string() })).max(1000).default([]),
});

const ROLE_CLAIMS = ['roles', 'role', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
const NAME_CLAIMS = [
  'preferred_username', 'name', 'upn', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', 'appid', 'azp',
  'http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid',
];

/** Decodes the App Service Authentication principal (base64 JSON with `claims`). */
export function parsePrincipal(header: string, nameHeader?: string | null): Caller {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw new InputError('InvalidPrincipal', `The ${PRINCIPAL_HEADER} header is not base64-encoded JSON.`, 401);
  }
  const r = principalSchema.safeParse(parsed);
  if (!r.success) throw new InputError('InvalidPrincipal', `The ${PRINCIPAL_HEADER} header does not hold a principal.`, 401);
  const p = r.data;
  const roleTypes = new Set([...(p.role_typ ? [p.role_typ] : []), ...ROLE_CLAIMS]);
  const roles = [...new Set(p.claims.filter((c) => roleTypes.has(c.typ)).map((c) => c.val))];
  const nameTypes = [...(p.name_typ ? [p.name_typ] : []), ...NAME_CLAIMS];
  let name: string | undefined;
  for (const t of nameTypes) {
    name = p.claims.find((c) => c.typ === t && c.val !== '')?.val;
    if (name) break;
  }
  return { kind: 'principal', name: (name ?? nameHeader ?? 'unknown principal').slice(0, 256), roles };
}

/** The caller of a function-key route. */
export function identifyCaller(req: Pick<HttpRequest, 'headers'>, settings: Pick<Settings, 'appServiceAuthEnabled'>): Caller {
  const header = settings.appServiceAuthEnabled ? req.headers.get(PRINCIPAL_HEADER) : null;
  if (!header) return { kind: 'function-key', name: 'function-key', roles: [] };
  return parsePrincipal(header, req.headers.get('x-ms-client-principal-name'));
}

/**
 * Enforces `WARDEN_REMEDIATION_ROLE`: 401 without a trusted principal, 403 without the role.
 * Without App Service Authentication no principal can be trusted, so a required role is never met.
 */
export function authorizeCaller(caller: Caller, settings: Pick<Settings, 'remediationRole' | 'appServiceAuthEnabled'>): void {
  const role = settings.remediationRole;
  if (!role) return;
  if (caller.kind !== 'principal') {
    throw new InputError(
      'PrincipalRequired',
      settings.appServiceAuthEnabled
        ? `This route needs a signed-in caller with the app role "${role}".`
        : `This route needs the app role "${role}", but App Service Authentication is not enabled, so no caller can be identified.`,
      401,
    );
  }
  if (!caller.roles.includes(role)) {
    throw new InputError('RoleRequired', `The caller does not hold the app role "${role}".`, 403);
  }
}
