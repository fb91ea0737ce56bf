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
 *
 * The GET before the PUT is usually the one the capability's plan has just made: `getCompute` keeps the
 * service's JSON of what it read, and `setComputeIdentity` uses it instead of reading again when it is
 * younger than {@link MlAdapterOptions.snapshotTtlMs} and the compute was settled (`Succeeded`,
 * `Failed`, `Canceled`) — a compute mid-operation may change under it. A snapshot serves one write and
 * any write through this adapter drops it. ML computes have no ETag to make the PUT conditional, so the
 * window stays short: in a reconcile the plan's GET and the apply's PUT are only the limiter's wait apart.
 *
 * The identity PUT sends a client request id of its own and notes it in the {@link OwnWriteLog}, so the
 * resource event ARM publishes for it can be recognised (`events/resource.ts`). It resolves only once the
 * operation's final GET shows the identity, which is what makes skipping that event safe.
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
import { InputError, statusOf, TerminalError, TransientError } from '../../errors';
import {
  parseMlResourceId,
  type Compute,
  type ComputeIdentity,
  type Datastore,
  type DesiredIdentity,
  type IdentityType,
  type MlResources,
  type OwnWriteLog,
  type Workspace,
  ownMlWrites,
} from '../ml';

/** api-version for container registries (GA, has `properties.adminUserEnabled`). */
export const REGISTRY_API_VERSION = '2023-07-01';

/** How long the JSON of a compute read by `getCompute` may stand in for a fresh read before the identity PUT. */
export const DEFAULT_SNAPSHOT_TTL_MS = 30_000;
/** Computes whose JSON is kept at most (a sweep plans many computes; only a few are then written). */
export const MAX_SNAPSHOTS = 256;
/** Computes whose last write time is kept at most (a few dozen bytes each). */
const MAX_WRITE_TIMES = 4096;

/** `provisioningState`s in which no operation is running on a compute. */
const SETTLED = new Set(['succeeded', 'failed', 'canceled']);

