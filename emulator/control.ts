/**
 * The HTTP control API (`/_emulator/...`, plain http on loopback) so another process — `npm run
 * emulator` driven by the demo, say — can change the emulated world and read it back. A thin layer
 * over the in-process controls; see emulator/README.md for the route list.
 */
import { z } from 'zod';
import type { Emulator } from './index';
import { ArmError } from './arm';
import { ComputeSpec, DatastoreSpec, IdentitySpec, ProvisioningState, WorkspaceSpec } from './arm/schema';
import { Router } from './core/router';
import type { EmuRequest, EmuResponse, Handler, ServiceName } from './core/types';
import { errorResponse } from './core/types';
import { DirectoryError } from './graph';
import { EventSubscriptionSpec } from './tenant';

const PREFIX = '/_emulator';

class ControlError extends Error {
  override name = 'ControlError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new ControlError(400, z.prettifyError(r.error));
  return r.data;
}

const tags = z.record(z.string(), z.string());

const ComputePatchBody = z.object({
  identity: IdentitySpec.nullable().optional(),
  tags: tags.optional(),
  disableLocalAuth: z.boolean().optional(),
  sshPublicAccess: z.enum(['Enabled', 'Disabled']).optional(),
  remoteLoginPortPublicAccess: z.enum(['Enabled', 'Disabled']).optional(),
  assignedUser: z.string().nullable().optional(),
  scaleSettings: z
    .object({ maxNodeCount: z.number().int(), minNodeCount: z.number().int().optional(), nodeIdleTimeBeforeScaleDown: z.string().optional() })
    .optional(),
  state: z.string().optional(),
  provisioningState: ProvisioningState.optional(),
});

const WorkspacePatchBody = z.object({
  tags: tags.optional(),
  friendlyName: z.string().optional(),
  description: z.string().optional(),
  publicNetworkAccess: z.enum(['Enabled', 'Disabled']).optional(),
  containerRegistry: z.string().nullable().optional(),
  identity: IdentitySpec.optional(),
});

const FaultBody = z.object({
  service: z.enum(['arm', 'graph', 'keyvault', 'eventgrid', 'msi', 'webhook']).optional(),
  method: z.string().optional(),
  /** A regular expression, matched against the request path. */
  path: z.string().optional(),
  operation: z.string().optional(),
  status: z.number().int().optional(),
  retryAfterSeconds: z.number().int().nonnegative().optional(),
  code: z.string().optional(),
  delayMs: z.number().int().nonnegative().optional(),
  reset: z.boolean().optional(),
  times: z.number().int().positive().optional(),
  probability: z.number().min(0).max(1).optional(),
});

const EmitBody = z.object({
  type: z.enum(['write', 'delete']).default('write'),
  provisioningState: ProvisioningState.optional(),
  count: z.number().int().positive().max(100).optional(),
  callerObjectId: z.string().optional(),
});

const caller = (v: { callerObjectId?: string | undefined }): { callerObjectId?: string } => (v.callerObjectId ? { callerObjectId: v.callerObjectId } : {});

