/**
 * Application registrations: list/get (by object id or `(appId='…')`), delta, owners and the
 * addPassword/removePassword actions. A new secret is returned once, in the addPassword answer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EmuClock } from '../core/clock';
import type { Router } from '../core/router';
import type { EmuRequest, EmuResponse } from '../core/types';
import type { DeltaEngine } from './delta';
import { applicationRecord, projectInCollection } from './entities';
import { badRequest, isEventual, noContent, notFound, ok, parseFilter, parseSelect, parseTop, pick, unknownProperties, wantsCount } from './odata';
import { arraySource, pageOf, wrap } from './paging';
import { appIdKey } from './router';
import type { Application, Directory, DirectoryObject, PasswordCredential } from './state';

const SECRET_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-';
const TWO_YEARS_MS = 2 * 365.25 * 24 * 3600 * 1000;

/** 40 characters from the alphabet Entra uses for client secrets. */
export function newSecretText(): string {
  const bytes = randomBytes(40);
  let out = '';
  for (const b of bytes) out += SECRET_ALPHABET.charAt(b % SECRET_ALPHABET.length);
  return out;
}

const addPasswordSchema = z
  .object({
    passwordCredential: z
      .object({
        displayName: z.string().nullable().optional(),
        startDateTime: z.string().nullable().optional(),
        endDateTime: z.string().nullable().optional(),
      })
      .optional(),
  })
  .optional();

const removePasswordSchema = z.object({ keyId: z.string().min(1) });

function resolveApp(dir: Directory, param: string): Application | undefined {
  const appId = appIdKey(param);
  return appId !== undefined ? dir.applicationByAppId(appId) : dir.application(param);
}

function parseDate(value: string | null | undefined, name: string): number | undefined {
  if (value === null || value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw badRequest(`Invalid value specified for property '${name}' of resource 'PasswordCredential'.`);
  return t;
}

export function addApplicationRoutes(router: Router, dir: Directory, delta: DeltaEngine, clock: EmuClock): void {
  const withApp = (h: (req: EmuRequest, app: Application) => EmuResponse): ((req: EmuRequest) => EmuResponse) => {
    return (req) => {
      const param = req.params.id ?? '';
      const app = resolveApp(dir, param);
      if (!app) return notFound(req, appIdKey(param) ?? param);
      return h(req, app);
    };
  };

  router.add(
    'GET',
    '/v1.0/applications',
    'graph.applications.list',
    wrap((req) => {
      const select = parseSelect(req);
      const rawFilter = req.query.get('$filter');
      const filter = rawFilter && rawFilter.trim() !== '' ? parseFilter(rawFilter).predicate : undefined;
      const top = parseTop(req, 100, 999);
      if (select) {
        const unknown = unknownProperties(applicationRecord(sample), select);
        if (unknown.length > 0) throw badRequest(`Could not find a property named '${unknown[0]}' on type 'microsoft.graph.application'.`);
      }
      return pageOf(req, arraySource([...dir.applications.values()]), {
        path: '/applications',
        context: 'applications',
        top,
        count: isEventual(req) && wantsCount(req),
        render: (a) => {
          const record = applicationRecord(a);
          if (filter && !filter(record)) return undefined;
          return select ? pick(record, select) : record;
        },
      });
    }),
  );
  router.add('GET', '/v1.0/applications/delta', 'graph.applications.delta', wrap((req) => delta.handle(req, 'apps')));
  router.add(
    'GET',
    '/v1.0/applications/:id',
    'graph.applications.get',
    wrap(
      withApp((req, app) => {
        const select = parseSelect(req);
        const record = applicationRecord(app);
        if (select) {
          const unknown = unknownProperties(record, select);
          if (unknown.length > 0) throw badRequest(`Could not find a property named '${unknown[0]}' on type 'microsoft.graph.application'.`);
        }
        return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#applications/$entity`, ...(select ? pick(record, select) : record) });
      }),
    ),
  );
  router.add(
    'GET',
    '/v1.0/applications/:id/owners',
    'graph.applications.owners',
    wrap(
      withApp((req, app) => {
        const select = parseSelect(req);
        const top = parseTop(req, 100, 999);
        const owners = app.owners.map((id) => dir.lookup(id)).filter((o): o is DirectoryObject => !!o);
        return pageOf(req, arraySource(owners), {
          path: `/applications/${app.id}/owners`,
          context: 'directoryObjects',
          top,
          count: false,
          render: (o) => projectInCollection(o, select),
        });
      }),
    ),
  );
  router.add(
    'POST',
    '/v1.0/applications/:id/addPassword',
    'graph.applications.addPassword',
    wrap(
      withApp((req, app) => {
        const parsed = addPasswordSchema.safeParse(req.body);
        if (!parsed.success) throw badRequest('Invalid request body for addPassword.');
        const input = parsed.data?.passwordCredential;
        const now = clock.now();
        const start = parseDate(input?.startDateTime, 'startDateTime') ?? now;
        const end = parseDate(input?.endDateTime, 'endDateTime') ?? start + TWO_YEARS_MS;
        if (end <= start) throw badRequest('Key credential end date time must be later than the start date time.', 'InvalidKeyEndDateTime');
        const secretText = newSecretText();
        const cred: PasswordCredential = {
          keyId: randomUUID(),
          displayName: input?.displayName ?? null,
          startDateTime: new Date(start).toISOString(),
          endDateTime: new Date(end).toISOString(),
          hint: secretText.slice(0, 3),
          secretText,
        };
        app.passwordCredentials.push(cred);
        dir.applicationChanged(app);
        return ok(req, {
          '@odata.context': `${req.baseUrl}/v1.0/$metadata#microsoft.graph.passwordCredential`,
          customKeyIdentifier: null,
          displayName: cred.displayName,
          endDateTime: cred.endDateTime,
          hint: cred.hint,
          keyId: cred.keyId,
          secretText,
          startDateTime: cred.startDateTime,
        });
      }),
    ),
  );
  router.add(
    'POST',
    '/v1.0/applications/:id/removePassword',
    'graph.applications.removePassword',
    wrap(
      withApp((req, app) => {
        const parsed = removePasswordSchema.safeParse(req.body);
        if (!parsed.success) throw badRequest("Invalid request body: 'keyId' is required.");
        const keyId = parsed.data.keyId.toLowerCase();
        const idx = app.passwordCredentials.findIndex((p) => p.keyId.toLowerCase() === keyId);
        // Emulator choice: an unknown keyId is a 400 (the live service's exact answer is not documented).
        if (idx < 0) throw badRequest(`No password credential with keyId '${parsed.data.keyId}' exists on application '${app.id}'.`);
        app.passwordCredentials.splice(idx, 1);
        dir.applicationChanged(app);
        return noContent(req);
      }),
    ),
  );
}

const sample: Application = { id: '', appId: '', displayName: '', createdDateTime: '', owners: [], passwordCredentials: [], keyCredentials: [] };
