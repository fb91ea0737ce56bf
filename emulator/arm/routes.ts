/**
 * ARM routes: role assignments and definitions (api 2022-04-01), Azure ML workspaces, computes and
 * datastores (2022-10-01), container registries, subscriptions, resource groups and the generic
 * resource list. Any api-version is accepted. Every route names a stable operation for the request
 * record and fault rules.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Router } from '../core/router';
import type { EmuRequest, EmuResponse, Handler } from '../core/types';
import { errorResponse } from '../core/types';
import {
  armTime,
  isGuid,
  key,
  normaliseScope,
  parseResourceId,
  serializeCompute,
  serializeDatastore,
  serializeRegistry,
  serializeRoleAssignment,
  serializeWorkspace,
  COMPUTE_TYPE,
  ML_PROVIDER,
  WORKSPACE_TYPE,
  type ComputeRecord,
  type WorkspaceRecord,
} from './model';
import { ListCache, pagedResponse } from './paging';
import { roleGuid } from './roles';
import { ArmError, ArmState, asRecord, sameIdentity, type Caller, type LroKind, type LroOperation } from './state';

const WS = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.MachineLearningServices/workspaces/:ws';
const RA = 'providers/Microsoft.Authorization/roleAssignments';
const RD = 'providers/Microsoft.Authorization/roleDefinitions';

const RoleAssignmentBody = z
  .object({
    properties: z
      .object({
        roleDefinitionId: z.string().min(1),
        principalId: z.string().min(1),
        principalType: z.string().nullish(),
        description: z.string().nullish(),
        condition: z.string().nullish(),
        conditionVersion: z.string().nullish(),
        delegatedManagedIdentityResourceId: z.string().nullish(),
      })
      .loose(),
  })
  .loose();

const WireIdentity = z
  .object({
    type: z.string(),
    userAssignedIdentities: z.record(z.string(), z.unknown()).nullish(),
  })
  .loose();

const ComputePutBody = z
  .object({
    location: z.string().nullish(),
    tags: z.record(z.string(), z.string()).nullish(),
    identity: WireIdentity.nullish(),
    properties: z
      .object({
        computeType: z.string(),
        description: z.string().nullish(),
        disableLocalAuth: z.boolean().nullish(),
        properties: z.record(z.string(), z.unknown()).nullish(),
      })
      .loose(),
  })
  .loose();

const ComputePatchBody = z.object({
  properties: z.object({
    properties: z.object({
      scaleSettings: z
        .object({
          maxNodeCount: z.number().int(),
          minNodeCount: z.number().int().nullish(),
          nodeIdleTimeBeforeScaleDown: z.string().nullish(),
        })
        .loose(),
    }),
  }),
});

function ok(body: unknown, status = 200, headers?: Record<string, string>): EmuResponse {
  return { status, body, ...(headers ? { headers } : {}) };
}

function badRequest(message: string, code = 'BadRequest'): EmuResponse {
  return errorResponse(400, code, message);
}

function firstIssue(err: z.ZodError): string {
  const i = err.issues[0];
  return i ? `${i.path.join('.') || 'body'}: ${i.message}` : 'invalid body';
}

const noHyphens = (s: string): string => s.replace(/-/g, '');

/** Parses a role-assignment `$filter`: `atScope()`, `principalId eq '…'`, `assignedTo('…')`, joined by `and`. */
function parseAssignmentFilter(filter: string | null): { mode: 'atOrAbove' | 'all'; principalId?: string } | undefined {
  const out: { mode: 'atOrAbove' | 'all'; principalId?: string } = { mode: 'all' };
  if (!filter || filter.trim() === '') return out;
  for (const clause of filter.split(/\s+and\s+/i)) {
    const c = clause.trim();
    let m: RegExpExecArray | null;
    if (/^atScope\(\)$/i.test(c)) out.mode = 'atOrAbove';
    else if ((m = /^principalId\s+eq\s+'([^']*)'$/i.exec(c))) out.principalId = m[1] ?? '';
    else if ((m = /^assignedTo\('([^']*)'\)$/i.exec(c))) out.principalId = m[1] ?? '';
    else return undefined;
  }
  return out;
}

/** Parses `key eq 'value'` clauses joined by `and` (role definitions, generic resources). */
function parseEqFilter(filter: string | null, allowed: string[]): Map<string, string> | undefined {
  const out = new Map<string, string>();
  if (!filter || filter.trim() === '') return out;
  for (const clause of filter.split(/\s+and\s+/i)) {
    const c = clause.trim();
    if (/^atScopeAndBelow\(\)$/i.test(c)) continue;
    // OData escapes a quote inside a string literal by doubling it: 'O''Brien'.
    const m = /^(\w+)\s+eq\s+'((?:[^']|'')*)'$/i.exec(c);
    if (!m) return undefined;
    const k = (m[1] ?? '').toLowerCase();
    if (!allowed.includes(k)) return undefined;
    out.set(k, (m[2] ?? '').replace(/''/g, "'"));
  }
  return out;
}

