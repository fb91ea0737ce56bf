/**
 * Reads of users, groups, service principals and directory objects: single objects, lists,
 * (transitive) members and memberships, with `$select`, `$top`, `$filter`, `$count` and OData casts.
 */
import type { Router } from '../core/router';
import type { EmuRequest, EmuResponse } from '../core/types';
import { CASTS, checkCollectionSelect, objectRecord, projectInCollection, projectSingle } from './entities';
import { badRequest, isEventual, notFound, ok, parseFilter, parseSelect, parseTop, wantsCount, type Predicate } from './odata';
import { appIdKey } from './router';
import { arraySource, pageOf, wrap, type Positional } from './paging';
import type { Directory, DirectoryObject, FlatMembers } from './state';

const ADVANCED_QUERY =
  'This request uses an advanced query (an OData cast, $filter or $search on a relationship); it requires the ConsistencyLevel header set to eventual and $count=true.';

function isCount(segment: string | undefined): boolean {
  return segment?.toLowerCase() === '$count';
}

function castOf(req: EmuRequest): DirectoryObject['type'] | undefined {
  const raw = req.params.cast;
  if (raw === undefined || isCount(raw)) return undefined;
  const t = CASTS[raw.toLowerCase()];
  if (!t) throw badRequest(`Resource not found for the segment '${raw}'.`, 'BadRequest');
  return t;
}

function filterOf(req: EmuRequest): Predicate | undefined {
  const raw = req.query.get('$filter');
  return raw === null || raw.trim() === '' ? undefined : parseFilter(raw).predicate;
}

/** Relationship reads (`members`, `transitiveMembers`, `memberOf`…) with the advanced-query rules of the Addenda. */
function relationshipPage(
  req: EmuRequest,
  dir: Directory,
  source: Positional<string>,
  opts: { path: string; advancedForCast: boolean },
): EmuResponse {
  const cast = castOf(req);
  const filter = filterOf(req);
  const select = parseSelect(req);
  checkCollectionSelect(select);
  const render = (id: string): Record<string, unknown> | undefined => {
    const o = dir.lookup(id);
    if (!o || (cast && o.type !== cast)) return undefined;
    if (filter && !filter(objectRecord(o))) return undefined;
    return projectInCollection(o, select);
  };
  if (req.params.suffix !== undefined && !isCount(req.params.suffix)) throw badRequest(`Resource not found for the segment '${req.params.suffix}'.`, 'BadRequest');
  if (isCount(req.params.cast) || isCount(req.params.suffix)) {
    // `/$count` is an advanced query too: it needs ConsistencyLevel eventual (not $count=true).
    if (!isEventual(req)) throw badRequest(ADVANCED_QUERY, 'Request_UnsupportedQuery');
    let n = 0;
    for (let p = 0; p < source.size; p++) {
      const id = source.at(p);
      if (id !== undefined && render(id)) n++;
    }
    return { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: String(n) };
  }
  const eventual = isEventual(req) && wantsCount(req);
  if (((cast && opts.advancedForCast) || filter) && !eventual) throw badRequest(ADVANCED_QUERY, 'Request_UnsupportedQuery');
  const top = parseTop(req, 100, 999);
  return pageOf(req, source, {
    path: opts.path,
    context: cast ? `directoryObjects/microsoft.graph.${cast === 'ServicePrincipal' ? 'servicePrincipal' : cast.toLowerCase()}` : 'directoryObjects',
    top,
    count: eventual,
    render,
  });
}

function requireObject(req: EmuRequest, dir: Directory, id: string, type?: DirectoryObject['type']): DirectoryObject | EmuResponse {
  if (type === 'User') {
    const u = dir.user(id);
    return u ? { type: 'User', value: u } : notFound(req, id);
  }
  const appId = appIdKey(id);
  if (appId !== undefined) {
    // `servicePrincipals(appId='…')`, rewritten by GraphRouter.
    const sp = type === 'ServicePrincipal' ? [...dir.servicePrincipals.values()].find((s) => s.appId.toLowerCase() === appId.toLowerCase()) : undefined;
    return sp ? { type: 'ServicePrincipal', value: sp } : notFound(req, appId);
  }
  const o = dir.lookup(id);
  if (!o || (type && o.type !== type)) return notFound(req, id);
  return o;
}

function isResponse(x: DirectoryObject | EmuResponse): x is EmuResponse {
  return 'status' in x;
}

function listPage(req: EmuRequest, source: Positional<DirectoryObject>, path: string, context: string): EmuResponse {
  const select = parseSelect(req);
  const filter = filterOf(req);
  const top = parseTop(req, 100, 999);
  return pageOf(req, source, {
    path,
    context,
    top,
    count: isEventual(req) && wantsCount(req),
    render: (o) => {
      const record = objectRecord(o);
      if (filter && !filter(record)) return undefined;
      return projectSingle(o, select);
    },
  });
}

function mapSource<T>(src: FlatMembers, f: (id: string) => T | undefined): Positional<T> {
  return { size: src.size, at: (pos) => { const id = src.at(pos); return id === undefined ? undefined : f(id); } };
}

