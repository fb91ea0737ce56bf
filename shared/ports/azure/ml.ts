/**
 * The {@link MlResources} adapter over `@azure/arm-machinelearning` (api-version 2022-10-01), plus
 * container registries through a plain ARM GET. The only place the ML SDK is called.
 *
 * Lists use the SDK's pagers (`for await`, `nextLink` followed verbatim); long-running operations use
 * its pollers with `updateIntervalInMs: clients.lroPollMs`. Each request holds one slot of the shared
 * limiter (`WARDEN_CONCURRENCY`); polling an operation to its end does not, so a slow operation never
 * starves the other calls.
 *
 * `setComputeIdentity` is what `az ml compute update --identity-type …` does: GET the compute, replace
 * only `identity`, PUT the whole resource back (AZURE-API-FACTS §4.4; PATCH can change nothing but the
 * scale settings). The PUT body is the service's own JSON of the compute, not the SDK's model of it:
 * the SDK's serializer drops every property its 2022-10-01 model does not know, and "never lose a
 * setting" is the point of this adapter (see {@link fullPutBody}).
 */
import type {
  AzureMachineLearningWorkspaces,
  ComputeResource,
  Datastore as SdkDatastore,
  ManagedServiceIdentity,
  Workspace as SdkWorkspace,
} from '@azure/arm-machinelearning';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AzureClients } from '../../azure/clients';
import type { Limiter } from '../../concurrency';
import { InputError, statusOf, TerminalError } from '../../errors';
import {
  parseMlResourceId,
  type Compute,
  type ComputeIdentity,
  type Datastore,
  type DesiredIdentity,
  type IdentityType,
  type MlResources,
  type Workspace,
} from '../ml';

/** api-version for container registries (GA, has `properties.adminUserEnabled`). */
export const REGISTRY_API_VERSION = '2023-07-01';

export interface MlAdapterOptions {
  /** Bounds requests in flight; none = unbounded. */
  limiter?: Limiter;
}

const innerSchema = z
  .object({
    remoteLoginPortPublicAccess: z.string().nullish(),
    scaleSettings: z
      .object({ maxNodeCount: z.number(), minNodeCount: z.number().nullish(), nodeIdleTimeBeforeScaleDown: z.string().nullish() })
      .loose()
      .nullish(),
    sshSettings: z.object({ sshPublicAccess: z.string().nullish() }).loose().nullish(),
    state: z.string().nullish(),
    personalComputeInstanceSettings: z
      .object({ assignedUser: z.object({ objectId: z.string().nullish() }).loose().nullish() })
      .loose()
      .nullish(),
  })
  .loose();

const registrySchema = z.object({ properties: z.object({ adminUserEnabled: z.boolean().nullish() }).loose().nullish() }).loose();

function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** `SystemAssigned, UserAssigned` in any casing and spacing → the canonical domain value. */
export function toIdentity(i: ManagedServiceIdentity | undefined): ComputeIdentity {
  const parts = (i?.type ?? 'None').split(',').map((p) => p.trim().toLowerCase());
  const system = parts.includes('systemassigned');
  const user = parts.includes('userassigned');
  const type: IdentityType = system && user ? 'SystemAssigned,UserAssigned' : system ? 'SystemAssigned' : user ? 'UserAssigned' : 'None';
  return { type, userAssignedIdentities: user ? Object.keys(i?.userAssignedIdentities ?? {}) : [] };
}

