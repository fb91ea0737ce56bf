/**
 * The emulated ARM's state: subscriptions, resource groups, Azure ML workspaces, computes, datastores,
 * container registries and role assignments, with the indexes the list calls need, the long-running
 * operations in flight, and the resource events every write and delete publishes (facts §6.2).
 * Both the ARM routes and the in-process control go through the methods here.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EgEvent, EventBus } from '../core/eventbus';
import type { EmuContext } from '../core/server';
import {
  armTime,
  clone,
  key,
  normaliseScope,
  parseResourceId,
  scopeContains,
  COMPUTE_TYPE,
  ML_PROVIDER,
  REGISTRY_TYPE,
  ROLE_DEFINITION_TYPE,
  WORKSPACE_TYPE,
  type ComputeProperties,
  type ComputeRecord,
  type DatastoreRecord,
  type ManagedIdentity,
  type PrincipalDirectory,
  type RegistryRecord,
  type ResourceGroupRecord,
  type RoleAssignmentRecord,
  type SubscriptionRecord,
  type UserAssignedIdentity,
  type WorkspaceRecord,
} from './model';
import { BUILT_IN_ROLES, roleGuid, type RoleDefinitionSpec } from './roles';
import {
  ArmSection,
  ComputeSpec,
  DatastoreSpec,
  RegistrySpec,
  RoleAssignmentSpec,
  WorkspaceSpec,
  type IdentitySpec,
  type ProvisioningState,
} from './schema';

/** Who made a write, for `createdBy` and the `claims` of resource events. */
export interface Caller {
  objectId: string;
  appId: string;
  name: string;
  principalType: 'User' | 'ServicePrincipal';
}

/** The `httpRequest` block of a resource event (present on updates and deletes). */
export interface HttpRequestInfo {
  method: string;
  url: string;
  clientRequestId: string;
}

export type LroKind = 'put' | 'patch' | 'delete' | 'stop' | 'start' | 'restart';

/** Makes matching long-running operations end in `Failed` (control). */
export interface LroFailureRule {
  kind?: LroKind;
  /** Compute name (case-insensitive). */
  resourceName?: string;
  code?: string;
  message?: string;
  /** How many operations fail (default 1). */
  times?: number;
}

export interface LroOperation {
  id: string;
  subscriptionId: string;
  location: string;
  kind: LroKind;
  resourceId: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  pollsLeft: number;
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string };
  failWith?: { code: string; message: string };
  finish: (op: LroOperation) => void;
}

export type ResourceEventType =
  | 'Microsoft.Resources.ResourceWriteSuccess'
  | 'Microsoft.Resources.ResourceWriteFailure'
  | 'Microsoft.Resources.ResourceDeleteSuccess'
  | 'Microsoft.Resources.ResourceActionSuccess';

export interface ArmDeps {
  ctx: EmuContext;
  events: EventBus;
  tenantId: string;
  /** Who principal ids are; without it every principal is taken to exist. */
  principals?: PrincipalDirectory;
}

export interface ArmOptions {
  /** Items per page of every list (default 100). */
  pageSize?: number;
  /** Status polls answered `InProgress` before an operation completes (default 1). */
  lroPolls?: number;
}

const DEFAULT_CALLER_OBJECT_ID = '6f0b1b5e-9c8a-4d5e-8f7a-3b2c1d0e9f8a';
const DEFAULT_OPERATOR_OBJECT_ID = '0d7a3c1e-5b2f-4e8a-9c6d-1f2e3a4b5c6d';
const CONTRIBUTOR_GUID = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
const TERMINAL_STATES = new Set(['succeeded', 'failed', 'canceled']);

export class ArmError extends Error {
  override name = 'ArmError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A deterministic GUID (UUID v5-like) from any text, for seeded names and ids. */
export function guidFrom(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

function locationKey(location: string): string {
  return location.toLowerCase().replace(/\s+/g, '');
}

function identityTypes(type: string): Set<string> {
  return new Set(
    type
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t.length > 0 && t !== 'none'),
  );
}

/** Identity equality as a PUT would change it: the types and the set of user-assigned ids. */
export function sameIdentity(a: { type: string; userAssignedIdentities?: Record<string, unknown> } | undefined, b: typeof a): boolean {
  const ta = identityTypes(a?.type ?? 'None');
  const tb = identityTypes(b?.type ?? 'None');
  if (ta.size !== tb.size || [...ta].some((t) => !tb.has(t))) return false;
  const ua = Object.keys(a?.userAssignedIdentities ?? {}).map((k) => k.toLowerCase()).sort();
  const ub = Object.keys(b?.userAssignedIdentities ?? {}).map((k) => k.toLowerCase()).sort();
  return ua.join('|') === ub.join('|');
}

/** Canonical spelling of an identity type, as ARM echoes it. */
function canonicalIdentityType(type: string): string {
  const t = identityTypes(type);
  if (t.has('systemassigned') && t.has('userassigned')) return 'SystemAssigned,UserAssigned';
  if (t.has('systemassigned')) return 'SystemAssigned';
  if (t.has('userassigned')) return 'UserAssigned';
  return 'None';
}

export class ArmState {
  readonly tenantId: string;
  pageSize: number;
  lroPolls: number;
  /** The caller when a bearer token names nobody (ARM routes). */
  callerObjectId = DEFAULT_CALLER_OBJECT_ID;
  /** The caller of control-API writes (someone in the portal). */
  operatorObjectId = DEFAULT_OPERATOR_OBJECT_ID;
  principals: PrincipalDirectory | undefined;
  /** Bumped on every change; list snapshots are cached per version. */
  version = 0;

  private readonly subs = new Map<string, SubscriptionRecord>();
  private readonly rgs = new Map<string, ResourceGroupRecord>();
  private readonly workspaces = new Map<string, WorkspaceRecord>();
  private readonly computes = new Map<string, ComputeRecord>();
  private readonly datastores = new Map<string, DatastoreRecord>();
  private readonly registries = new Map<string, RegistryRecord>();
  private readonly roleDefs: RoleDefinitionSpec[] = [...BUILT_IN_ROLES];

  private readonly assignments = new Map<string, RoleAssignmentRecord>();
  private readonly assignmentsByScope = new Map<string, Set<string>>();
  private readonly assignmentsByPrincipal = new Map<string, Set<string>>();
  private readonly assignmentsByTriple = new Map<string, string>();

