/**
 * The {@link Applications} port over Microsoft Graph v1.0 (`@microsoft/microsoft-graph-client`):
 * `applications/delta` (paged; the client follows `@odata.nextLink` as absolute URLs), single reads
 * by object id or `(appId='…')`, owners, `addPassword` / `removePassword` (AZURE-API-FACTS §3.3).
 * The only place credentials code touches the Graph SDK.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import type { AzureClients } from '../../azure/clients';
import type { Limiter } from '../../concurrency';
import { codeOf, statusOf } from '../../errors';
import { registerSecret } from '../../redact';
import { type AppCredential, type AppDelta, type AppRegistration, type Applications, DeltaExpiredError, type NewPassword } from '../applications';

const SELECT = ['id', 'appId', 'displayName', 'passwordCredentials', 'keyCredentials'];
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Codes Graph answers a delta link with when its sync state is gone. */
const EXPIRED_CODES = new Set(['syncstatenotfound', 'resyncrequired', 'syncstateinvalid', 'resyncapplicationrequired']);

const passwordSchema = z.looseObject({
  keyId: z.string(),
  displayName: z.string().nullish(),
  startDateTime: z.string().nullish(),
  endDateTime: z.string().nullish(),
});

const keySchema = z.looseObject({
  keyId: z.string(),
  displayName: z.string().nullish(),
  startDateTime: z.string().nullish(),
  endDateTime: z.string().nullish(),
  type: z.string().nullish(),
});

const applicationSchema = z.looseObject({
  id: z.string(),
  appId: z.string().nullish(),
  displayName: z.string().nullish(),
  passwordCredentials: z.array(passwordSchema).nullish(),
  keyCredentials: z.array(keySchema).nullish(),
  '@removed': z.unknown().optional(),
});

const deltaPageSchema = z.looseObject({
  value: z.array(applicationSchema),
  '@odata.nextLink': z.string().optional(),
  '@odata.deltaLink': z.string().optional(),
});

const ownerSchema = z.looseObject({
  '@odata.type': z.string().optional(),
  id: z.string().optional(),
  mail: z.string().nullish(),
  userPrincipalName: z.string().nullish(),
});
const ownersPageSchema = z.looseObject({ value: z.array(ownerSchema), '@odata.nextLink': z.string().optional() });

const addPasswordSchema = z.looseObject({
  keyId: z.string(),
  displayName: z.string().nullish(),
  startDateTime: z.string(),
  endDateTime: z.string(),
  secretText: z.string().min(1),
});

type RawApplication = z.infer<typeof applicationSchema>;

function password(p: z.infer<typeof passwordSchema>): AppCredential {
  return { kind: 'password', keyId: p.keyId.toLowerCase(), displayName: p.displayName ?? null, startDateTime: p.startDateTime ?? null, endDateTime: p.endDateTime ?? null };
}

function certificate(k: z.infer<typeof keySchema>): AppCredential {
  return {
    kind: 'certificate',
    keyId: k.keyId.toLowerCase(),
    displayName: k.displayName ?? null,
    startDateTime: k.startDateTime ?? null,
    endDateTime: k.endDateTime ?? null,
    ...(k.type ? { type: k.type } : {}),
  };
}

function registration(a: RawApplication): AppRegistration | undefined {
  if (!a.appId) return undefined;
  return {
    id: a.id,
    appId: a.appId.toLowerCase(),
    displayName: a.displayName ?? '',
    passwords: (a.passwordCredentials ?? []).map(password),
    certificates: (a.keyCredentials ?? []).map(certificate),
  };
}

function toDelta(a: RawApplication): AppDelta {
  if (a['@removed'] !== undefined) return { id: a.id, removed: true };
  return {
    id: a.id,
    removed: false,
    ...(a.appId ? { appId: a.appId.toLowerCase() } : {}),
    ...(typeof a.displayName === 'string' ? { displayName: a.displayName } : {}),
    ...(a.passwordCredentials ? { passwords: a.passwordCredentials.map(password) } : {}),
    ...(a.keyCredentials ? { certificates: a.keyCredentials.map(certificate) } : {}),
  };
}

function isExpiredLink(err: unknown): boolean {
  return statusOf(err) === 410 || EXPIRED_CODES.has((codeOf(err) ?? '').toLowerCase());
}

function requireGuid(value: string, what: string): string {
  if (!GUID.test(value)) throw new Error(`${what} must be a GUID`);
  return value;
}

export interface GraphApplicationsOptions {
  /** `Prefer: odata.maxpagesize` for delta pages (Graph may answer with fewer). */
  pageSize?: number;
}