/** The SDK's compute resource in domain terms. */
export function toCompute(r: ComputeResource): Compute {
  const id = r.id ?? '';
  const props = r.properties;
  const rawInner: unknown = props && 'properties' in props ? props.properties : undefined;
  const parsed = innerSchema.safeParse(rawInner ?? {});
  const inner = parsed.success ? parsed.data : {};
  const scale = inner.scaleSettings;
  const out: Compute = {
    id,
    name: r.name ?? id.split('/').pop() ?? '',
    workspaceId: parseMlResourceId(id)?.workspaceId ?? '',
    computeType: props?.computeType ?? 'Unknown',
    tags: { ...(r.tags ?? {}) },
    identity: toIdentity(r.identity),
    disableLocalAuth: props?.disableLocalAuth === true,
  };
  if (r.location) out.location = r.location;
  if (props?.provisioningState) out.provisioningState = props.provisioningState;
  if (inner.sshSettings?.sshPublicAccess) out.sshPublicAccess = inner.sshSettings.sshPublicAccess;
  if (inner.remoteLoginPortPublicAccess) out.remoteLoginPortPublicAccess = inner.remoteLoginPortPublicAccess;
  if (inner.state) out.state = inner.state;
  const assigned = inner.personalComputeInstanceSettings?.assignedUser?.objectId;
  if (assigned) out.assignedUserObjectId = assigned;
  if (scale) {
    out.scaleSettings = {
      minNodeCount: scale.minNodeCount ?? 0,
      maxNodeCount: scale.maxNodeCount,
      ...(scale.nodeIdleTimeBeforeScaleDown ? { nodeIdleTimeBeforeScaleDown: scale.nodeIdleTimeBeforeScaleDown } : {}),
    };
  }
  return out;
}

export function toWorkspace(w: SdkWorkspace): Workspace {
  const id = w.id ?? '';
  const p = parseMlResourceId(id);
  const out: Workspace = {
    id,
    name: w.name ?? p?.workspace ?? '',
    subscriptionId: p?.subscriptionId ?? '',
    resourceGroup: p?.resourceGroup ?? '',
    location: w.location ?? '',
    tags: { ...(w.tags ?? {}) },
  };
  if (w.containerRegistry) out.containerRegistry = w.containerRegistry;
  if (w.provisioningState) out.provisioningState = w.provisioningState;
  return out;
}

export function toDatastore(d: SdkDatastore): Datastore {
  return {
    id: d.id ?? '',
    name: d.name ?? '',
    datastoreType: d.properties.datastoreType,
    credentialsType: d.properties.credentials.credentialsType,
  };
}

/** The wire identity for a desired identity (`userAssignedIdentities` values are `{}` on requests). */
export function toWireIdentity(d: DesiredIdentity): ManagedServiceIdentity {
  return d.type === 'SystemAssigned' ? { type: 'SystemAssigned' } : { type: 'UserAssigned', userAssignedIdentities: { [d.id]: {} } };
}

/** Read-only values the service owns; a PUT leaves them out (the service would ignore them anyway). */
const SERVER_OWNED = {
  resource: ['id', 'name', 'type', 'systemData'],
  compute: ['provisioningState', 'createdOn', 'modifiedOn', 'isAttachedCompute', 'provisioningErrors'],
  amlCompute: ['allocationState', 'allocationStateTransitionTime', 'errors', 'currentNodeCount', 'targetNodeCount', 'nodeStateCounts'],
} as const;

function plainObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * The body of the identity PUT, from the compute exactly as the service returned it (the raw JSON, not
 * the SDK's model of it): every setting stays as it was, including any the SDK's 2022-10-01 model does
 * not know (its serializer would drop those); only `identity` is replaced and the server-owned values are
 * left out.
 */
export function fullPutBody(raw: unknown, identity: DesiredIdentity): Record<string, unknown> {
  const body = structuredClone(plainObject(raw) ?? {});
  for (const k of SERVER_OWNED.resource) delete body[k];
  body.identity = toWireIdentity(identity);
  const props = plainObject(body.properties);
  if (props) {
    for (const k of SERVER_OWNED.compute) delete props[k];
    const inner = plainObject(props.properties);
    if (inner && props.computeType === 'AmlCompute') for (const k of SERVER_OWNED.amlCompute) delete inner[k];
  }
  return body;
}

/** PUT bodies to send verbatim, by client request id (see {@link ensureFullPutPolicy}). */
const fullPutBodies = new Map<string, string>();
const FULL_PUT_POLICY = 'wardenFullPutBody';

/**
 * Lets the identity PUT go through the SDK (its auth, retries and LRO poller) with the body built by
 * {@link fullPutBody} instead of the SDK's re-serialisation of its own model, which keeps only the
 * properties that model knows. It runs after the SDK's serialisation and touches only PUT requests
 * whose client request id was registered by `setComputeIdentity`.
 */
function ensureFullPutPolicy(client: AzureMachineLearningWorkspaces): void {
  if (client.pipeline.getOrderedPolicies().some((p) => p.name === FULL_PUT_POLICY)) return;
  client.pipeline.addPolicy(
    {
      name: FULL_PUT_POLICY,
      sendRequest(request, next) {
        if (request.method === 'PUT') {
          const id = request.headers.get('x-ms-client-request-id');
          const body = id === undefined ? undefined : fullPutBodies.get(id);
          if (body !== undefined) request.body = body;
        }
        return next(request);
      },
    },
    { afterPolicies: ['serializationPolicy'] },
  );
}

function hasIdentity(current: ComputeIdentity, d: DesiredIdentity): boolean {
  if (d.type === 'SystemAssigned') return current.type === 'SystemAssigned';
  return current.type === 'UserAssigned' && current.userAssignedIdentities.length === 1 && current.userAssignedIdentities[0]?.toLowerCase() === d.id.toLowerCase();
}

interface ComputeRef {
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  compute: string;
}

function computeRef(id: string): ComputeRef {
  const p = parseMlResourceId(id);
  if (!p?.compute) throw new InputError('InvalidComputeId', `Not a compute resource id: ${id}`);
  return { subscriptionId: p.subscriptionId, resourceGroup: p.resourceGroup, workspace: p.workspace, compute: p.compute };
}

function workspaceRef(id: string): { subscriptionId: string; resourceGroup: string; workspace: string } {
  const p = parseMlResourceId(id);
  if (!p || p.compute) throw new InputError('InvalidWorkspaceId', `Not a workspace resource id: ${id}`);
  return p;
}

/**
 * Builds the adapter. Clients come from the process-wide {@link AzureClients} (one per subscription).
 * @example const ml = createMlResources(deps.clients, { limiter: deps.limiter });
 */
export function createMlResources(clients: AzureClients, options: MlAdapterOptions = {}): MlResources {
  const limit = <T>(fn: () => Promise<T>): Promise<T> => (options.limiter ? options.limiter.run(fn) : fn());
  const client = (sub: string): Promise<AzureMachineLearningWorkspaces> => clients.machineLearning(sub);
  const lro = (): { updateIntervalInMs?: number } => (clients.lroPollMs === undefined ? {} : { updateIntervalInMs: clients.lroPollMs });

  const readCompute = async (ref: ComputeRef): Promise<ComputeResource | undefined> => {
    const c = await client(ref.subscriptionId);
    try {
      return await limit(() => c.computeOperations.get(ref.resourceGroup, ref.workspace, ref.compute));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  /** The compute as the SDK models it, and as the service sent it. */
  const readComputeRaw = async (ref: ComputeRef): Promise<{ resource: ComputeResource; raw: unknown } | undefined> => {
    const c = await client(ref.subscriptionId);
    let raw: unknown;
    try {
      const resource = await limit(() =>
        c.computeOperations.get(ref.resourceGroup, ref.workspace, ref.compute, {
          // `parsedBody` is the SDK's model by now; the text is what the service sent.
          onResponse: (response) => {
            raw = response.bodyAsText ? (JSON.parse(response.bodyAsText) as unknown) : undefined;
          },
        }),
      );
      return { resource, raw };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  return {
    async listWorkspaces(scope) {
      const m = /^\/subscriptions\/([^/]+)(?:\/resourceGroups\/([^/]+))?\/?$/i.exec(scope);
      if (!m?.[1]) throw new InputError('InvalidScope', `Not a subscription or resource group scope: ${scope}`);
      const [sub, rg] = [m[1], m[2]];
      const c = await client(sub);
      return limit(async () => {
        const out: Workspace[] = [];
        try {
          const pages = rg ? c.workspaces.listByResourceGroup(rg) : c.workspaces.listBySubscription();
          for await (const w of pages) out.push(toWorkspace(w));
        } catch (err) {
          // A resource group that no longer exists holds no workspaces.
          if (rg && isNotFound(err)) return [];
          throw err;
        }
        return out;
      });
    },

    async getWorkspace(id) {
      const ref = workspaceRef(id);
      const c = await client(ref.subscriptionId);
      try {
        return toWorkspace(await limit(() => c.workspaces.get(ref.resourceGroup, ref.workspace)));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async listComputes(workspaceId) {
      const ref = workspaceRef(workspaceId);
      const c = await client(ref.subscriptionId);
      return limit(async () => {
        const out: Compute[] = [];
        try {
          for await (const r of c.computeOperations.list(ref.resourceGroup, ref.workspace)) out.push(toCompute(r));
        } catch (err) {
          if (isNotFound(err)) return [];
          throw err;
        }
        return out;
      });
    },

    async getCompute(id) {
      const r = await readCompute(computeRef(id));
      return r ? toCompute(r) : undefined;
    },

    async setComputeIdentity(id, identity) {
      const ref = computeRef(id);
      const current = await readComputeRaw(ref);
      if (!current) throw new TerminalError('ComputeNotFound', `Compute ${id} does not exist.`);
      const type = current.resource.properties?.computeType;
      if (type !== 'AmlCompute') {
        // An instance's identity is set at creation (the service refuses the PUT); other types are attached.
        throw new TerminalError('IdentityNotChangeable', `The identity of a ${type ?? 'compute'} cannot be changed after creation.`);
      }
      if (hasIdentity(toIdentity(current.resource.identity), identity)) return;
      const c = await client(ref.subscriptionId);
      ensureFullPutPolicy(c);
      const requestId = randomUUID();
      fullPutBodies.set(requestId, JSON.stringify(fullPutBody(current.raw, identity)));
      try {
        const poller = await limit(() =>
          c.computeOperations.beginCreateOrUpdate(ref.resourceGroup, ref.workspace, ref.compute, { ...current.resource, identity: toWireIdentity(identity) }, {
            ...lro(),
            requestOptions: { customHeaders: { 'x-ms-client-request-id': requestId } },
          }),
        );
        await poller.pollUntilDone();
      } finally {
        fullPutBodies.delete(requestId);
      }
    },

    async scaleToZero(id) {
      const ref = computeRef(id);
      const current = await readCompute(ref);
      if (!current) throw new TerminalError('ComputeNotFound', `Compute ${id} does not exist.`);
      // The idle time is sent back as it was, so only the node counts change whatever PATCH semantics the service applies.
      const idle = toCompute(current).scaleSettings?.nodeIdleTimeBeforeScaleDown;
      const c = await client(ref.subscriptionId);
      const poller = await limit(() =>
        c.computeOperations.beginUpdate(
          ref.resourceGroup,
          ref.workspace,
          ref.compute,
          { properties: { scaleSettings: { maxNodeCount: 0, minNodeCount: 0, ...(idle ? { nodeIdleTimeBeforeScaleDown: idle } : {}) } } },
          lro(),
        ),
      );
      await poller.pollUntilDone();
    },

    async stopCompute(id) {
      const ref = computeRef(id);
      const c = await client(ref.subscriptionId);
      const poller = await limit(() => c.computeOperations.beginStop(ref.resourceGroup, ref.workspace, ref.compute, lro()));
      await poller.pollUntilDone();
    },

    async deleteCompute(id) {
      const ref = computeRef(id);
      const c = await client(ref.subscriptionId);
      try {
        const poller = await limit(() => c.computeOperations.beginDelete(ref.resourceGroup, ref.workspace, ref.compute, 'Delete', lro()));
        await poller.pollUntilDone();
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },

    async listDatastores(workspaceId) {
      const ref = workspaceRef(workspaceId);
      const c = await client(ref.subscriptionId);
      return limit(async () => {
        const out: Datastore[] = [];
        for await (const d of c.datastores.list(ref.resourceGroup, ref.workspace)) out.push(toDatastore(d));
        return out;
      });
    },

    async getRegistryAdminUserEnabled(registryId) {
      const raw = await limit(() => clients.armGet(registryId, REGISTRY_API_VERSION));
      if (raw === undefined) return undefined;
      const parsed = registrySchema.safeParse(raw);
      if (!parsed.success) throw new TerminalError('InvalidRegistry', `Unexpected answer for container registry ${registryId}.`);
      return parsed.data.properties?.adminUserEnabled === true;
    },
  };
}