  private readonly ops = new Map<string, LroOperation>();
  private failureRules: Array<LroFailureRule & { left: number }> = [];
  private readonly propagation = new Map<string, { failures: number; untilMs?: number }>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly deps: ArmDeps,
    opts: ArmOptions = {},
  ) {
    this.tenantId = deps.tenantId;
    this.principals = deps.principals;
    this.pageSize = opts.pageSize ?? 100;
    this.lroPolls = opts.lroPolls ?? 1;
  }

  private get now(): number {
    return this.deps.ctx.clock.now();
  }

  private touch(): void {
    this.version++;
  }

  // ---------------------------------------------------------------- seeding

  seed(section: unknown): void {
    const parsed = ArmSection.parse(section ?? {});
    if (parsed.callerObjectId) this.callerObjectId = parsed.callerObjectId;
    for (const sub of parsed.subscriptions) {
      this.addSubscription(sub.id, sub.displayName);
      for (const rg of sub.resourceGroups) {
        const rgRec = this.addResourceGroup(sub.id, rg.name, rg.location, rg.tags ?? {});
        for (const reg of rg.registries ?? []) this.addRegistry(rgRec, reg);
        for (const ws of rg.workspaces) {
          const wsRec = this.putWorkspaceRecord(this.workspaceFromSpec(rgRec, ws));
          for (const ds of ws.datastores ?? []) this.addDatastore(wsRec, ds);
          for (const c of ws.computes ?? []) this.putComputeRecord(this.computeFromSpec(wsRec, c, this.operatorCaller()));
        }
      }
    }
    for (const ra of parsed.roleAssignments) this.seedRoleAssignment(ra);
  }

  // ---------------------------------------------------------------- callers

  operatorCaller(objectId?: string): Caller {
    return { objectId: objectId ?? this.operatorObjectId, appId: 'c44b4083-3bb0-49c1-b47d-974e53cbdf3c', name: 'Emulator operator', principalType: 'User' };
  }

  /** The caller named by a bearer token (a JWT's `oid`), else the configured default. */
  callerFromAuthorization(auth: string | undefined): Caller {
    const fallback: Caller = { objectId: this.callerObjectId, appId: this.callerObjectId, name: 'warden', principalType: 'ServicePrincipal' };
    const token = auth?.replace(/^Bearer\s+/i, '') ?? '';
    const parts = token.split('.');
    if (parts.length !== 3) return fallback;
    try {
      const payload: unknown = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
      if (typeof payload !== 'object' || payload === null) return fallback;
      const p = payload as Record<string, unknown>;
      const oid = typeof p.oid === 'string' ? p.oid : undefined;
      if (!oid) return fallback;
      return {
        objectId: oid,
        appId: typeof p.appid === 'string' ? p.appid : oid,
        name: typeof p.name === 'string' ? p.name : oid,
        principalType: p.idtyp === 'user' ? 'User' : 'ServicePrincipal',
      };
    } catch {
      return fallback;
    }
  }

  // ---------------------------------------------------------------- subscriptions and groups

  addSubscription(subscriptionId: string, displayName?: string): SubscriptionRecord {
    const rec: SubscriptionRecord = { subscriptionId, displayName: displayName ?? `Subscription ${subscriptionId.slice(0, 8)}` };
    this.subs.set(subscriptionId.toLowerCase(), rec);
    this.touch();
    return rec;
  }

  getSubscription(subscriptionId: string): SubscriptionRecord | undefined {
    return this.subs.get(subscriptionId.toLowerCase());
  }

  listSubscriptions(): SubscriptionRecord[] {
    return [...this.subs.values()];
  }

  requireSubscription(subscriptionId: string): SubscriptionRecord {
    const s = this.getSubscription(subscriptionId);
    if (!s) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${subscriptionId}' could not be found.`);
    return s;
  }

  addResourceGroup(subscriptionId: string, name: string, location: string, tags: Record<string, string> = {}): ResourceGroupRecord {
    const sub = this.requireSubscription(subscriptionId);
    const id = `/subscriptions/${sub.subscriptionId}/resourceGroups/${name}`;
    const existing = this.rgs.get(key(id));
    if (existing) return existing;
    const rec: ResourceGroupRecord = { id, subscriptionId: sub.subscriptionId, name, location, tags };
    this.rgs.set(key(id), rec);
    this.touch();
    return rec;
  }

  getResourceGroup(subscriptionId: string, name: string): ResourceGroupRecord | undefined {
    return this.rgs.get(key(`/subscriptions/${subscriptionId}/resourceGroups/${name}`));
  }

  requireResourceGroup(subscriptionId: string, name: string): ResourceGroupRecord {
    this.requireSubscription(subscriptionId);
    const rg = this.getResourceGroup(subscriptionId, name);
    if (!rg) throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return rg;
  }

  listResourceGroups(subscriptionId: string): ResourceGroupRecord[] {
    const sid = subscriptionId.toLowerCase();
    return [...this.rgs.values()].filter((r) => r.subscriptionId.toLowerCase() === sid);
  }

  // ---------------------------------------------------------------- registries and datastores

  addRegistry(rg: ResourceGroupRecord, spec: RegistrySpec): RegistryRecord {
    const s = RegistrySpec.parse(spec);
    const id = `${rg.id}/providers/Microsoft.ContainerRegistry/registries/${s.name}`;
    const rec: RegistryRecord = {
      id,
      name: s.name,
      subscriptionId: rg.subscriptionId,
      resourceGroup: rg.name,
      location: s.location ?? rg.location,
      tags: s.tags ?? {},
      sku: { name: s.sku, tier: s.sku },
      properties: {
        loginServer: `${s.name.toLowerCase()}.azurecr.io`,
        creationDate: armTime(this.now),
        provisioningState: 'Succeeded',
        adminUserEnabled: s.adminUserEnabled,
        publicNetworkAccess: 'Enabled',
        zoneRedundancy: 'Disabled',
        anonymousPullEnabled: false,
      },
    };
    this.registries.set(key(id), rec);
    this.touch();
    return rec;
  }

  getRegistry(id: string): RegistryRecord | undefined {
    return this.registries.get(key(id));
  }

  setRegistryAdminUser(id: string, enabled: boolean): RegistryRecord {
    const r = this.getRegistry(id);
    if (!r) throw new ArmError(404, 'ResourceNotFound', `The Resource '${REGISTRY_TYPE}' '${id}' was not found.`);
    r.properties.adminUserEnabled = enabled;
    this.touch();
    return r;
  }

  listRegistries(scopeKey: string): RegistryRecord[] {
    return [...this.registries.values()].filter((r) => key(r.id).startsWith(`${scopeKey}/`));
  }