/** Builds the control router over a running emulator. */
export function createControlService(emu: Emulator): Router {
  const router = new Router();
  const route = (method: string, path: string, name: string, fn: Handler): void => {
    router.add(method, `${PREFIX}${path}`, `control.${name}`, async (req) => {
      try {
        return await fn(req);
      } catch (err) {
        if (err instanceof ControlError) return errorResponse(err.status, 'BadRequest', err.message);
        if (err instanceof ArmError) return errorResponse(err.status, err.code, err.message);
        if (err instanceof DirectoryError) return errorResponse(/not in the directory|unknown/i.test(err.message) ? 404 : 400, 'DirectoryError', err.message);
        if (err instanceof Error) return errorResponse(400, 'BadRequest', err.message);
        throw err;
      }
    });
  };
  const ok = (body: unknown = { ok: true }, status = 200): EmuResponse => ({ status, body });
  const sub = (req: EmuRequest): string => req.query.get('subscriptionId') ?? emu.subscriptionId;
  const wsId = (req: EmuRequest): string => emu.arm.workspaceId(req.params.rg ?? '', req.params.ws ?? '', sub(req));
  const computeId = (req: EmuRequest): string => emu.arm.computeId(wsId(req), req.params.name ?? '');

  // ------------------------------------------------------------ whole emulator

  route('GET', '/state', 'state', () =>
    ok({
      tenantId: emu.tenantId,
      subscriptionId: emu.subscriptionId,
      urls: emu.urls,
      arm: emu.arm.snapshot(),
      graph: { applications: emu.graph.listApplications(), subscriptions: emu.graph.subscriptions() },
      keyvault: Object.fromEntries(emu.keyvault.vaultNames().map((v) => [v, { url: emu.vaultUrl(v), secrets: emu.keyvault.secretNames(v) }])),
      eventSubscriptions: emu.events.list(),
      publishedEvents: emu.events.published.length,
      requests: emu.record.count({ includeInjected: true }),
    }),
  );
  route('GET', '/env', 'env', () => ok(emu.wardenEnv()));
  route('POST', '/idle', 'idle', async () => {
    await emu.idle();
    return ok();
  });
  route('POST', '/clock/advance', 'clock.advance', (req) => {
    const b = parse(z.object({ ms: z.number().optional(), days: z.number().optional(), to: z.string().optional() }), req.body);
    if (b.to !== undefined) emu.clock.set(new Date(b.to));
    emu.clock.advance((b.ms ?? 0) + (b.days ?? 0) * 86_400_000);
    return ok({ now: emu.clock.nowDate().toISOString() });
  });
  route('GET', '/clock', 'clock.get', () => ok({ now: emu.clock.nowDate().toISOString() }));

  // ------------------------------------------------------------ requests, faults, latency

  route('GET', '/requests', 'requests.count', (req) => {
    const service = req.query.get('service') ?? undefined;
    const method = req.query.get('method') ?? undefined;
    const operation = req.query.get('operation') ?? undefined;
    const since = Number.parseInt(req.query.get('since') ?? '0', 10) || 0;
    const filter = {
      ...(service ? { service: service as ServiceName } : {}),
      ...(method ? { method } : {}),
      ...(operation ? { operation } : {}),
      includeInjected: req.query.get('includeInjected') !== 'false',
    };
    const found = emu.record.since(since, filter);
    const byOperation: Record<string, number> = {};
    for (const e of found) byOperation[e.operation] = (byOperation[e.operation] ?? 0) + 1;
    return ok({ mark: emu.record.mark(), count: found.length, byOperation });
  });
  route('POST', '/requests/clear', 'requests.clear', () => {
    emu.record.clear();
    return ok();
  });
  route('POST', '/faults', 'faults.add', (req) => {
    const b = parse(FaultBody, req.body);
    const { path, ...rest } = b;
    const rule = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    const id = emu.faults.add({ ...rule, ...(path !== undefined ? { path: new RegExp(path, 'i') } : {}) });
    return ok({ id }, 201);
  });
  route('DELETE', '/faults', 'faults.clear', () => {
    emu.faults.clear();
    return ok();
  });
  route('DELETE', '/faults/:id', 'faults.remove', (req) => {
    emu.faults.remove(Number.parseInt(req.params.id ?? '', 10));
    return ok();
  });
  route('PUT', '/latency', 'latency.set', (req) => {
    emu.faults.latencyMs = parse(z.object({ ms: z.number().int().nonnegative() }), req.body).ms;
    return ok({ ms: emu.faults.latencyMs });
  });

  // ------------------------------------------------------------ event subscriptions

  route('GET', '/events/subscriptions', 'events.subscriptions.list', () => ok({ value: emu.events.list() }));
  route('POST', '/events/subscriptions', 'events.subscriptions.add', (req) => {
    const s = parse(EventSubscriptionSpec, req.body);
    emu.events.subscribe({
      name: s.name,
      topic: s.topic,
      endpoint: s.endpoint,
      schema: s.schema,
      ...(s.includedEventTypes ? { includedEventTypes: s.includedEventTypes } : {}),
      ...(s.subjectBeginsWith ? { subjectBeginsWith: s.subjectBeginsWith } : {}),
      ...(s.subjectEndsWith ? { subjectEndsWith: s.subjectEndsWith } : {}),
    });
    return ok({ name: s.name }, 201);
  });
  route('DELETE', '/events/subscriptions/:name', 'events.subscriptions.remove', (req) => {
    emu.events.unsubscribe(req.params.name ?? '');
    return ok();
  });
  route('GET', '/events/published', 'events.published', (req) => {
    const since = Number.parseInt(req.query.get('since') ?? '0', 10) || 0;
    return ok({ total: emu.events.published.length, value: emu.events.published.slice(since) });
  });
  route('GET', '/deliveries', 'deliveries', () =>
    ok({ value: emu.pusher.log.map((d) => ({ kind: d.kind, url: d.url, status: d.status, attempts: d.attempts, time: d.time, error: d.error })) }),
  );

  // ------------------------------------------------------------ ARM

  route('PUT', '/arm/settings', 'arm.settings', (req) => {
    const b = parse(z.object({ pageSize: z.number().int().positive().optional(), lroPolls: z.number().int().nonnegative().optional() }), req.body);
    if (b.pageSize !== undefined) emu.arm.pageSize = b.pageSize;
    if (b.lroPolls !== undefined) emu.arm.lroPolls = b.lroPolls;
    return ok({ pageSize: emu.arm.pageSize, lroPolls: emu.arm.lroPolls });
  });
  route('POST', '/arm/propagate', 'arm.propagate', (req) => {
    const b = parse(z.object({ principalId: z.string().min(1), failures: z.number().int().nonnegative().optional(), forMs: z.number().optional(), untilMs: z.number().optional() }), req.body);
    emu.arm.propagate(b.principalId, {
      ...(b.failures !== undefined ? { failures: b.failures } : {}),
      ...(b.forMs !== undefined ? { forMs: b.forMs } : {}),
      ...(b.untilMs !== undefined ? { untilMs: b.untilMs } : {}),
    });
    return ok();
  });
  route('POST', '/arm/operations/fail', 'arm.operations.fail', (req) => {
    const b = parse(
      z.object({
        kind: z.enum(['put', 'patch', 'delete', 'stop', 'start', 'restart']).optional(),
        resourceName: z.string().optional(),
        code: z.string().optional(),
        message: z.string().optional(),
        times: z.number().int().positive().optional(),
      }),
      req.body,
    );
    emu.arm.failNextOperation(Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)));
    return ok();
  });
  route('POST', '/arm/operations/complete', 'arm.operations.complete', () => ok({ completed: emu.arm.completeOperations() }));
  route('GET', '/arm/roleAssignments', 'arm.roleAssignments', (req) => {
    const scope = req.query.get('scope');
    const principalId = req.query.get('principalId');
    return ok({ value: emu.arm.roleAssignments({ ...(scope ? { below: scope } : {}), ...(principalId ? { principalId } : {}) }) });
  });

  route('POST', '/arm/resourceGroups/:rg/workspaces', 'arm.workspaces.create', (req) => {
    const b = parse(WorkspaceSpec.extend({ callerObjectId: z.string().optional() }), req.body);
    const { callerObjectId, ...spec } = b;
    return ok(emu.arm.createWorkspace(req.params.rg ?? '', spec, { subscriptionId: sub(req), ...caller({ callerObjectId }) }), 201);
  });
  route('PATCH', '/arm/resourceGroups/:rg/workspaces/:ws', 'arm.workspaces.update', (req) => {
    const b = parse(WorkspacePatchBody.extend({ callerObjectId: z.string().optional() }), req.body);
    const { callerObjectId, ...patch } = b;
    const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    return ok(emu.arm.updateWorkspace(wsId(req), clean, caller({ callerObjectId })));
  });
  route('DELETE', '/arm/resourceGroups/:rg/workspaces/:ws', 'arm.workspaces.delete', (req) => ok({ deleted: emu.arm.deleteWorkspace(wsId(req)) }));
  route('POST', '/arm/resourceGroups/:rg/workspaces/:ws/datastores', 'arm.datastores.create', (req) =>
    ok(emu.arm.addDatastore(wsId(req), parse(DatastoreSpec, req.body)), 201),
  );
  route('POST', '/arm/resourceGroups/:rg/workspaces/:ws/computes', 'arm.computes.create', (req) => {
    const b = parse(ComputeSpec.extend({ succeedAfterMs: z.number().int().nonnegative().optional(), callerObjectId: z.string().optional() }), req.body);
    const { succeedAfterMs, callerObjectId, ...spec } = b;
    return ok(emu.arm.createCompute(wsId(req), spec, { ...caller({ callerObjectId }), ...(succeedAfterMs !== undefined ? { succeedAfterMs } : {}) }), 201);
  });
  route('PATCH', '/arm/resourceGroups/:rg/workspaces/:ws/computes/:name', 'arm.computes.update', (req) => {
    const b = parse(ComputePatchBody.extend({ callerObjectId: z.string().optional() }), req.body);
    const { callerObjectId, ...patch } = b;
    const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    return ok(emu.arm.updateCompute(computeId(req), clean, caller({ callerObjectId })));
  });
  route('DELETE', '/arm/resourceGroups/:rg/workspaces/:ws/computes/:name', 'arm.computes.delete', (req) => ok({ deleted: emu.arm.deleteCompute(computeId(req)) }));
  route('POST', '/arm/resourceGroups/:rg/workspaces/:ws/computes/:name/events', 'arm.computes.events', (req) => {
    const b = parse(EmitBody, req.body);
    const opts = { ...caller(b), ...(b.count !== undefined ? { count: b.count } : {}), ...(b.provisioningState ? { provisioningState: b.provisioningState } : {}) };
    const id = computeId(req);
    return ok({ value: b.type === 'delete' ? emu.arm.emitDeleteEvent(id, opts) : emu.arm.emitWriteEvent(id, opts) });
  });
  route('POST', '/arm/resourceGroups/:rg/workspaces/:ws/events', 'arm.workspaces.events', (req) => {
    const b = parse(EmitBody, req.body);
    const opts = { ...caller(b), ...(b.count !== undefined ? { count: b.count } : {}) };
    return ok({ value: b.type === 'delete' ? emu.arm.emitDeleteEvent(wsId(req), opts) : emu.arm.emitWriteEvent(wsId(req), opts) });
  });

  // ------------------------------------------------------------ Graph

  route('POST', '/graph/groups/:group/members', 'graph.members.add', (req) => {
    const b = parse(z.object({ memberId: z.string().min(1) }), req.body);
    return ok({ added: emu.graph.addMember(req.params.group ?? '', b.memberId) });
  });
  route('DELETE', '/graph/groups/:group/members/:member', 'graph.members.remove', (req) =>
    ok({ removed: emu.graph.removeMember(req.params.group ?? '', req.params.member ?? '') }),
  );
  route('GET', '/graph/groups/:group/transitiveMembers', 'graph.members.list', (req) => ok({ value: emu.graph.transitiveMemberIds(req.params.group ?? '') }));
  route('POST', '/graph/users', 'graph.users.add', (req) => ok(emu.graph.addUser(parse(z.looseObject({ id: z.string() }), req.body) as Parameters<Emulator['graph']['addUser']>[0]), 201));
  route('PATCH', '/graph/users/:id', 'graph.users.update', (req) => {
    const b = parse(z.object({ accountEnabled: z.boolean() }), req.body);
    emu.graph.setAccountEnabled(req.params.id ?? '', b.accountEnabled);
    return ok();
  });
  route('POST', '/graph/applications/:app/passwords/:keyId/expire', 'graph.passwords.expire', (req) => {
    const b = parse(z.object({ endDateTime: z.string().optional(), days: z.number().optional() }), req.body);
    const end = b.endDateTime ? new Date(b.endDateTime) : new Date(emu.clock.now() + (b.days ?? 7) * 86_400_000);
    emu.graph.expirePasswordSoon(req.params.app ?? '', req.params.keyId ?? '', end);
    return ok({ endDateTime: end.toISOString() });
  });
  route('GET', '/graph/applications', 'graph.applications', () => ok({ value: emu.graph.listApplications() }));
  route('GET', '/graph/subscriptions', 'graph.subscriptions', () => ok({ value: emu.graph.subscriptions() }));
  route('GET', '/graph/outbox', 'graph.outbox', () => ok({ value: emu.graph.outbox() }));

  // ------------------------------------------------------------ Key Vault, topic, webhook

  route('GET', '/keyvault/:vault/secrets', 'keyvault.secrets', (req) => ok({ value: emu.keyvault.secretNames(req.params.vault ?? '') }));
  route('POST', '/keyvault/:vault/secrets/:name', 'keyvault.secrets.set', (req) => {
    const b = parse(z.object({ value: z.string(), expiresOn: z.string().optional(), contentType: z.string().optional(), emitEvent: z.boolean().optional() }), req.body);
    const v = emu.keyvault.setSecret(req.params.vault ?? '', req.params.name ?? '', b.value, {
      ...(b.expiresOn ? { expiresOn: new Date(b.expiresOn) } : {}),
      ...(b.contentType ? { contentType: b.contentType } : {}),
      ...(b.emitEvent !== undefined ? { emitEvent: b.emitEvent } : {}),
    });
    return ok({ id: v.id, version: v.version }, 201);
  });
  route('POST', '/keyvault/check-expiry', 'keyvault.checkExpiry', (req) => {
    const b = parse(z.object({ casing: z.enum(['pascal', 'camel-string']).optional() }), req.body);
    return ok({ value: emu.keyvault.checkExpiry(b.casing ? { casing: b.casing } : {}) });
  });
  route('GET', '/eventgrid/received', 'eventgrid.received', () => ok({ value: emu.eventgrid.received() }));
  route('GET', '/webhook/received', 'webhook.received', (req) => ok({ value: emu.webhook.received(req.query.get('name') ?? undefined) }));

  return router;
}
