/**
 * The in-process control of the emulated ARM: what tests, the demo and the HTTP control API use to
 * change the world behind Warden's back (a compute created in the portal, a principal still
 * propagating, an operation that fails) and to read it back. Writes publish resource events as ARM
 * does, attributed to an operator (or `callerObjectId`).
 */
import type { EgEvent } from '../core/eventbus';
import {
  clone,
  key,
  normaliseScope,
  parseResourceId,
  scopeContains,
  WORKSPACE_TYPE,
  type ComputeRecord,
  type DatastoreRecord,
  type PrincipalDirectory,
  type RegistryRecord,
  type RoleAssignmentRecord,
  type WorkspaceRecord,
} from './model';
import { roleGuid } from './roles';
import type { ComputeSpec, DatastoreSpec, IdentitySpec, ProvisioningState, RegistrySpec, RoleAssignmentSpec, WorkspaceSpec } from './schema';
import { ArmError, type ArmSnapshot, type ArmState, type Caller, type LroFailureRule, type ResourceEventType } from './state';

export interface ControlWriteOptions {
  /** The object id the write is attributed to in events (default: the emulator's operator). */
  callerObjectId?: string;
}

export interface ComputePatch {
  identity?: IdentitySpec | null;
  tags?: Record<string, string>;
  disableLocalAuth?: boolean;
  sshPublicAccess?: 'Enabled' | 'Disabled';
  remoteLoginPortPublicAccess?: 'Enabled' | 'Disabled';
  assignedUser?: string | null;
  scaleSettings?: { maxNodeCount: number; minNodeCount?: number; nodeIdleTimeBeforeScaleDown?: string };
  state?: string;
  provisioningState?: ProvisioningState;
}

export interface WorkspacePatch {
  tags?: Record<string, string>;
  friendlyName?: string;
  description?: string;
  publicNetworkAccess?: 'Enabled' | 'Disabled';
  containerRegistry?: string | null;
  identity?: IdentitySpec;
}

export interface EmitEventOptions extends ControlWriteOptions {
  /** Sets the compute's provisioning state first (e.g. an interim `Creating` event). */
  provisioningState?: ProvisioningState;
  /** How many copies to publish (duplicates, as Event Grid's at-least-once delivery produces). */
  count?: number;
  /** Include the `httpRequest` block (ARM sends it on updates of existing resources). */
  httpMethod?: string;
}

/** `Microsoft.MachineLearningServices/workspaces/computes` from a resource id. */
export function resourceTypeOf(resourceId: string): string {
  const parts = normaliseScope(resourceId).split('/').filter((p) => p.length > 0);
  const idx = parts.map((p) => p.toLowerCase()).lastIndexOf('providers');
  if (idx < 0 || idx + 1 >= parts.length) return 'Microsoft.Resources/resourceGroups';
  const types: string[] = [parts[idx + 1] ?? ''];
  for (let i = idx + 2; i < parts.length; i += 2) types.push(parts[i] ?? '');
  return types.join('/');
}

export class ArmControl {
  constructor(private readonly state: ArmState) {}

  get tenantId(): string {
    return this.state.tenantId;
  }

  /** The first subscription (the default for control calls that do not name one). */
  get subscriptionId(): string {
    const s = this.state.listSubscriptions()[0];
    if (!s) throw new ArmError(404, 'SubscriptionNotFound', 'The emulator has no subscription.');
    return s.subscriptionId;
  }

  get pageSize(): number {
    return this.state.pageSize;
  }

  set pageSize(n: number) {
    this.state.pageSize = Math.max(1, Math.floor(n));
    this.state.version++;
  }

  /** Status polls answered `InProgress` before an operation completes. */
  get lroPolls(): number {
    return this.state.lroPolls;
  }

  set lroPolls(n: number) {
    this.state.lroPolls = Math.max(0, Math.floor(n));
  }

  /** Replaces the directory principal ids are checked against (the Graph service's). */
  setPrincipalDirectory(dir: PrincipalDirectory | undefined): void {
    this.state.principals = dir;
  }

  /** The object id ARM-route writes are attributed to when the bearer token names nobody. */
  setCaller(objectId: string): void {
    this.state.callerObjectId = objectId;
  }

  get callerObjectId(): string {
    return this.state.callerObjectId;
  }