  addDatastore(ws: WorkspaceRecord, spec: DatastoreSpec): DatastoreRecord {
    const s = DatastoreSpec.parse(spec);
    const credentials: DatastoreRecord['properties']['credentials'] = { credentialsType: s.credentialsType };
    if (s.credentialsType === 'ServicePrincipal' || s.credentialsType === 'Certificate') {
      credentials.clientId = s.clientId ?? guidFrom(`${ws.id}/${s.name}/client`);
      credentials.tenantId = s.tenantId ?? this.tenantId;
      credentials.authorityUrl = 'https://login.microsoftonline.com';
      credentials.resourceUrl = 'https://storage.azure.com/';
      if (s.credentialsType === 'Certificate') credentials.thumbprint = s.thumbprint ?? guidFrom(`${ws.id}/${s.name}/thumb`).replace(/-/g, '').toUpperCase();
    }
    const id = `${ws.id}/datastores/${s.name}`;
    const rec: DatastoreRecord = {
      id,
      name: s.name,
      workspaceId: ws.id,
      properties: {
        description: s.description ?? null,
        tags: s.tags ?? {},
        properties: {},
        isDefault: s.isDefault ?? false,
        credentials,
        datastoreType: s.datastoreType,
        accountName: s.accountName ?? `st${ws.name.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}`,
        ...(s.datastoreType === 'AzureFile' ? { fileShareName: s.containerName ?? 'code' } : { containerName: s.containerName ?? 'data' }),
        endpoint: 'core.windows.net',
        protocol: 'https',
        serviceDataAccessAuthIdentity: 'None',
      },
    };
    this.datastores.set(key(id), rec);
    this.touch();
    return rec;
  }

  listDatastores(wsId: string): DatastoreRecord[] {
    const prefix = `${key(wsId)}/datastores/`;
    return [...this.datastores.values()].filter((d) => key(d.id).startsWith(prefix));
  }

  getDatastore(id: string): DatastoreRecord | undefined {
    return this.datastores.get(key(id));
  }

  // ---------------------------------------------------------------- workspaces