export interface MlAdapterOptions {
  /** Bounds requests in flight; none = unbounded. */
  limiter?: Limiter;
  /** See {@link DEFAULT_SNAPSHOT_TTL_MS}; 0 = `setComputeIdentity` always reads the compute first. */
  snapshotTtlMs?: number;
  /** Where this adapter notes its own writes; default the process-wide {@link ownMlWrites}. */
  ownWrites?: OwnWriteLog;
  /** Time source of the snapshot window (tests). */
  now?: () => number;
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

/** A compute as the SDK models it, and as the service sent it. */
interface ComputeRead {
  resource: ComputeResource;
  raw: unknown;
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

/** The compute's canonical id, lower-cased: the key of what the adapter remembers about it. */
function computeKey(ref: ComputeRef): string {
  return `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/${ref.workspace}/computes/${ref.compute}`.toLowerCase();
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
  const readComputeRaw = async (ref: ComputeRef): Promise<ComputeRead | undefined> => {
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

  const ttlMs = options.snapshotTtlMs ?? DEFAULT_SNAPSHOT_TTL_MS;
  const now = options.now ?? Date.now;
  const ownWrites = options.ownWrites ?? ownMlWrites;
  /** By compute: its JSON as `getCompute` read it, and when that GET was sent. */
  const snapshots = new Map<string, { read: ComputeRead; sentAt: number }>();
  /** By compute: when a write of it through this adapter last started or ended (kept as long as a snapshot may live). */
  const writes = new Map<string, number>();
  const fresh = (at: number, t: number): boolean => t - at >= 0 && t - at <= ttlMs;

  /** Keeps an entry last in a map whose insertion order is age order, dropping from the front what expired or does not fit. */
  const remember = <V>(map: Map<string, V>, max: number, key: string, value: V, at: (v: V) => number): void => {
    const t = now();
    map.delete(key);
    map.set(key, value);
    for (const [k, v] of map) {
      if (map.size <= max && fresh(at(v), t)) break;
      map.delete(k);
    }
  };

  /** A write of the compute starts or ends: no snapshot read before may stand in for a read any more. */
  const writing = (key: string): void => {
    snapshots.delete(key);
    if (ttlMs > 0) remember(writes, MAX_WRITE_TIMES, key, now(), (at) => at);
  };

  /** Runs a write of the compute; a GET answered while it ran may show the compute before it. */
  const write = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    writing(key);
    try {
      return await fn();
    } finally {
      writing(key);
    }
  };

  /**
   * The compute as `getCompute` read it moments ago, if that may stand in for a fresh read: read within
   * the window, settled, and not written by this adapter since. Used once.
   */
  const takeSnapshot = (key: string): ComputeRead | undefined => {
    const s = snapshots.get(key);
    snapshots.delete(key);
    if (!s || !fresh(s.sentAt, now())) return undefined;
    const lastWrite = writes.get(key);
    if (lastWrite !== undefined && lastWrite >= s.sentAt) return undefined;
    const state = s.read.resource.properties?.provisioningState?.toLowerCase();
    if (!state || !SETTLED.has(state) || plainObject(s.read.raw) === undefined) return undefined;
    return s.read;
  };

  /** A client request id for a write of the compute, noted as this process's own. */
  const ownRequestId = (key: string): string => {
    const requestId = randomUUID();
    ownWrites.record(requestId, key);
    return requestId;
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
      const ref = computeRef(id);
      const key = computeKey(ref);
      const sentAt = now();
      const r = await readComputeRaw(ref);
      if (!r) {
        snapshots.delete(key);
        return undefined;
      }
      if (ttlMs > 0) remember(snapshots, MAX_SNAPSHOTS, key, { read: r, sentAt }, (v) => v.sentAt);
      return toCompute(r.resource);
    },

    async setComputeIdentity(id, identity) {
      const ref = computeRef(id);
      const key = computeKey(ref);
      const current = takeSnapshot(key) ?? (await readComputeRaw(ref));
      if (!current) throw new TerminalError('ComputeNotFound', `Compute ${id} does not exist.`);
      const type = current.resource.properties?.computeType;
      if (type !== 'AmlCompute') {
        // An instance's identity is set at creation (the service refuses the PUT); other types are attached.
        throw new TerminalError('IdentityNotChangeable', `The identity of a ${type ?? 'compute'} cannot be changed after creation.`);
      }
      if (hasIdentity(toIdentity(current.resource.identity), identity)) return;
      const c = await client(ref.subscriptionId);
      ensureFullPutPolicy(c);
      const requestId = ownRequestId(key);
      fullPutBodies.set(requestId, JSON.stringify(fullPutBody(current.raw, identity)));
      const result = await write(key, async () => {
        try {
          const poller = await limit(() =>
            c.computeOperations.beginCreateOrUpdate(ref.resourceGroup, ref.workspace, ref.compute, { ...current.resource, identity: toWireIdentity(identity) }, {
              ...lro(),
              requestOptions: { customHeaders: { 'x-ms-client-request-id': requestId } },
            }),
          );
          return await poller.pollUntilDone();
        } finally {
          fullPutBodies.delete(requestId);
        }
      });
      // The operation's final GET: the write is done only when the compute shows it (a retry re-plans otherwise).
      if (!hasIdentity(toIdentity(result.identity), identity)) {
        throw new TransientError('IdentityNotApplied', `Compute ${id} does not show the ${identity.type} identity after its update succeeded.`);
      }
    },

    async scaleToZero(id) {
      const ref = computeRef(id);
      await write(computeKey(ref), async () => {
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
      });
    },

    async stopCompute(id) {
      const ref = computeRef(id);
      await write(computeKey(ref), async () => {
        const c = await client(ref.subscriptionId);
        const poller = await limit(() => c.computeOperations.beginStop(ref.resourceGroup, ref.workspace, ref.compute, lro()));
        await poller.pollUntilDone();
      });
    },

    async deleteCompute(id) {
      const ref = computeRef(id);
      await write(computeKey(ref), async () => {
        const c = await client(ref.subscriptionId);
        try {
          const poller = await limit(() => c.computeOperations.beginDelete(ref.resourceGroup, ref.workspace, ref.compute, 'Delete', lro()));
          await poller.pollUntilDone();
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      });
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