  /**
   * Simulates replication delay: the principal's next `failures` role-assignment creates fail with
   * 400 PrincipalNotFound, or all creates until `untilMs` (emulator clock, epoch ms) or for `forMs`.
   */
  propagate(principalId: string, opts: { failures?: number; untilMs?: number; forMs?: number }): void {
    this.state.propagate(principalId, opts);
  }

  // ------------------------------------------------------------ ids

  resourceGroupId(resourceGroup: string, subscriptionId = this.subscriptionId): string {
    return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
  }

  workspaceId(resourceGroup: string, name: string, subscriptionId = this.subscriptionId): string {
    const ws = this.state.getWorkspace(`${this.resourceGroupId(resourceGroup, subscriptionId)}/providers/${WORKSPACE_TYPE}/${name}`);
    return ws?.id ?? `${this.resourceGroupId(resourceGroup, subscriptionId)}/providers/${WORKSPACE_TYPE}/${name}`;
  }

  computeId(workspaceId: string, name: string): string {
    return this.state.getCompute(`${workspaceId}/computes/${name}`)?.id ?? `${this.requireWorkspace(workspaceId).id}/computes/${name}`;
  }

  // ------------------------------------------------------------ reads

  workspaces(): WorkspaceRecord[] {
    return clone(this.state.listWorkspaces());
  }

  getWorkspace(id: string): WorkspaceRecord | undefined {
    const w = this.state.getWorkspace(id);
    return w ? clone(w) : undefined;
  }

  computes(workspaceId?: string): ComputeRecord[] {
    return clone(this.state.listComputes(workspaceId));
  }

  getCompute(id: string): ComputeRecord | undefined {
    const c = this.state.getCompute(id);
    return c ? clone(c) : undefined;
  }

  datastores(workspaceId: string): DatastoreRecord[] {
    return clone(this.state.listDatastores(workspaceId));
  }

  getRegistry(id: string): RegistryRecord | undefined {
    const r = this.state.getRegistry(id);
    return r ? clone(r) : undefined;
  }

  /** Role assignments, optionally those exactly at `scope`, of one principal or one role. */
  roleAssignments(filter: { scope?: string; below?: string; principalId?: string; roleDefinitionId?: string } = {}): RoleAssignmentRecord[] {
    return clone(
      this.state.allAssignments().filter(
        (ra) =>
          (filter.scope === undefined || key(ra.scope) === key(filter.scope)) &&
          (filter.below === undefined || scopeContains(filter.below, ra.scope)) &&
          (filter.principalId === undefined || ra.principalId.toLowerCase() === filter.principalId.toLowerCase()) &&
          (filter.roleDefinitionId === undefined || roleGuid(ra.roleDefinitionId) === roleGuid(filter.roleDefinitionId)),
      ),
    );
  }

  snapshot(): ArmSnapshot {
    return this.state.snapshot();
  }

  // ------------------------------------------------------------ writes

  addSubscription(subscriptionId: string, displayName?: string): void {
    this.state.addSubscription(subscriptionId, displayName);
  }

  addResourceGroup(name: string, location: string, opts: { subscriptionId?: string; tags?: Record<string, string> } = {}): string {
    return this.state.addResourceGroup(opts.subscriptionId ?? this.subscriptionId, name, location, opts.tags ?? {}).id;
  }

  /** Creates a workspace (and its resource group when missing) and publishes its write event. */
  createWorkspace(resourceGroup: string, spec: WorkspaceSpec, opts: ControlWriteOptions & { subscriptionId?: string } = {}): WorkspaceRecord {
    const sub = opts.subscriptionId ?? this.subscriptionId;
    const rg = this.state.getResourceGroup(sub, resourceGroup) ?? this.state.addResourceGroup(sub, resourceGroup, spec.location ?? 'westeurope');
    return clone(this.state.createWorkspace(rg, spec, this.caller(opts)));
  }

  updateWorkspace(id: string, patch: WorkspacePatch, opts: ControlWriteOptions = {}): WorkspaceRecord {
    return clone(this.state.updateWorkspace(id, patch, this.caller(opts)));
  }

  deleteWorkspace(id: string, opts: ControlWriteOptions = {}): boolean {
    return this.state.deleteWorkspace(id, this.caller(opts));
  }