export function addDirectoryRoutes(router: Router, dir: Directory): void {
  const memberOfRoutes = (kind: 'groups' | 'users' | 'servicePrincipals', type: DirectoryObject['type'], op: string): void => {
    for (const rel of ['transitiveMemberOf', 'memberOf'] as const) {
      const handler = wrap((req) => {
        const o = requireObject(req, dir, req.params.id ?? '', type);
        if (isResponse(o)) return o;
        const groups =
          rel === 'transitiveMemberOf'
            ? dir.transitiveMemberOf(o.value.id)
            : [...dir.groups.values()].filter((g) => dir.isDirectMember(g, o.value.id));
        return relationshipPage(req, dir, arraySource(groups.map((g) => g.id)), {
          path: `/${kind}/${o.value.id}/${rel}${req.params.cast ? `/${req.params.cast}` : ''}`,
          advancedForCast: true,
        });
      });
      router.add('GET', `/v1.0/${kind}/:id/${rel}`, `graph.${op}.${rel}`, handler);
      router.add('GET', `/v1.0/${kind}/:id/${rel}/:cast`, `graph.${op}.${rel}`, handler);
      router.add('GET', `/v1.0/${kind}/:id/${rel}/:cast/:suffix`, `graph.${op}.${rel}`, handler);
    }
  };

  // ---- groups ----
  router.add(
    'GET',
    '/v1.0/groups',
    'graph.groups.list',
    wrap((req) => {
      const groups = [...dir.groups.values()].map((value): DirectoryObject => ({ type: 'Group', value }));
      return listPage(req, arraySource(groups), '/groups', 'groups');
    }),
  );
  router.add(
    'GET',
    '/v1.0/groups/:id',
    'graph.groups.get',
    wrap((req) => {
      const o = requireObject(req, dir, req.params.id ?? '', 'Group');
      if (isResponse(o)) return o;
      return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#groups/$entity`, ...projectSingle(o, parseSelect(req)) });
    }),
  );
  for (const rel of ['members', 'transitiveMembers'] as const) {
    const handler = wrap((req) => {
      const id = req.params.id ?? '';
      const flat = rel === 'members' ? dir.directMembers(id) : dir.transitiveMembers(id);
      if (!flat) return notFound(req, id);
      return relationshipPage(req, dir, flat, {
        path: `/groups/${id}/${rel}${req.params.cast ? `/${req.params.cast}` : ''}`,
        // Casts on direct members work without ConsistencyLevel; on transitive members they do not (Addenda).
        advancedForCast: rel === 'transitiveMembers',
      });
    });
    router.add('GET', `/v1.0/groups/:id/${rel}`, `graph.groups.${rel}`, handler);
    router.add('GET', `/v1.0/groups/:id/${rel}/:cast`, `graph.groups.${rel}`, handler);
    router.add('GET', `/v1.0/groups/:id/${rel}/:cast/:suffix`, `graph.groups.${rel}`, handler);
  }
  memberOfRoutes('groups', 'Group', 'groups');

  // ---- users ----
  router.add(
    'GET',
    '/v1.0/users',
    'graph.users.list',
    wrap((req) => listPage(req, mapSource(dir.allUserIds(), (id) => dir.lookup(id)), '/users', 'users')),
  );
  router.add(
    'GET',
    '/v1.0/users/:id',
    'graph.users.get',
    wrap((req) => {
      const u = dir.user(req.params.id ?? '');
      if (!u) return notFound(req, req.params.id ?? '');
      return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#users/$entity`, ...projectSingle({ type: 'User', value: u }, parseSelect(req)) });
    }),
  );
  memberOfRoutes('users', 'User', 'users');

  // ---- service principals ----
  router.add(
    'GET',
    '/v1.0/servicePrincipals',
    'graph.servicePrincipals.list',
    wrap((req) => {
      const sps = [...dir.servicePrincipals.values()].map((value): DirectoryObject => ({ type: 'ServicePrincipal', value }));
      return listPage(req, arraySource(sps), '/servicePrincipals', 'servicePrincipals');
    }),
  );
  router.add(
    'GET',
    '/v1.0/servicePrincipals/:id',
    'graph.servicePrincipals.get',
    wrap((req) => {
      const o = requireObject(req, dir, req.params.id ?? '', 'ServicePrincipal');
      if (isResponse(o)) return o;
      return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#servicePrincipals/$entity`, ...projectSingle(o, parseSelect(req)) });
    }),
  );
  memberOfRoutes('servicePrincipals', 'ServicePrincipal', 'servicePrincipals');

  // ---- /me: meaningless for an app-only token ----
  const me = wrap(() => {
    throw badRequest('/me request is only valid with delegated authentication flow.', 'BadRequest');
  });
  for (const m of ['GET', 'POST', 'PATCH', 'DELETE']) {
    router.add(m, '/v1.0/me', 'graph.me', me);
    router.add(m, '/v1.0/me/*rest', 'graph.me', me);
  }

  // ---- directory objects ----
  router.add(
    'GET',
    '/v1.0/directoryObjects/:id',
    'graph.directoryObjects.get',
    wrap((req) => {
      const o = requireObject(req, dir, req.params.id ?? '');
      if (isResponse(o)) return o;
      return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#directoryObjects/$entity`, ...projectSingle(o, parseSelect(req), true) });
    }),
  );
  router.add(
    'POST',
    '/v1.0/directoryObjects/getByIds',
    'graph.directoryObjects.getByIds',
    wrap((req) => {
      const body = req.body as { ids?: unknown; types?: unknown } | undefined;
      const ids = body?.ids;
      if (!Array.isArray(ids) || ids.length > 1000 || !ids.every((i): i is string => typeof i === 'string')) {
        throw badRequest("Invalid request body: 'ids' must be an array of at most 1000 strings.");
      }
      const types = Array.isArray(body?.types) ? body.types.filter((t): t is string => typeof t === 'string').map((t) => t.toLowerCase()) : undefined;
      const select = parseSelect(req);
      const value = ids
        .map((id) => dir.lookup(id))
        .filter((o): o is DirectoryObject => !!o && (!types || types.includes(o.type.toLowerCase())))
        .map((o) => projectInCollection(o, select));
      return ok(req, { '@odata.context': `${req.baseUrl}/v1.0/$metadata#directoryObjects`, value });
    }),
  );
}