export function buildArmRouter(state: ArmState): Router {
  const router = new Router();
  const cache = new ListCache();

  /** Wraps a handler: ARM errors become ARM error bodies; answers carry ARM's usual headers. */
  const h =
    (fn: Handler): Handler =>
    async (req) => {
      let res: EmuResponse;
      try {
        res = await fn(req);
      } catch (err) {
        if (err instanceof ArmError) res = errorResponse(err.status, err.code, err.message);
        else throw err;
      }
      const write = req.method !== 'GET' && req.method !== 'HEAD';
      const requestId = randomUUID();
      res.headers = {
        'x-ms-request-id': requestId,
        'x-ms-correlation-request-id': requestId,
        ...(write ? { 'x-ms-ratelimit-remaining-subscription-writes': '1199' } : { 'x-ms-ratelimit-remaining-subscription-reads': '11999' }),
        ...(res.headers ?? {}),
      };
      return res;
    };
  const route = (method: string, pattern: string, operation: string, fn: Handler): void => {
    router.add(method, pattern, operation, h(fn));
  };
  const caller = (req: EmuRequest): Caller => {
    const auth = req.headers.authorization;
    return state.callerFromAuthorization(typeof auth === 'string' ? auth : undefined);
  };
  const clientRequestId = (req: EmuRequest): string => {
    const v = req.headers['x-ms-client-request-id'];
    return typeof v === 'string' ? v : randomUUID();
  };
  const requestUrl = (req: EmuRequest): string => {
    const q = req.query.toString();
    return `${req.baseUrl}${req.path}${q ? `?${q}` : ''}`;
  };
  const list = (req: EmuRequest, build: () => unknown[]): EmuResponse => pagedResponse(req, cache.get(req, state.version, build), state.pageSize);
  const scopeOf = (req: EmuRequest): string => normaliseScope(req.params.scope ?? '/');
  const checkScopeSubscription = (scope: string): void => {
    const { subscriptionId } = parseResourceId(scope);
    if (subscriptionId !== undefined) state.requireSubscription(subscriptionId);
  };

  // ------------------------------------------------------------ subscriptions, groups, resources

  route('GET', '/subscriptions', 'arm.subscriptions.list', (req) =>
    list(req, () => state.listSubscriptions().map((s) => subscriptionBody(state, s.subscriptionId, s.displayName))),
  );
  route('GET', '/subscriptions/:sub', 'arm.subscriptions.get', (req) => {
    const s = state.requireSubscription(req.params.sub ?? '');
    return ok(subscriptionBody(state, s.subscriptionId, s.displayName));
  });
  route('GET', '/subscriptions/:sub/resourceGroups', 'arm.resourceGroups.list', (req) => {
    state.requireSubscription(req.params.sub ?? '');
    return list(req, () => state.listResourceGroups(req.params.sub ?? '').map(resourceGroupBody));
  });
  route('GET', '/subscriptions/:sub/resourceGroups/:rg', 'arm.resourceGroups.get', (req) =>
    ok(resourceGroupBody(state.requireResourceGroup(req.params.sub ?? '', req.params.rg ?? ''))),
  );
  const resources = (req: EmuRequest, scopeKey: string): EmuResponse => {
    const filter = parseEqFilter(req.query.get('$filter'), ['resourcetype', 'tagname', 'tagvalue', 'location', 'resourcegroup', 'name']);
    if (!filter) return badRequest(`The $filter '${req.query.get('$filter') ?? ''}' is not supported.`, 'InvalidFilterInQueryString');
    return list(req, () => state.genericResources(scopeKey).filter((r) => matchesResourceFilter(r, filter)));
  };
  route('GET', '/subscriptions/:sub/resources', 'arm.resources.list', (req) => {
    const s = state.requireSubscription(req.params.sub ?? '');
    return resources(req, key(`/subscriptions/${s.subscriptionId}`));
  });
  route('GET', '/subscriptions/:sub/resourceGroups/:rg/resources', 'arm.resources.list', (req) =>
    resources(req, key(state.requireResourceGroup(req.params.sub ?? '', req.params.rg ?? '').id)),
  );

  // ------------------------------------------------------------ container registries

  route('GET', '/subscriptions/:sub/providers/Microsoft.ContainerRegistry/registries', 'arm.registries.list', (req) => {
    const s = state.requireSubscription(req.params.sub ?? '');
    return list(req, () => state.listRegistries(key(`/subscriptions/${s.subscriptionId}`)).map(serializeRegistry));
  });
  route('GET', '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.ContainerRegistry/registries', 'arm.registries.list', (req) => {
    const rg = state.requireResourceGroup(req.params.sub ?? '', req.params.rg ?? '');
    return list(req, () => state.listRegistries(key(rg.id)).map(serializeRegistry));
  });
  route('GET', '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.ContainerRegistry/registries/:name', 'arm.registries.get', (req) => {
    const rg = state.requireResourceGroup(req.params.sub ?? '', req.params.rg ?? '');
    const r = state.getRegistry(`${rg.id}/providers/Microsoft.ContainerRegistry/registries/${req.params.name ?? ''}`);
    if (!r) {
      return errorResponse(
        404,
        'ResourceNotFound',
        `The Resource 'Microsoft.ContainerRegistry/registries/${req.params.name ?? ''}' under resource group '${rg.name}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
      );
    }
    return ok(serializeRegistry(r));
  });

  // ------------------------------------------------------------ Azure ML workspaces

  route('GET', `/subscriptions/:sub/providers/${WORKSPACE_TYPE}`, 'arm.workspaces.list', (req) => {
    const s = state.requireSubscription(req.params.sub ?? '');
    return list(req, () => state.listWorkspaces(key(`/subscriptions/${s.subscriptionId}`)).map(serializeWorkspace));
  });
  route('GET', `/subscriptions/:sub/resourceGroups/:rg/providers/${WORKSPACE_TYPE}`, 'arm.workspaces.list', (req) => {
    const rg = state.requireResourceGroup(req.params.sub ?? '', req.params.rg ?? '');
    return list(req, () => state.listWorkspaces(key(rg.id)).map(serializeWorkspace));
  });
  const workspaceOf = (req: EmuRequest): WorkspaceRecord => state.requireWorkspace(req.params.sub ?? '', req.params.rg ?? '', req.params.ws ?? '');
  route('GET', WS, 'arm.workspaces.get', (req) => ok(serializeWorkspace(workspaceOf(req))));

  // ------------------------------------------------------------ datastores

  route('GET', `${WS}/datastores`, 'arm.datastores.list', (req) => {
    const ws = workspaceOf(req);
    return list(req, () => state.listDatastores(ws.id).map(serializeDatastore));
  });
  route('GET', `${WS}/datastores/:name`, 'arm.datastores.get', (req) => {
    const ws = workspaceOf(req);
    const d = state.getDatastore(`${ws.id}/datastores/${req.params.name ?? ''}`);
    if (!d) return errorResponse(404, 'UserError', `Datastore '${req.params.name ?? ''}' was not found in workspace '${ws.name}'.`);
    return ok(serializeDatastore(d));
  });

  // ------------------------------------------------------------ computes

  const computeNotFound = (ws: WorkspaceRecord, name: string): EmuResponse =>
    errorResponse(
      404,
      'ResourceNotFound',
      `The Resource '${COMPUTE_TYPE}/${ws.name}/${name}' under resource group '${ws.resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  const transientConflict = (c: ComputeRecord): EmuResponse =>
    errorResponse(409, 'Conflict', `Compute '${c.name}' is in provisioning state '${c.properties.provisioningState}'; wait for the operation in progress to finish.`);
  const lroHeaders = (req: EmuRequest, op: LroOperation, withLocation: boolean): Record<string, string> => {
    const apiVersion = req.query.get('api-version') ?? '2022-10-01';
    const base = `${req.baseUrl}/subscriptions/${op.subscriptionId}/providers/${ML_PROVIDER}/locations/${op.location}`;
    return {
      'Azure-AsyncOperation': `${base}/computeOperationsStatus/${op.id}?api-version=${apiVersion}`,
      ...(withLocation ? { Location: `${base}/computeOperationsResult/${op.id}?api-version=${apiVersion}` } : {}),
    };
  };

  route('GET', `${WS}/computes`, 'arm.computes.list', (req) => {
    const ws = workspaceOf(req);
    return list(req, () => state.listComputes(ws.id).map(serializeCompute));
  });

  route('GET', `${WS}/computes/:name`, 'arm.computes.get', (req) => {
    const ws = workspaceOf(req);
    const c = state.getCompute(`${ws.id}/computes/${req.params.name ?? ''}`);
    return c ? ok(serializeCompute(c)) : computeNotFound(ws, req.params.name ?? '');
  });

  route('PUT', `${WS}/computes/:name`, 'arm.computes.put', (req) => {
    const ws = workspaceOf(req);
    const name = req.params.name ?? '';
    const parsed = ComputePutBody.safeParse(req.body);
    if (!parsed.success) return badRequest(firstIssue(parsed.error));
    const body = parsed.data;
    const existing = state.getCompute(`${ws.id}/computes/${name}`);
    if (existing && state.isTransient(existing)) return transientConflict(existing);
    if (existing && existing.properties.computeType.toLowerCase() !== body.properties.computeType.toLowerCase()) {
      return badRequest(`Compute '${name}' is of type '${existing.properties.computeType}'; its type cannot be changed to '${body.properties.computeType}'.`);
    }
    const wireIdentity = body.identity ? { type: body.identity.type, userAssignedIdentities: asRecord(body.identity.userAssignedIdentities) } : undefined;
    if (wireIdentity) {
      const parts = wireIdentity.type.split(',').map((t) => t.trim().toLowerCase());
      if (parts.some((t) => !['none', 'systemassigned', 'userassigned'].includes(t))) return badRequest(`Identity type '${wireIdentity.type}' is not supported.`);
      if (parts.includes('userassigned') && Object.keys(wireIdentity.userAssignedIdentities).length === 0) {
        return badRequest('At least one user assigned identity is required when the identity type includes UserAssigned.');
      }
    }
    if (existing && existing.properties.computeType === 'ComputeInstance' && !sameIdentity(existing.identity, wireIdentity)) {
      return badRequest('Compute instance identity cannot be updated. Delete and recreate the compute instance to change its identity.');
    }
    const who = caller(req);
    const identity = wireIdentity ? state.buildIdentity(wireIdentity, existing?.identity, undefined) : undefined;
    const rec = state.newCompute(ws, name, {
      location: body.location ?? existing?.location ?? ws.location,
      ...(body.tags ? { tags: body.tags } : {}),
      ...(identity ? { identity } : {}),
      computeType: existing?.properties.computeType ?? body.properties.computeType,
      description: body.properties.description ?? null,
      disableLocalAuth: body.properties.disableLocalAuth ?? false,
      inner: body.properties.properties ?? {},
      caller: who,
      ...(existing ? { previous: existing } : {}),
    });
    rec.properties.provisioningState = existing ? 'Updating' : 'Creating';
    state.putComputeRecord(rec);
    const http = existing ? state.httpInfo('PUT', rec.id, clientRequestId(req), req.query.get('api-version') ?? undefined) : undefined;
    const op = state.startOperation('put', rec, (o) => {
      const cur = state.getCompute(rec.id);
      if (!cur) return;
      if (o.status === 'Failed' && o.error) {
        cur.properties.provisioningState = 'Failed';
        cur.properties.provisioningErrors = [{ error: o.error }];
        if (cur.properties.computeType === 'ComputeInstance' && !existing) cur.properties.properties.state = 'CreateFailed';
        state.resourceEvent('Microsoft.Resources.ResourceWriteFailure', cur.id, `${COMPUTE_TYPE}/write`, who, http);
        return;
      }
      cur.properties.provisioningState = 'Succeeded';
      if (cur.properties.computeType === 'ComputeInstance' && cur.properties.properties.state === 'Creating') cur.properties.properties.state = 'Running';
      state.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', cur.id, `${COMPUTE_TYPE}/write`, who, http);
    });
    return ok(serializeCompute(rec), existing ? 200 : 201, lroHeaders(req, op, false));
  });

  route('PATCH', `${WS}/computes/:name`, 'arm.computes.patch', (req) => {
    const ws = workspaceOf(req);
    const c = state.getCompute(`${ws.id}/computes/${req.params.name ?? ''}`);
    if (!c) return computeNotFound(ws, req.params.name ?? '');
    if (state.isTransient(c)) return transientConflict(c);
    if (c.properties.computeType !== 'AmlCompute') return badRequest(`Compute '${c.name}' is a ${c.properties.computeType}; only AmlCompute scale settings can be updated.`);
    const parsed = ComputePatchBody.safeParse(req.body);
    if (!parsed.success) return badRequest(firstIssue(parsed.error));
    const s = parsed.data.properties.properties.scaleSettings;
    const prev = asRecord(c.properties.properties.scaleSettings);
    c.properties.properties.scaleSettings = {
      ...prev,
      maxNodeCount: s.maxNodeCount,
      ...(s.minNodeCount !== undefined && s.minNodeCount !== null ? { minNodeCount: s.minNodeCount } : {}),
      ...(s.nodeIdleTimeBeforeScaleDown ? { nodeIdleTimeBeforeScaleDown: s.nodeIdleTimeBeforeScaleDown } : {}),
    };
    c.properties.provisioningState = 'Updating';
    c.properties.modifiedOn = armTime(state.deps.ctx.clock.now());
    state.putComputeRecord(c);
    const who = caller(req);
    const http = state.httpInfo('PATCH', c.id, clientRequestId(req), req.query.get('api-version') ?? undefined);
    const op = state.startOperation('patch', c, (o) => {
      const cur = state.getCompute(c.id);
      if (!cur) return;
      if (o.status === 'Failed' && o.error) {
        cur.properties.provisioningState = 'Failed';
        cur.properties.provisioningErrors = [{ error: o.error }];
        state.resourceEvent('Microsoft.Resources.ResourceWriteFailure', cur.id, `${COMPUTE_TYPE}/write`, who, http);
        return;
      }
      cur.properties.provisioningState = 'Succeeded';
      state.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', cur.id, `${COMPUTE_TYPE}/write`, who, http);
    });
    return ok(serializeCompute(c), 200, lroHeaders(req, op, false));
  });

  const action = (kind: Extract<LroKind, 'stop' | 'start' | 'restart'>): Handler => (req) => {
    const ws = workspaceOf(req);
    const c = state.getCompute(`${ws.id}/computes/${req.params.name ?? ''}`);
    if (!c) return computeNotFound(ws, req.params.name ?? '');
    if (c.properties.computeType !== 'ComputeInstance') return badRequest(`The ${kind} action is only supported for compute instances; '${c.name}' is a ${c.properties.computeType}.`);
    if (state.isTransient(c)) return transientConflict(c);
    const inner = c.properties.properties;
    const before = inner.state;
    inner.state = kind === 'stop' ? 'Stopping' : kind === 'start' ? 'Starting' : 'Restarting';
    state.putComputeRecord(c);
    const who = caller(req);
    const http = state.httpInfo('POST', `${c.id}/${kind}`, clientRequestId(req), req.query.get('api-version') ?? undefined);
    const op = state.startOperation(kind, c, (o) => {
      const cur = state.getCompute(c.id);
      if (!cur) return;
      if (o.status === 'Failed') {
        cur.properties.properties.state = before;
        return;
      }
      cur.properties.properties.state = kind === 'stop' ? 'Stopped' : 'Running';
      state.resourceEvent('Microsoft.Resources.ResourceActionSuccess', cur.id, `${COMPUTE_TYPE}/${kind}/action`, who, http);
    });
    return { status: 202, headers: lroHeaders(req, op, true) };
  };
  route('POST', `${WS}/computes/:name/stop`, 'arm.computes.stop', action('stop'));
  route('POST', `${WS}/computes/:name/start`, 'arm.computes.start', action('start'));
  route('POST', `${WS}/computes/:name/restart`, 'arm.computes.restart', action('restart'));

  route('DELETE', `${WS}/computes/:name`, 'arm.computes.delete', (req) => {
    const ws = workspaceOf(req);
    const underlying = req.query.get('underlyingResourceAction');
    if (!underlying || !['delete', 'detach'].includes(underlying.toLowerCase())) {
      return badRequest("The query parameter 'underlyingResourceAction' is required and must be 'Delete' or 'Detach'.");
    }
    const c = state.getCompute(`${ws.id}/computes/${req.params.name ?? ''}`);
    if (!c) return { status: 204 };
    if (c.properties.provisioningState === 'Deleting') return transientConflict(c);
    const before = c.properties.provisioningState;
    c.properties.provisioningState = 'Deleting';
    state.putComputeRecord(c);
    const who = caller(req);
    const http = state.httpInfo('DELETE', c.id, clientRequestId(req), req.query.get('api-version') ?? undefined);
    const op = state.startOperation('delete', c, (o) => {
      const cur = state.getCompute(c.id);
      if (!cur) return;
      if (o.status === 'Failed' && o.error) {
        cur.properties.provisioningState = before === 'Succeeded' ? 'Failed' : before;
        cur.properties.provisioningErrors = [{ error: o.error }];
        return;
      }
      state.removeCompute(cur.id);
      state.resourceEvent('Microsoft.Resources.ResourceDeleteSuccess', cur.id, `${COMPUTE_TYPE}/delete`, who, http);
    });
    return { status: 202, headers: lroHeaders(req, op, true) };
  });

  route('GET', `/subscriptions/:sub/providers/${ML_PROVIDER}/locations/:loc/computeOperationsStatus/:op`, 'arm.operations.get', (req) => {
    const op = state.pollOperation(req.params.op ?? '');
    if (!op) return errorResponse(404, 'NotFound', `Operation '${req.params.op ?? ''}' was not found.`);
    return ok(state.operationBody(op));
  });
  route('GET', `/subscriptions/:sub/providers/${ML_PROVIDER}/locations/:loc/computeOperationsResult/:op`, 'arm.operations.result', (req) => {
    const op = state.pollOperation(req.params.op ?? '');
    if (!op) return errorResponse(404, 'NotFound', `Operation '${req.params.op ?? ''}' was not found.`);
    if (op.status === 'InProgress') return { status: 202, headers: { Location: requestUrl(req) } };
    if (op.status === 'Failed' && op.error) return errorResponse(400, op.error.code, op.error.message);
    return { status: 200 };
  });

  // ------------------------------------------------------------ role definitions

  const listRoleDefinitions = (req: EmuRequest, scope: string): EmuResponse => {
    const filter = parseEqFilter(req.query.get('$filter'), ['rolename', 'type']);
    if (!filter) return badRequest(`The $filter '${req.query.get('$filter') ?? ''}' is not supported.`, 'UnsupportedQuery');
    const roleName = filter.get('rolename')?.toLowerCase();
    const type = filter.get('type')?.toLowerCase();
    return list(req, () =>
      state
        .listRoleDefinitions()
        .filter((d) => (roleName === undefined || d.roleName.toLowerCase() === roleName) && (type === undefined || d.roleType.toLowerCase() === type))
        .map((d) => state.serializeRoleDefinition(scope, d)),
    );
  };
  const getRoleDefinition = (scope: string, id: string): EmuResponse => {
    const d = state.findRoleDefinition(id);
    if (!d) return errorResponse(404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleGuid(id)}' does not exist.`);
    return ok(state.serializeRoleDefinition(scope, d));
  };
  route('GET', `/${RD}`, 'arm.roleDefinitions.list', (req) => listRoleDefinitions(req, '/'));
  route('GET', `/${RD}/:id`, 'arm.roleDefinitions.get', (req) => getRoleDefinition('/', req.params.id ?? ''));
  route('GET', `/*scope/${RD}`, 'arm.roleDefinitions.list', (req) => {
    const scope = scopeOf(req);
    checkScopeSubscription(scope);
    return listRoleDefinitions(req, scope);
  });
  route('GET', `/*scope/${RD}/:id`, 'arm.roleDefinitions.get', (req) => {
    const scope = scopeOf(req);
    checkScopeSubscription(scope);
    return getRoleDefinition(scope, req.params.id ?? '');
  });

  // ------------------------------------------------------------ role assignments

  route('GET', `/*scope/${RA}`, 'arm.roleAssignments.list', (req) => {
    const scope = scopeOf(req);
    checkScopeSubscription(scope);
    const filter = parseAssignmentFilter(req.query.get('$filter'));
    if (!filter) return badRequest(`The $filter '${req.query.get('$filter') ?? ''}' is not supported.`, 'UnsupportedQuery');
    return list(req, () => state.listAssignments(scope, filter.mode, filter.principalId).map(serializeRoleAssignment));
  });

  route('GET', `/*scope/${RA}/:name`, 'arm.roleAssignments.get', (req) => {
    const scope = scopeOf(req);
    const ra = state.getAssignmentByName(req.params.name ?? '');
    if (!ra || key(ra.scope) !== key(scope)) {
      return errorResponse(404, 'RoleAssignmentNotFound', `The role assignment '${req.params.name ?? ''}' is not found.`);
    }
    return ok(serializeRoleAssignment(ra));
  });

  route('PUT', `/*scope/${RA}/:name`, 'arm.roleAssignments.create', (req) => {
    const scope = scopeOf(req);
    const name = req.params.name ?? '';
    if (!isGuid(name)) {
      return badRequest(`The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`, 'InvalidRoleAssignmentId');
    }
    checkScopeSubscription(scope);
    const parsed = RoleAssignmentBody.safeParse(req.body);
    if (!parsed.success) return badRequest(`The request content was invalid and could not be deserialized: ${firstIssue(parsed.error)}`, 'InvalidRequestContent');
    const p = parsed.data.properties;
    if (!state.findRoleDefinition(p.roleDefinitionId)) {
      return badRequest(`The specified role definition with ID '${roleGuid(p.roleDefinitionId)}' does not exist.`, 'RoleDefinitionDoesNotExist');
    }
    const existing = state.getAssignmentByName(name);
    if (existing) {
      const same =
        key(existing.scope) === key(scope) &&
        roleGuid(existing.roleDefinitionId) === roleGuid(p.roleDefinitionId) &&
        existing.principalId.toLowerCase() === p.principalId.toLowerCase();
      if (same) return ok(serializeRoleAssignment(existing), 201);
      return badRequest('Tenant ID, application ID, principal ID, and scope are not allowed to be updated.', 'RoleAssignmentUpdateNotPermitted');
    }
    const principalNotFound = (): EmuResponse =>
      badRequest(
        `Principal ${noHyphens(p.principalId)} does not exist in the directory ${state.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
        'PrincipalNotFound',
      );
    if (state.consumePropagation(p.principalId)) return principalNotFound();
    let principalType = p.principalType ?? undefined;
    if (state.principals) {
      const found = state.principals.lookup(p.principalId);
      if (!found) return principalNotFound();
      if (principalType !== undefined && principalType.toLowerCase() !== found.type.toLowerCase()) {
        return badRequest(
          `The PrincipalId '${noHyphens(p.principalId)}' has type '${found.type}' , which is different from specified PrinciaplType '${principalType}'.`,
          'UnmatchedPrincipalType',
        );
      }
      principalType = found.type;
    }
    if (state.findAssignmentByTriple(scope, p.roleDefinitionId, p.principalId)) {
      return errorResponse(409, 'RoleAssignmentExists', 'The role assignment already exists.');
    }
    const ra = state.putAssignment(
      state.newAssignment({
        scope,
        name,
        roleDefinitionId: p.roleDefinitionId,
        principalId: p.principalId,
        principalType: principalType ?? 'User',
        description: p.description ?? null,
        condition: p.condition ?? null,
        conditionVersion: p.conditionVersion ?? null,
        delegatedManagedIdentityResourceId: p.delegatedManagedIdentityResourceId ?? null,
        caller: caller(req),
      }),
    );
    return ok(serializeRoleAssignment(ra), 201);
  });

  route('DELETE', `/*scope/${RA}/:name`, 'arm.roleAssignments.delete', (req) => {
    const scope = scopeOf(req);
    const ra = state.getAssignmentByName(req.params.name ?? '');
    if (!ra || key(ra.scope) !== key(scope)) return { status: 204 };
    state.removeAssignment(ra.name);
    return ok(serializeRoleAssignment(ra));
  });

  return router;
}

function subscriptionBody(state: ArmState, subscriptionId: string, displayName: string): Record<string, unknown> {
  return {
    id: `/subscriptions/${subscriptionId}`,
    authorizationSource: 'RoleBased',
    managedByTenants: [],
    subscriptionId,
    tenantId: state.tenantId,
    displayName,
    state: 'Enabled',
    subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
  };
}

function resourceGroupBody(rg: { id: string; name: string; location: string; tags: Record<string, string> }): Record<string, unknown> {
  return { id: rg.id, name: rg.name, type: 'Microsoft.Resources/resourceGroups', location: rg.location, tags: rg.tags, properties: { provisioningState: 'Succeeded' } };
}

function matchesResourceFilter(r: Record<string, unknown>, filter: Map<string, string>): boolean {
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const eq = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  const rt = filter.get('resourcetype');
  if (rt !== undefined && !eq(str(r.type), rt)) return false;
  const loc = filter.get('location');
  if (loc !== undefined && !eq(str(r.location), loc)) return false;
  const name = filter.get('name');
  if (name !== undefined && !eq(str(r.name), name)) return false;
  const rg = filter.get('resourcegroup');
  if (rg !== undefined && !eq(parseResourceId(str(r.id)).resourceGroup ?? '', rg)) return false;
  const tagName = filter.get('tagname');
  if (tagName !== undefined) {
    const tags = asRecord(r.tags);
    const k = Object.keys(tags).find((t) => eq(t, tagName));
    if (k === undefined) return false;
    const tagValue = filter.get('tagvalue');
    if (tagValue !== undefined && !eq(str(tags[k]), tagValue)) return false;
  }
  return true;
}