  /**
   * Creates a compute as the portal would and publishes its write event. `provisioningState:
   * 'Creating'` in the spec leaves it creating; `succeedAfterMs` then moves it to `Succeeded` (with a
   * second event) after that long.
   */
  createCompute(workspaceId: string, spec: ComputeSpec, opts: ControlWriteOptions & { succeedAfterMs?: number } = {}): ComputeRecord {
    const ws = this.requireWorkspace(workspaceId);
    return clone(this.state.createCompute(ws, spec, this.caller(opts), opts.succeedAfterMs !== undefined ? { succeedAfterMs: opts.succeedAfterMs } : {}));
  }

  updateCompute(id: string, patch: ComputePatch, opts: ControlWriteOptions = {}): ComputeRecord {
    return clone(this.state.updateCompute(id, patch, this.caller(opts)));
  }

  setComputeState(id: string, s: { provisioningState?: ProvisioningState; state?: string }, opts: ControlWriteOptions = {}): ComputeRecord {
    return clone(this.state.setComputeState(id, s, this.caller(opts)));
  }

  deleteCompute(id: string, opts: ControlWriteOptions = {}): boolean {
    return this.state.deleteCompute(id, this.caller(opts));
  }

  addDatastore(workspaceId: string, spec: DatastoreSpec): DatastoreRecord {
    return clone(this.state.addDatastore(this.requireWorkspace(workspaceId), spec));
  }

  addRegistry(resourceGroup: string, spec: RegistrySpec, opts: { subscriptionId?: string } = {}): RegistryRecord {
    const sub = opts.subscriptionId ?? this.subscriptionId;
    const rg = this.state.requireResourceGroup(sub, resourceGroup);
    return clone(this.state.addRegistry(rg, spec));
  }

  setRegistryAdminUser(id: string, enabled: boolean): RegistryRecord {
    return clone(this.state.setRegistryAdminUser(id, enabled));
  }

  /** Adds a role assignment directly (no directory check, no event), as if made long ago. */
  addRoleAssignment(spec: RoleAssignmentSpec): RoleAssignmentRecord {
    return clone(this.state.seedRoleAssignment(spec));
  }

  removeRoleAssignment(name: string): boolean {
    return this.state.removeAssignment(name) !== undefined;
  }

  // ------------------------------------------------------------ operations and events

  /** The next matching long-running operation(s) end in `Failed` with this error. */
  failNextOperation(rule: LroFailureRule = {}): void {
    this.state.failOperations(rule);
  }

  /** Completes every operation in flight (for callers that start an LRO and never poll). */
  completeOperations(): number {
    return this.state.completeAllOperations();
  }

  /** Publishes ResourceWriteSuccess for a resource (interim or duplicate events; the resource may be gone). */
  emitWriteEvent(resourceId: string, opts: EmitEventOptions = {}): EgEvent[] {
    if (opts.provisioningState) {
      const c = this.state.getCompute(resourceId);
      if (c) {
        c.properties.provisioningState = opts.provisioningState;
        this.state.version++;
      }
    }
    return this.emit('Microsoft.Resources.ResourceWriteSuccess', resourceId, 'write', opts);
  }

  emitDeleteEvent(resourceId: string, opts: EmitEventOptions = {}): EgEvent[] {
    return this.emit('Microsoft.Resources.ResourceDeleteSuccess', resourceId, 'delete', { httpMethod: 'DELETE', ...opts });
  }

  private emit(type: ResourceEventType, resourceId: string, verb: string, opts: EmitEventOptions): EgEvent[] {
    const id = this.state.findResource(resourceId)?.id ?? normaliseScope(resourceId);
    const op = `${resourceTypeOf(id)}/${verb}`;
    const http = opts.httpMethod ? this.state.httpInfo(opts.httpMethod, id) : undefined;
    const out: EgEvent[] = [];
    const n = Math.max(1, opts.count ?? 1);
    for (let i = 0; i < n; i++) out.push(this.state.resourceEvent(type, id, op, this.caller(opts), http));
    return out;
  }

  private caller(opts: ControlWriteOptions): Caller {
    return this.state.operatorCaller(opts.callerObjectId);
  }

  private requireWorkspace(id: string): WorkspaceRecord {
    const ws = this.state.getWorkspace(id);
    if (!ws) {
      const { resourceGroup = '' } = parseResourceId(id);
      throw new ArmError(404, 'ResourceNotFound', `Workspace '${id}' (resource group '${resourceGroup}') was not found.`);
    }
    return ws;
  }
}