  workspaceFromSpec(rg: ResourceGroupRecord, spec: WorkspaceSpec): WorkspaceRecord {
    const s = WorkspaceSpec.parse(spec);
    const id = `${rg.id}/providers/${WORKSPACE_TYPE}/${s.name}`;
    const location = s.location ?? rg.location;
    const stem = s.name.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 16);
    const rgProviders = `${rg.id}/providers`;
    let containerRegistry: string | undefined;
    if (s.containerRegistry) {
      containerRegistry = s.containerRegistry.startsWith('/')
        ? s.containerRegistry
        : `${rgProviders}/Microsoft.ContainerRegistry/registries/${s.containerRegistry}`;
    }
    const identity = this.identityFromSpec(s.identity ?? { type: 'SystemAssigned' }, undefined, `${id}/identity`);
    return {
      id,
      name: s.name,
      subscriptionId: rg.subscriptionId,
      resourceGroup: rg.name,
      location,
      tags: s.tags ?? {},
      ...(identity ? { identity } : {}),
      sku: { name: 'Basic', tier: 'Basic' },
      properties: {
        friendlyName: s.friendlyName ?? s.name,
        description: s.description ?? '',
        storageAccount: `${rgProviders}/Microsoft.Storage/storageAccounts/st${stem}`,
        keyVault: `${rgProviders}/Microsoft.KeyVault/vaults/kv${stem}`,
        applicationInsights: `${rgProviders}/Microsoft.insights/components/ai${stem}`,
        ...(containerRegistry ? { containerRegistry } : {}),
        discoveryUrl: `https://${locationKey(location)}.api.azureml.ms/discovery`,
        mlFlowTrackingUri: `azureml://${locationKey(location)}.api.azureml.ms/mlflow/v1.0${id}`,
        workspaceId: guidFrom(id.toLowerCase()),
        provisioningState: 'Succeeded',
        hbiWorkspace: s.hbiWorkspace ?? false,
        publicNetworkAccess: s.publicNetworkAccess ?? 'Enabled',
        v1LegacyMode: s.v1LegacyMode ?? false,
        storageHnsEnabled: false,
        privateLinkCount: 0,
        tenantId: this.tenantId,
        creationTime: armTime(this.now),
      },
    };
  }

  private putWorkspaceRecord(ws: WorkspaceRecord): WorkspaceRecord {
    this.workspaces.set(key(ws.id), ws);
    this.touch();
    return ws;
  }

  getWorkspace(id: string): WorkspaceRecord | undefined {
    return this.workspaces.get(key(id));
  }

  requireWorkspace(subscriptionId: string, rg: string, name: string): WorkspaceRecord {
    this.requireResourceGroup(subscriptionId, rg);
    const ws = this.getWorkspace(`/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/${WORKSPACE_TYPE}/${name}`);
    if (!ws) {
      throw new ArmError(
        404,
        'ResourceNotFound',
        `The Resource '${WORKSPACE_TYPE}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
      );
    }
    return ws;
  }

  listWorkspaces(scopeKey?: string): WorkspaceRecord[] {
    const all = [...this.workspaces.values()];
    return scopeKey === undefined ? all : all.filter((w) => key(w.id).startsWith(`${scopeKey}/`));
  }

  createWorkspace(rg: ResourceGroupRecord, spec: WorkspaceSpec, caller: Caller): WorkspaceRecord {
    const existing = this.getWorkspace(`${rg.id}/providers/${WORKSPACE_TYPE}/${spec.name}`);
    if (existing) throw new ArmError(409, 'Conflict', `Workspace '${spec.name}' already exists.`);
    const ws = this.putWorkspaceRecord(this.workspaceFromSpec(rg, spec));
    for (const ds of spec.datastores ?? []) this.addDatastore(ws, ds);
    this.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', ws.id, `${WORKSPACE_TYPE}/write`, caller);
    for (const c of spec.computes ?? []) this.createCompute(ws, c, caller);
    return ws;
  }

  updateWorkspace(
    id: string,
    patch: { tags?: Record<string, string>; friendlyName?: string; description?: string; publicNetworkAccess?: 'Enabled' | 'Disabled'; containerRegistry?: string | null; identity?: IdentitySpec },
    caller: Caller,
  ): WorkspaceRecord {
    const ws = this.getWorkspace(id);
    if (!ws) throw new ArmError(404, 'ResourceNotFound', `The Resource '${id}' was not found.`);
    if (patch.tags) ws.tags = { ...patch.tags };
    if (patch.friendlyName !== undefined) ws.properties.friendlyName = patch.friendlyName;
    if (patch.description !== undefined) ws.properties.description = patch.description;
    if (patch.publicNetworkAccess !== undefined) ws.properties.publicNetworkAccess = patch.publicNetworkAccess;
    if (patch.containerRegistry === null) delete ws.properties.containerRegistry;
    else if (patch.containerRegistry !== undefined) {
      ws.properties.containerRegistry = patch.containerRegistry.startsWith('/')
        ? patch.containerRegistry
        : `/subscriptions/${ws.subscriptionId}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${patch.containerRegistry}`;
    }
    if (patch.identity) {
      const identity = this.identityFromSpec(patch.identity, ws.identity, `${ws.id}/identity`);
      if (identity) ws.identity = identity;
      else delete ws.identity;
    }
    this.touch();
    this.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', ws.id, `${WORKSPACE_TYPE}/write`, caller, this.httpInfo('PATCH', ws.id));
    return ws;
  }

  deleteWorkspace(id: string, caller: Caller): boolean {
    const ws = this.getWorkspace(id);
    if (!ws) return false;
    const prefix = `${key(ws.id)}/`;
    for (const [k] of this.computes) if (k.startsWith(prefix)) this.computes.delete(k);
    for (const [k] of this.datastores) if (k.startsWith(prefix)) this.datastores.delete(k);
    this.workspaces.delete(key(ws.id));
    this.touch();
    this.resourceEvent('Microsoft.Resources.ResourceDeleteSuccess', ws.id, `${WORKSPACE_TYPE}/delete`, caller, this.httpInfo('DELETE', ws.id));
    return true;
  }

  // ---------------------------------------------------------------- identities

  /** Expands a compact identity spec; keeps principal ids the previous identity already had. */
  identityFromSpec(spec: IdentitySpec, previous: ManagedIdentity | undefined, seed: string): ManagedIdentity | undefined {
    const uai: Record<string, object> = {};
    for (const u of spec.userAssignedIdentities ?? []) uai[u] = {};
    return this.buildIdentity({ type: spec.type, userAssignedIdentities: uai }, previous, seed, spec.principalId);
  }

  /**
   * Builds the stored identity from a request identity (`{ type, userAssignedIdentities: { id: {} } }`).
   * A new system-assigned principal id is derived from `seed` (stable seeded tenants) or random.
   */
  buildIdentity(
    wire: { type: string; userAssignedIdentities?: Record<string, unknown> },
    previous: ManagedIdentity | undefined,
    seed: string | undefined,
    fixedPrincipalId?: string,
  ): ManagedIdentity | undefined {
    const type = canonicalIdentityType(wire.type);
    if (type === 'None') return { type: 'None' };
    const types = identityTypes(type);
    const out: ManagedIdentity = { type };
    if (types.has('systemassigned')) {
      const prevSystem = previous && identityTypes(previous.type).has('systemassigned') ? previous.principalId : undefined;
      out.principalId = fixedPrincipalId ?? prevSystem ?? (seed !== undefined ? guidFrom(`${seed.toLowerCase()}/system`) : randomUUID());
      out.tenantId = this.tenantId;
    }
    if (types.has('userassigned')) {
      const map: Record<string, UserAssignedIdentity> = {};
      const prev = new Map(Object.entries(previous?.userAssignedIdentities ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      for (const uaiId of Object.keys(wire.userAssignedIdentities ?? {})) {
        map[uaiId] = prev.get(uaiId.toLowerCase()) ?? { principalId: guidFrom(`${uaiId.toLowerCase()}/principal`), clientId: guidFrom(`${uaiId.toLowerCase()}/client`) };
      }
      out.userAssignedIdentities = map;
    }
    return out;
  }

  // ---------------------------------------------------------------- computes

  computeFromSpec(ws: WorkspaceRecord, spec: ComputeSpec, caller: Caller): ComputeRecord {
    const s = ComputeSpec.parse(spec);
    const id = `${ws.id}/computes/${s.name}`;
    const inner: Record<string, unknown> = {};
    if (s.vmSize) inner.vmSize = s.vmSize;
    if (s.scaleSettings) inner.scaleSettings = s.scaleSettings;
    if (s.remoteLoginPortPublicAccess) inner.remoteLoginPortPublicAccess = s.remoteLoginPortPublicAccess;
    if (s.sshPublicAccess) inner.sshSettings = { sshPublicAccess: s.sshPublicAccess };
    if (s.assignedUser) inner.personalComputeInstanceSettings = { assignedUser: { objectId: s.assignedUser, tenantId: this.tenantId } };
    Object.assign(inner, s.properties ?? {});
    const identity = s.identity ? this.identityFromSpec(s.identity, undefined, id) : undefined;
    const rec = this.newCompute(ws, s.name, {
      location: s.location ?? ws.location,
      ...(s.tags ? { tags: s.tags } : {}),
      ...(identity ? { identity } : {}),
      computeType: s.computeType,
      description: s.description ?? null,
      disableLocalAuth: s.disableLocalAuth ?? false,
      inner,
      caller,
    });
    rec.properties.provisioningState = s.provisioningState ?? 'Succeeded';
    if (s.computeType === 'ComputeInstance') {
      const state = s.state ?? (rec.properties.provisioningState === 'Succeeded' ? 'Running' : 'Creating');
      rec.properties.properties.state = state;
    }
    return rec;
  }

  /** A compute with every server-populated field, as the RP answers after a create. */
  newCompute(
    ws: WorkspaceRecord,
    name: string,
    p: {
      location: string;
      tags?: Record<string, string>;
      identity?: ManagedIdentity;
      computeType: string;
      description: string | null;
      disableLocalAuth: boolean;
      inner: Record<string, unknown>;
      caller: Caller;
      previous?: ComputeRecord;
      extra?: Record<string, unknown>;
    },
  ): ComputeRecord {
    const now = armTime(this.now);
    const id = p.previous?.id ?? `${ws.id}/computes/${name}`;
    const prevInner = p.previous?.properties.properties ?? {};
    const inner = { ...defaultInnerProperties(p.computeType, p.location, name, now, this.tenantId, p.caller), ...p.inner, ...readOnlyInner(p.computeType, prevInner) };
    if (p.computeType === 'AmlCompute' && (inner.remoteLoginPortPublicAccess === undefined || inner.remoteLoginPortPublicAccess === 'NotSpecified')) {
      inner.remoteLoginPortPublicAccess = 'Enabled';
    }
    if (p.computeType === 'ComputeInstance') {
      const ssh = typeof inner.sshSettings === 'object' && inner.sshSettings !== null ? (inner.sshSettings as Record<string, unknown>) : {};
      inner.sshSettings = { sshPublicAccess: 'Disabled', adminUserName: 'azureuser', sshPort: 50000, ...ssh };
    }
    const properties: ComputeProperties = {
      ...(p.extra ?? {}),
      computeType: p.computeType,
      computeLocation: p.location,
      provisioningState: 'Creating',
      description: p.description,
      createdOn: p.previous?.properties.createdOn ?? now,
      modifiedOn: now,
      isAttachedCompute: false,
      disableLocalAuth: p.disableLocalAuth,
      provisioningErrors: null,
      properties: inner,
    };
    return {
      id,
      name: p.previous?.name ?? name,
      workspaceId: ws.id,
      subscriptionId: ws.subscriptionId,
      resourceGroup: ws.resourceGroup,
      location: p.location,
      ...(p.tags ? { tags: p.tags } : {}),
      ...(p.identity ? { identity: p.identity } : {}),
      properties,
    };
  }

  putComputeRecord(c: ComputeRecord): ComputeRecord {
    this.computes.set(key(c.id), c);
    this.touch();
    return c;
  }

  getCompute(id: string): ComputeRecord | undefined {
    return this.computes.get(key(id));
  }

  listComputes(wsId?: string): ComputeRecord[] {
    const all = [...this.computes.values()];
    if (wsId === undefined) return all;
    const prefix = `${key(wsId)}/computes/`;
    return all.filter((c) => key(c.id).startsWith(prefix));
  }

  removeCompute(id: string): boolean {
    const ok = this.computes.delete(key(id));
    if (ok) this.touch();
    return ok;
  }

  isTransient(c: ComputeRecord): boolean {
    return !TERMINAL_STATES.has(c.properties.provisioningState.toLowerCase());
  }

  /**
   * Control: creates a compute directly (as the portal would) and publishes its write event. With
   * `provisioningState: 'Creating'` it stays creating (one event now) until `succeedAfterMs` passes or
   * `setComputeState` moves it on (another event then).
   */
  createCompute(ws: WorkspaceRecord, spec: ComputeSpec, caller: Caller, opts: { succeedAfterMs?: number } = {}): ComputeRecord {
    if (this.getCompute(`${ws.id}/computes/${spec.name}`)) throw new ArmError(409, 'Conflict', `Compute '${spec.name}' already exists.`);
    const c = this.putComputeRecord(this.computeFromSpec(ws, spec, caller));
    this.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', c.id, `${COMPUTE_TYPE}/write`, caller);
    if (c.properties.provisioningState === 'Creating' && opts.succeedAfterMs !== undefined) {
      this.later(opts.succeedAfterMs, () => {
        const cur = this.getCompute(c.id);
        if (cur && cur.properties.provisioningState === 'Creating') this.setComputeState(cur.id, { provisioningState: 'Succeeded' }, caller);
      });
    }
    return c;
  }

  /** Control: moves a compute's provisioning or instance state, publishing a write event. */
  setComputeState(id: string, s: { provisioningState?: ProvisioningState; state?: string }, caller: Caller): ComputeRecord {
    const c = this.getCompute(id);
    if (!c) throw new ArmError(404, 'ResourceNotFound', `The compute '${id}' was not found.`);
    if (s.provisioningState) {
      const was = c.properties.provisioningState;
      c.properties.provisioningState = s.provisioningState;
      if (c.properties.computeType === 'ComputeInstance' && s.state === undefined && was === 'Creating') {
        if (s.provisioningState === 'Succeeded') c.properties.properties.state = 'Running';
        if (s.provisioningState === 'Failed') c.properties.properties.state = 'CreateFailed';
      }
    }
    if (s.state !== undefined) c.properties.properties.state = s.state;
    c.properties.modifiedOn = armTime(this.now);
    this.touch();
    this.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', c.id, `${COMPUTE_TYPE}/write`, caller, this.httpInfo('PUT', c.id));
    return c;
  }

  /** Control: changes a compute as a portal edit would (no validation of what the RP would refuse). */
  updateCompute(
    id: string,
    patch: {
      identity?: IdentitySpec | null;
      tags?: Record<string, string>;
      disableLocalAuth?: boolean;
      sshPublicAccess?: 'Enabled' | 'Disabled';
      remoteLoginPortPublicAccess?: 'Enabled' | 'Disabled';
      assignedUser?: string | null;
      scaleSettings?: { maxNodeCount: number; minNodeCount?: number; nodeIdleTimeBeforeScaleDown?: string };
      state?: string;
      provisioningState?: ProvisioningState;
    },
    caller: Caller,
  ): ComputeRecord {
    const c = this.getCompute(id);
    if (!c) throw new ArmError(404, 'ResourceNotFound', `The compute '${id}' was not found.`);
    const inner = c.properties.properties;
    if (patch.identity === null) delete c.identity;
    else if (patch.identity) {
      const identity = this.identityFromSpec(patch.identity, c.identity, c.id);
      if (identity) c.identity = identity;
    }
    if (patch.tags) c.tags = { ...patch.tags };
    if (patch.disableLocalAuth !== undefined) c.properties.disableLocalAuth = patch.disableLocalAuth;
    if (patch.sshPublicAccess) inner.sshSettings = { ...asRecord(inner.sshSettings), sshPublicAccess: patch.sshPublicAccess };
    if (patch.remoteLoginPortPublicAccess) inner.remoteLoginPortPublicAccess = patch.remoteLoginPortPublicAccess;
    if (patch.assignedUser === null) delete inner.personalComputeInstanceSettings;
    else if (patch.assignedUser) inner.personalComputeInstanceSettings = { assignedUser: { objectId: patch.assignedUser, tenantId: this.tenantId } };
    if (patch.scaleSettings) inner.scaleSettings = { ...patch.scaleSettings };
    if (patch.state !== undefined) inner.state = patch.state;
    if (patch.provisioningState) c.properties.provisioningState = patch.provisioningState;
    c.properties.modifiedOn = armTime(this.now);
    this.touch();
    this.resourceEvent('Microsoft.Resources.ResourceWriteSuccess', c.id, `${COMPUTE_TYPE}/write`, caller, this.httpInfo('PUT', c.id));
    return c;
  }

  /** Control: deletes a compute at once, publishing the delete event. */
  deleteCompute(id: string, caller: Caller): boolean {
    const c = this.getCompute(id);
    if (!c) return false;
    this.removeCompute(c.id);
    this.resourceEvent('Microsoft.Resources.ResourceDeleteSuccess', c.id, `${COMPUTE_TYPE}/delete`, caller, this.httpInfo('DELETE', c.id));
    return true;
  }

  // ---------------------------------------------------------------- long-running operations

  failOperations(rule: LroFailureRule): void {
    this.failureRules.push({ ...rule, left: rule.times ?? 1 });
  }

  startOperation(kind: LroKind, c: ComputeRecord, finish: (op: LroOperation) => void): LroOperation {
    const id = randomUUID();
    let failWith: { code: string; message: string } | undefined;
    for (const r of this.failureRules) {
      if (r.left <= 0) continue;
      if (r.kind && r.kind !== kind) continue;
      if (r.resourceName && r.resourceName.toLowerCase() !== c.name.toLowerCase()) continue;
      r.left--;
      failWith = { code: r.code ?? 'InternalServerError', message: r.message ?? `The operation '${kind}' on compute '${c.name}' failed.` };
      break;
    }
    this.failureRules = this.failureRules.filter((r) => r.left > 0);
    const op: LroOperation = {
      id,
      subscriptionId: c.subscriptionId,
      location: locationKey(c.location),
      kind,
      resourceId: c.id,
      status: 'InProgress',
      pollsLeft: this.lroPolls,
      startTime: armTime(this.now),
      ...(failWith ? { failWith } : {}),
      finish,
    };
    this.ops.set(id, op);
    return op;
  }

  getOperation(id: string): LroOperation | undefined {
    return this.ops.get(id.toLowerCase()) ?? this.ops.get(id);
  }

  /** One status poll: `InProgress` for the configured number of polls, then the outcome. */
  pollOperation(id: string): LroOperation | undefined {
    const op = this.getOperation(id);
    if (!op) return undefined;
    if (op.status !== 'InProgress') return op;
    if (op.pollsLeft > 0) {
      op.pollsLeft--;
      return op;
    }
    this.completeOperation(op);
    return op;
  }

  completeOperation(op: LroOperation): void {
    if (op.status !== 'InProgress') return;
    op.status = op.failWith ? 'Failed' : 'Succeeded';
    if (op.failWith) op.error = op.failWith;
    op.endTime = armTime(this.now);
    op.finish(op);
    this.touch();
  }

  /** Control: completes every operation in flight (for callers that never poll). */
  completeAllOperations(): number {
    let n = 0;
    for (const op of this.ops.values()) {
      if (op.status === 'InProgress') {
        this.completeOperation(op);
        n++;
      }
    }
    return n;
  }

  operationBody(op: LroOperation): Record<string, unknown> {
    return {
      id: `/subscriptions/${op.subscriptionId}/providers/${ML_PROVIDER}/locations/${op.location}/computeOperationsStatus/${op.id}`,
      name: op.id,
      status: op.status,
      startTime: op.startTime,
      ...(op.endTime ? { endTime: op.endTime } : {}),
      ...(op.error ? { error: op.error } : {}),
    };
  }

  // ---------------------------------------------------------------- role definitions

  addRoleDefinition(def: RoleDefinitionSpec): void {
    this.roleDefs.push(def);
    this.touch();
  }

  findRoleDefinition(idOrGuid: string): RoleDefinitionSpec | undefined {
    const g = roleGuid(idOrGuid);
    return this.roleDefs.find((d) => d.guid.toLowerCase() === g);
  }

  findRoleByName(roleName: string): RoleDefinitionSpec | undefined {
    const n = roleName.toLowerCase();
    return this.roleDefs.find((d) => d.roleName.toLowerCase() === n);
  }

  listRoleDefinitions(): RoleDefinitionSpec[] {
    return [...this.roleDefs];
  }

  /** The role definition id as ARM spells it under a scope: subscription-level when the scope has one. */
  roleDefinitionId(scope: string, guid: string): string {
    const { subscriptionId } = parseResourceId(scope);
    return `${subscriptionId ? `/subscriptions/${subscriptionId}` : ''}/providers/${ROLE_DEFINITION_TYPE}/${guid}`;
  }

  serializeRoleDefinition(scope: string, d: RoleDefinitionSpec): Record<string, unknown> {
    return {
      id: this.roleDefinitionId(scope, d.guid),
      name: d.guid,
      type: ROLE_DEFINITION_TYPE,
      properties: {
        roleName: d.roleName,
        type: d.roleType,
        description: d.description,
        permissions: d.permissions,
        assignableScopes: d.assignableScopes,
        createdOn: '2015-02-02T21:55:09.8806423Z',
        updatedOn: '2024-01-01T00:00:00.0000000Z',
        createdBy: null,
        updatedBy: null,
      },
    };
  }

  // ---------------------------------------------------------------- role assignments

  /** Control: a principal "propagates": its next `failures` creates, or creates until `untilMs`, fail with PrincipalNotFound. */
  propagate(principalId: string, opts: { failures?: number; untilMs?: number; forMs?: number }): void {
    const untilMs = opts.untilMs ?? (opts.forMs !== undefined ? this.now + opts.forMs : undefined);
    this.propagation.set(principalId.toLowerCase(), { failures: opts.failures ?? 0, ...(untilMs !== undefined ? { untilMs } : {}) });
  }

  /** True when the principal is still propagating (consumes one failure). */
  consumePropagation(principalId: string): boolean {
    const k = principalId.toLowerCase();
    const p = this.propagation.get(k);
    if (!p) return false;
    if (p.failures > 0) {
      p.failures--;
      return true;
    }
    if (p.untilMs !== undefined && this.now < p.untilMs) return true;
    this.propagation.delete(k);
    return false;
  }

  getAssignmentByName(name: string): RoleAssignmentRecord | undefined {
    return this.assignments.get(name.toLowerCase());
  }

  findAssignmentByTriple(scope: string, roleDefinitionId: string, principalId: string): RoleAssignmentRecord | undefined {
    const name = this.assignmentsByTriple.get(tripleKey(scope, roleDefinitionId, principalId));
    return name ? this.assignments.get(name) : undefined;
  }

  putAssignment(ra: RoleAssignmentRecord): RoleAssignmentRecord {
    const n = ra.name.toLowerCase();
    const old = this.assignments.get(n);
    if (old) this.unindexAssignment(old);
    this.assignments.set(n, ra);
    addToIndex(this.assignmentsByScope, key(ra.scope), n);
    addToIndex(this.assignmentsByPrincipal, ra.principalId.toLowerCase(), n);
    this.assignmentsByTriple.set(tripleKey(ra.scope, ra.roleDefinitionId, ra.principalId), n);
    this.touch();
    return ra;
  }

  removeAssignment(name: string): RoleAssignmentRecord | undefined {
    const ra = this.assignments.get(name.toLowerCase());
    if (!ra) return undefined;
    this.unindexAssignment(ra);
    this.assignments.delete(name.toLowerCase());
    this.touch();
    return ra;
  }

  private unindexAssignment(ra: RoleAssignmentRecord): void {
    const n = ra.name.toLowerCase();
    removeFromIndex(this.assignmentsByScope, key(ra.scope), n);
    removeFromIndex(this.assignmentsByPrincipal, ra.principalId.toLowerCase(), n);
    const t = tripleKey(ra.scope, ra.roleDefinitionId, ra.principalId);
    if (this.assignmentsByTriple.get(t) === n) this.assignmentsByTriple.delete(t);
  }

  newAssignment(p: {
    scope: string;
    name: string;
    roleDefinitionId: string;
    principalId: string;
    principalType: string;
    description?: string | null;
    condition?: string | null;
    conditionVersion?: string | null;
    delegatedManagedIdentityResourceId?: string | null;
    caller: Caller;
  }): RoleAssignmentRecord {
    const scope = normaliseScope(p.scope);
    const now = armTime(this.now);
    return {
      id: `${scope === '/' ? '' : scope}/providers/Microsoft.Authorization/roleAssignments/${p.name}`,
      name: p.name,
      scope,
      roleDefinitionId: p.roleDefinitionId,
      principalId: p.principalId,
      principalType: p.principalType,
      description: p.description ?? null,
      condition: p.condition ?? null,
      conditionVersion: p.conditionVersion ?? null,
      delegatedManagedIdentityResourceId: p.delegatedManagedIdentityResourceId ?? null,
      createdOn: now,
      updatedOn: now,
      createdBy: p.caller.objectId,
      updatedBy: p.caller.objectId,
    };
  }

  seedRoleAssignment(spec: RoleAssignmentSpec): RoleAssignmentRecord {
    const s = RoleAssignmentSpec.parse(spec);
    const def = s.roleDefinitionId ? this.findRoleDefinition(s.roleDefinitionId) : s.roleName ? this.findRoleByName(s.roleName) : undefined;
    if (!def) throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The role definition '${s.roleDefinitionId ?? s.roleName ?? ''}' does not exist.`);
    const scope = normaliseScope(s.scope);
    const roleDefinitionId = s.roleDefinitionId ?? this.roleDefinitionId(scope, def.guid);
    const name = s.name ?? guidFrom(`${key(scope)}|${def.guid}|${s.principalId.toLowerCase()}`);
    const principalType = s.principalType ?? this.principals?.lookup(s.principalId)?.type ?? 'User';
    return this.putAssignment(
      this.newAssignment({ scope, name, roleDefinitionId, principalId: s.principalId, principalType, description: s.description ?? null, caller: this.operatorCaller() }),
    );
  }

  /**
   * Assignments for a scope. `mode` `atOrAbove` (`atScope()`), or `all` (at, above and below); an
   * optional principal narrows either.
   */
  listAssignments(scope: string, mode: 'atOrAbove' | 'all', principalId?: string): RoleAssignmentRecord[] {
    const names = new Set<string>();
    const sk = key(scope);
    const collectScope = (k: string): void => {
      for (const n of this.assignmentsByScope.get(k) ?? []) names.add(n);
    };
    if (principalId !== undefined) {
      for (const n of this.assignmentsByPrincipal.get(principalId.toLowerCase()) ?? []) {
        const ra = this.assignments.get(n);
        if (!ra) continue;
        if (scopeContains(ra.scope, scope) || (mode === 'all' && scopeContains(scope, ra.scope))) names.add(n);
      }
    } else {
      collectScope('/');
      const parts = sk.split('/').filter((p) => p.length > 0);
      for (let i = 1; i <= parts.length; i++) collectScope(`/${parts.slice(0, i).join('/')}`);
      if (mode === 'all') {
        for (const [k, set] of this.assignmentsByScope) {
          if (k.startsWith(`${sk === '/' ? '' : sk}/`)) for (const n of set) names.add(n);
        }
      }
    }
    const out: RoleAssignmentRecord[] = [];
    for (const n of names) {
      const ra = this.assignments.get(n);
      if (ra) out.push(ra);
    }
    return out;
  }

  allAssignments(): RoleAssignmentRecord[] {
    return [...this.assignments.values()];
  }

  // ---------------------------------------------------------------- generic resources

  /** Every resource in a subscription (or resource group), in the generic-resource shape. */
  genericResources(scopeKey: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    const under = (id: string): boolean => key(id).startsWith(`${scopeKey}/`);
    for (const w of this.workspaces.values()) {
      if (!under(w.id)) continue;
      out.push({ id: w.id, name: w.name, type: WORKSPACE_TYPE, sku: w.sku, kind: 'Default', location: w.location, tags: w.tags, ...(w.identity ? { identity: w.identity } : {}) });
    }
    for (const c of this.computes.values()) {
      if (!under(c.id)) continue;
      out.push({ id: c.id, name: `${c.workspaceId.split('/').pop() ?? ''}/${c.name}`, type: COMPUTE_TYPE, location: c.location, tags: c.tags ?? {}, ...(c.identity ? { identity: c.identity } : {}) });
    }
    for (const r of this.registries.values()) {
      if (!under(r.id)) continue;
      out.push({ id: r.id, name: r.name, type: REGISTRY_TYPE, sku: r.sku, location: r.location, tags: r.tags });
    }
    return out;
  }

  /** The id of a tracked resource of any kind. */
  findResource(id: string): { kind: 'workspace' | 'compute' | 'registry'; id: string } | undefined {
    const w = this.getWorkspace(id);
    if (w) return { kind: 'workspace', id: w.id };
    const c = this.getCompute(id);
    if (c) return { kind: 'compute', id: c.id };
    const r = this.getRegistry(id);
    if (r) return { kind: 'registry', id: r.id };
    return undefined;
  }

  // ---------------------------------------------------------------- resource events

  httpInfo(method: string, resourceId: string, clientRequestId?: string, apiVersion = '2022-10-01'): HttpRequestInfo {
    return {
      method,
      url: `https://management.azure.com${resourceId}?api-version=${apiVersion}`,
      clientRequestId: clientRequestId ?? randomUUID(),
    };
  }

  /** Publishes a resource event on the resource group's system topic (facts §6.2). */
  resourceEvent(eventType: ResourceEventType, resourceId: string, operationName: string, caller: Caller, httpRequest?: HttpRequestInfo): EgEvent {
    const { subscriptionId = '', resourceGroup = '', provider = '' } = parseResourceId(resourceId);
    const rg = this.getResourceGroup(subscriptionId, resourceGroup);
    const topic = rg ? rg.id : `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
    const correlationId = randomUUID();
    const noHyphens = (s: string): string => s.replace(/-/g, '');
    const nowSec = Math.floor(this.now / 1000);
    const data: Record<string, unknown> = {
      authorization: {
        scope: resourceId,
        action: operationName,
        evidence: {
          role: 'Contributor',
          roleAssignmentScope: `/subscriptions/${subscriptionId}`,
          roleAssignmentId: noHyphens(guidFrom(`${caller.objectId}|${subscriptionId}`)),
          roleDefinitionId: noHyphens(CONTRIBUTOR_GUID),
          principalId: noHyphens(caller.objectId),
          principalType: caller.principalType,
        },
      },
      claims: {
        aud: 'https://management.azure.com/',
        iss: `https://sts.windows.net/${this.tenantId}/`,
        iat: String(nowSec - 60),
        nbf: String(nowSec - 60),
        exp: String(nowSec + 3540),
        appid: caller.appId,
        appidacr: '2',
        'http://schemas.microsoft.com/identity/claims/identityprovider': `https://sts.windows.net/${this.tenantId}/`,
        'http://schemas.microsoft.com/identity/claims/objectidentifier': caller.objectId,
        'http://schemas.microsoft.com/identity/claims/tenantid': this.tenantId,
        name: caller.name,
        idtyp: caller.principalType === 'User' ? 'user' : 'app',
        ver: '1.0',
      },
      correlationId,
      ...(httpRequest ? { httpRequest: { clientRequestId: httpRequest.clientRequestId, clientIpAddress: '127.0.0.1', method: httpRequest.method, url: httpRequest.url } } : {}),
      resourceProvider: provider,
      resourceUri: resourceId,
      operationName,
      status: eventType === 'Microsoft.Resources.ResourceWriteFailure' ? 'Failed' : 'Succeeded',
      subscriptionId,
      tenantId: this.tenantId,
    };
    const ev = this.deps.events.event({ topic, subject: resourceId, eventType, data, dataVersion: '2' });
    this.deps.events.publish([ev]);
    return ev;
  }

  // ---------------------------------------------------------------- timers

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---------------------------------------------------------------- snapshot

  snapshot(): ArmSnapshot {
    return clone({
      tenantId: this.tenantId,
      subscriptions: this.listSubscriptions(),
      resourceGroups: [...this.rgs.values()],
      workspaces: [...this.workspaces.values()],
      computes: [...this.computes.values()],
      datastores: [...this.datastores.values()],
      registries: [...this.registries.values()],
      roleAssignments: this.allAssignments(),
      operations: [...this.ops.values()].map((op) => ({ id: op.id, kind: op.kind, resourceId: op.resourceId, status: op.status })),
    });
  }
}