/** The Graph adapter; every call goes through `limiter` (`WARDEN_CONCURRENCY`). */
export function createGraphApplications(clients: Pick<AzureClients, 'graph'>, limiter?: Limiter, options: GraphApplicationsOptions = {}): Applications {
  const pageSize = options.pageSize ?? 999;
  const run = <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const call = async (): Promise<T> => fn(await clients.graph());
    return limiter ? limiter.run(call) : call();
  };
  const getApp = async (path: string): Promise<AppRegistration | undefined> => {
    try {
      const raw: unknown = await run((c) => c.api(path).select(SELECT).get() as Promise<unknown>);
      return registration(applicationSchema.parse(raw));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  };

  return {
    async delta(deltaLink) {
      const changes: AppDelta[] = [];
      let pages = 0;
      let next: string | undefined = deltaLink;
      for (;;) {
        const url = next;
        let raw: unknown;
        try {
          raw = await run((c) => {
            const req = url ? c.api(url) : c.api('/applications/delta').select(SELECT);
            return req.header('Prefer', `odata.maxpagesize=${pageSize}`).get() as Promise<unknown>;
          });
        } catch (err) {
          if (deltaLink !== undefined && isExpiredLink(err)) throw new DeltaExpiredError(undefined, { cause: err });
          throw err;
        }
        pages++;
        const page = deltaPageSchema.parse(raw);
        for (const a of page.value) changes.push(toDelta(a));
        if (page['@odata.nextLink']) {
          next = page['@odata.nextLink'];
          continue;
        }
        const link = page['@odata.deltaLink'];
        if (!link) throw new Error('A Graph applications/delta page had neither @odata.nextLink nor @odata.deltaLink');
        return { changes, deltaLink: link, pages };
      }
    },

    async getByAppId(appId) {
      return getApp(`/applications(appId='${requireGuid(appId, 'appId')}')`);
    },

    async getByObjectId(objectId) {
      return getApp(`/applications/${requireGuid(objectId, 'objectId')}`);
    },

    async ownerMails(objectId) {
      const mails = new Set<string>();
      let url = `/applications/${requireGuid(objectId, 'objectId')}/owners`;
      let first = true;
      for (;;) {
        const pageUrl = url;
        const isFirst = first;
        const raw: unknown = await run((c) => (isFirst ? c.api(pageUrl).select(['id', 'mail', 'userPrincipalName']) : c.api(pageUrl)).get() as Promise<unknown>);
        first = false;
        const page = ownersPageSchema.parse(raw);
        for (const o of page.value) {
          const type = (o['@odata.type'] ?? '').toLowerCase();
          if (type && type !== '#microsoft.graph.user') continue;
          const upn = o.userPrincipalName ?? '';
          const address = o.mail ?? (upn.includes('@') && !upn.includes('#EXT#') ? upn : undefined);
          if (address) mails.add(address.toLowerCase());
        }
        const nextLink = page['@odata.nextLink'];
        if (!nextLink) break;
        url = nextLink;
      }
      return [...mails].sort();
    },

    async addPassword(objectId, pwd) {
      const raw: unknown = await run((c) =>
        c.api(`/applications/${requireGuid(objectId, 'objectId')}/addPassword`).post({
          passwordCredential: { displayName: pwd.displayName, endDateTime: pwd.endDateTime.toISOString() },
        }) as Promise<unknown>,
      );
      // Registered before anything else touches the answer: from here on no output can show it.
      const text = (raw as { secretText?: unknown } | null)?.secretText;
      if (typeof text === 'string') registerSecret(text);
      const parsed = addPasswordSchema.safeParse(raw);
      if (!parsed.success) throw new Error('Graph addPassword answered without a keyId, dates or secret text');
      const p = parsed.data;
      const out: NewPassword = {
        keyId: p.keyId.toLowerCase(),
        displayName: p.displayName ?? null,
        startDateTime: p.startDateTime,
        endDateTime: p.endDateTime,
        secretText: p.secretText,
      };
      return out;
    },

    async removePassword(objectId, keyId) {
      const id = requireGuid(objectId, 'objectId');
      try {
        await run((c) => c.api(`/applications/${id}/removePassword`).post({ keyId }) as Promise<unknown>);
        return 'removed';
      } catch (err) {
        const status = statusOf(err);
        if (status !== 400 && status !== 404) throw err;
        // Graph's answer for a keyId the app no longer has is not documented: look before deciding.
        const app = await getApp(`/applications/${id}`);
        if (!app || !app.passwords.some((p) => p.keyId === keyId.toLowerCase())) return 'absent';
        throw err;
      }
    },
  };
}
