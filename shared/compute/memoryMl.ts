/**
 * An in-memory {@link MlResources} for unit tests of use cases (here and in other capabilities, e.g. the
 * RBAC offboarding that stops instances). Ids compare case-insensitively, as ARM's do. Every call is
 * recorded in `calls` (`getCompute <id>`…), so a test can prove that something was never read.
 */
import type { Compute, Datastore, DesiredIdentity, MlResources, Workspace } from '../ports/ml';
import { inScopes, parseMlResourceId } from '../ports/ml';

const k = (id: string): string => id.toLowerCase();

export class MemoryMlResources implements MlResources {
  readonly workspaces = new Map<string, Workspace>();
  readonly computes = new Map<string, Compute>();
  readonly datastores = new Map<string, Datastore[]>();
  readonly registries = new Map<string, boolean>();
  readonly calls: string[] = [];

  addWorkspace(ws: Workspace): this {
    this.workspaces.set(k(ws.id), structuredClone(ws));
    return this;
  }
  addCompute(c: Compute): this {
    this.computes.set(k(c.id), structuredClone(c));
    return this;
  }
  setDatastores(workspaceId: string, list: Datastore[]): this {
    this.datastores.set(k(workspaceId), structuredClone(list));
    return this;
  }
  setRegistry(registryId: string, adminUserEnabled: boolean): this {
    this.registries.set(k(registryId), adminUserEnabled);
    return this;
  }
  /** Calls that changed something. */
  writes(): string[] {
    return this.calls.filter((c) => /^(setComputeIdentity|scaleToZero|stopCompute|deleteCompute) /.test(c));
  }
  /** Calls that named `id` (read or write). */
  touched(id: string): string[] {
    return this.calls.filter((c) => c.toLowerCase().includes(id.toLowerCase()));
  }

  private mustCompute(id: string): Compute {
    const c = this.computes.get(k(id));
    if (!c) throw Object.assign(new Error(`Compute ${id} not found`), { statusCode: 404, code: 'ResourceNotFound' });
    return c;
  }

  async listWorkspaces(scope: string): Promise<Workspace[]> {
    this.calls.push(`listWorkspaces ${scope}`);
    return [...this.workspaces.values()].filter((w) => inScopes(w.id, [scope])).map((w) => structuredClone(w));
  }
  async getWorkspace(id: string): Promise<Workspace | undefined> {
    this.calls.push(`getWorkspace ${id}`);
    const w = this.workspaces.get(k(id));
    return w ? structuredClone(w) : undefined;
  }
  async listComputes(workspaceId: string): Promise<Compute[]> {
    this.calls.push(`listComputes ${workspaceId}`);
    return [...this.computes.values()].filter((c) => k(parseMlResourceId(c.id)?.workspaceId ?? '') === k(workspaceId)).map((c) => structuredClone(c));
  }
  async getCompute(id: string): Promise<Compute | undefined> {
    this.calls.push(`getCompute ${id}`);
    const c = this.computes.get(k(id));
    return c ? structuredClone(c) : undefined;
  }
  async setComputeIdentity(id: string, identity: DesiredIdentity): Promise<void> {
    this.calls.push(`setComputeIdentity ${id}`);
    const c = this.mustCompute(id);
    c.identity = identity.type === 'SystemAssigned' ? { type: 'SystemAssigned', userAssignedIdentities: [] } : { type: 'UserAssigned', userAssignedIdentities: [identity.id] };
  }
  async scaleToZero(id: string): Promise<void> {
    this.calls.push(`scaleToZero ${id}`);
    const c = this.mustCompute(id);
    c.scaleSettings = { ...(c.scaleSettings ?? {}), minNodeCount: 0, maxNodeCount: 0 };
  }
  async stopCompute(id: string): Promise<void> {
    this.calls.push(`stopCompute ${id}`);
    this.mustCompute(id).state = 'Stopped';
  }
  async deleteCompute(id: string): Promise<void> {
    this.calls.push(`deleteCompute ${id}`);
    this.computes.delete(k(id));
  }
  async listDatastores(workspaceId: string): Promise<Datastore[]> {
    this.calls.push(`listDatastores ${workspaceId}`);
    return structuredClone(this.datastores.get(k(workspaceId)) ?? []);
  }
  async getRegistryAdminUserEnabled(registryId: string): Promise<boolean | undefined> {
    this.calls.push(`getRegistryAdminUserEnabled ${registryId}`);
    return this.registries.get(k(registryId));
  }
}