export interface ArmSnapshot {
  tenantId: string;
  subscriptions: SubscriptionRecord[];
  resourceGroups: ResourceGroupRecord[];
  workspaces: WorkspaceRecord[];
  computes: ComputeRecord[];
  datastores: DatastoreRecord[];
  registries: RegistryRecord[];
  roleAssignments: RoleAssignmentRecord[];
  operations: Array<{ id: string; kind: LroKind; resourceId: string; status: string }>;
}

function tripleKey(scope: string, roleDefinitionId: string, principalId: string): string {
  return `${key(scope)}|${roleGuid(roleDefinitionId)}|${principalId.toLowerCase()}`;
}

function addToIndex(index: Map<string, Set<string>>, k: string, v: string): void {
  let s = index.get(k);
  if (!s) {
    s = new Set();
    index.set(k, s);
  }
  s.add(v);
}

function removeFromIndex(index: Map<string, Set<string>>, k: string, v: string): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}

export function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function defaultInnerProperties(computeType: string, location: string, name: string, now: string, tenantId: string, caller: Caller): Record<string, unknown> {
  if (computeType === 'AmlCompute') {
    return {
      vmSize: 'STANDARD_DS3_V2',
      vmPriority: 'Dedicated',
      osType: 'Linux',
      isolatedNetwork: false,
      scaleSettings: { maxNodeCount: 4, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT120S' },
      remoteLoginPortPublicAccess: 'NotSpecified',
      allocationState: 'Steady',
      allocationStateTransitionTime: now,
      errors: null,
      currentNodeCount: 0,
      targetNodeCount: 0,
      nodeStateCounts: { preparingNodeCount: 0, runningNodeCount: 0, idleNodeCount: 0, unusableNodeCount: 0, leavingNodeCount: 0, preemptedNodeCount: 0 },
      enableNodePublicIp: true,
    };
  }
  if (computeType === 'ComputeInstance') {
    const loc = locationKey(location);
    return {
      vmSize: 'STANDARD_DS3_V2',
      applicationSharingPolicy: 'Shared',
      computeInstanceAuthorizationType: 'personal',
      createdBy: { userName: caller.name, userOrgId: tenantId, userId: caller.objectId },
      connectivityEndpoints: { publicIpAddress: '10.0.0.1', privateIpAddress: '10.0.0.1' },
      applications: [{ displayName: 'Jupyter', endpointUri: `https://${name.toLowerCase()}.${loc}.instances.azureml.ms/tree/` }],
      errors: null,
      state: 'Creating',
    };
  }
  return {};
}

/** Server-populated settings a full PUT does not reset. */
function readOnlyInner(computeType: string, prev: Record<string, unknown>): Record<string, unknown> {
  const keys =
    computeType === 'AmlCompute'
      ? ['allocationState', 'allocationStateTransitionTime', 'errors', 'currentNodeCount', 'targetNodeCount', 'nodeStateCounts']
      : computeType === 'ComputeInstance'
        ? ['createdBy', 'connectivityEndpoints', 'applications', 'errors', 'state', 'lastOperation']
        : [];
  const out: Record<string, unknown> = {};
  for (const k of keys) if (k in prev) out[k] = prev[k];
  return out;
}
