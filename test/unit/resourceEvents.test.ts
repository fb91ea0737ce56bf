import fc from 'fast-check';
import { parseEventGridEvent } from '../../shared/events/eventgrid';
import { classifyResourceId, handleResourceEvent, resourceEventToWork } from '../../shared/events/resource';
import { createLogger, memorySink } from '../../shared/logging';
import { parsePolicy } from '../../shared/policy';
import { OwnWriteLog, ownMlWrites } from '../../shared/ports/ml';
import type { WorkRequest } from '../../shared/work/item';

const SUB = '00000000-0000-0000-0000-000000000001';
const OUT_SUB = '00000000-0000-0000-0000-000000000009';
const WS = `/subscriptions/${SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws1`;
const CC = `${WS}/computes/cc1`;
const policy = parsePolicy({ scopes: [`/subscriptions/${SUB}`] }).policy;

function egEvent(subject: string, eventType = 'Microsoft.Resources.ResourceWriteSuccess', data: Record<string, unknown> = {}) {
  return {
    id: 'evt-1',
    topic: `/subscriptions/${SUB}`,
    subject,
    eventType,
    eventTime: '2026-03-01T02:00:00.0000000Z',
    data: { resourceUri: subject, operationName: 'Microsoft.MachineLearningServices/workspaces/write', status: 'Succeeded', subscriptionId: SUB, ...data },
    dataVersion: '2',
    metadataVersion: '1',
  };
}

function cloudEvent(subject: string, type = 'Microsoft.Resources.ResourceWriteSuccess') {
  return {
    specversion: '1.0',
    id: 'ce-1',
    source: `/subscriptions/${SUB}`,
    type,
    time: '2026-03-01T02:00:00Z',
    subject,
    data: { resourceUri: subject, operationName: 'Microsoft.MachineLearningServices/workspaces/computes/write', status: 'Succeeded' },
  };
}

const map = (input: unknown) => resourceEventToWork(parseEventGridEvent(input), policy);

describe('resourceEventToWork', () => {
  it('maps a workspace write to a posture check and an RBAC sync of that workspace', () => {
    const r = map(egEvent(WS));
    expect(r).toEqual({
      kind: 'work',
      resourceId: WS,
      resource: 'workspace',
      items: [
        { capability: 'workspaces', target: WS, reason: `workspace written: ${WS} (Microsoft.MachineLearningServices/workspaces/write)`, trigger: { kind: 'event', id: 'evt-1' } },
        { capability: 'rbac', target: WS, reason: `workspace written: ${WS} (Microsoft.MachineLearningServices/workspaces/write)`, trigger: { kind: 'event', id: 'evt-1' } },
      ],
    });
  });

  it('maps a compute write (CloudEvents schema) to a compute reconcile', () => {
    const r = map(cloudEvent(CC));
    expect(r.kind).toBe('work');
    if (r.kind !== 'work') return;
    expect(r.items).toEqual([expect.objectContaining({ capability: 'compute', target: CC, trigger: { kind: 'event', id: 'ce-1' } })]);
  });

  it('normalises the id casing ARM uses in events (resourcegroups, provider case)', () => {
    const odd = CC.replace('resourceGroups', 'resourcegroups').replace('Microsoft.MachineLearningServices', 'microsoft.machinelearningservices');
    const r = map(egEvent(odd));
    expect(r).toMatchObject({ kind: 'work', resourceId: CC });
  });

  it('maps a datastore write or delete to a posture check of its workspace', () => {
    for (const type of ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess']) {
      const r = map(egEvent(`${WS}/datastores/keyed`, type));
      expect(r).toMatchObject({ kind: 'work', resource: 'datastore', items: [{ capability: 'workspaces', target: WS }] });
    }
  });

  it.each([
    ['workspace delete', WS, 'Microsoft.Resources.ResourceDeleteSuccess', 'workspace deleted'],
    ['compute delete', CC, 'Microsoft.Resources.ResourceDeleteSuccess', 'compute deleted'],
    ['write failure', CC, 'Microsoft.Resources.ResourceWriteFailure', 'not handled'],
    ['action success', `${CC}`, 'Microsoft.Resources.ResourceActionSuccess', 'not handled'],
    ['other resource type', `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa`, 'Microsoft.Resources.ResourceWriteSuccess', 'not an Azure ML'],
    ['role assignment', `${WS}/providers/Microsoft.Authorization/roleAssignments/11111111-1111-1111-1111-111111111111`, 'Microsoft.Resources.ResourceWriteSuccess', 'not an Azure ML'],
    ['out of scope', CC.replace(SUB, OUT_SUB), 'Microsoft.Resources.ResourceWriteSuccess', 'outside the policy scopes'],
    ['empty subject', '', 'Microsoft.Resources.ResourceWriteSuccess', 'names no resource'],
  ])('ignores a %s', (_name, subject, type, reason) => {
    const r = map(egEvent(subject, type, subject === '' ? { resourceUri: undefined } : {}));
    expect(r.kind).toBe('ignored');
    if (r.kind === 'ignored') expect(r.reason).toContain(reason);
  });

  it('ignores an event whose subject and resourceUri disagree (one of them is forged)', () => {
    const r = map(egEvent(CC, 'Microsoft.Resources.ResourceWriteSuccess', { resourceUri: CC.replace(SUB, OUT_SUB) }));
    expect(r).toMatchObject({ kind: 'ignored', reason: expect.stringContaining('different resources') });
  });

  it('scope checks are prefix-safe: rg-ml does not contain rg-ml2', () => {
    const rgPolicy = parsePolicy({ scopes: [`/subscriptions/${SUB}/resourceGroups/rg-ml`] }).policy;
    const other = CC.replace('/rg-ml/', '/rg-ml2/');
    expect(resourceEventToWork(parseEventGridEvent(egEvent(other)), rgPolicy).kind).toBe('ignored');
    expect(resourceEventToWork(parseEventGridEvent(egEvent(CC)), rgPolicy).kind).toBe('work');
  });

  it('only ever targets in-scope resources (property)', () => {
    const seg = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/);
    fc.assert(
      fc.property(fc.constantFrom(SUB, OUT_SUB), seg, seg, fc.option(seg, { nil: undefined }), (sub, rg, ws, c) => {
        const id = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.MachineLearningServices/workspaces/${ws}${c ? `/computes/${c}` : ''}`;
        const r = map(egEvent(id));
        if (sub === OUT_SUB) expect(r.kind).toBe('ignored');
        else expect(r.kind).toBe('work');
        if (r.kind === 'work') for (const i of r.items) expect(i.target.startsWith(`/subscriptions/${SUB}/`)).toBe(true);
      }),
    );
  });
});

describe('events of Warden’s own writes', () => {
  const REQ = '0f8fad5b-d9cb-469f-a165-70867728950e';
  const http = (clientRequestId: unknown) => ({ httpRequest: { clientRequestId, clientIpAddress: '10.0.0.1', method: 'PUT', url: `https://management.azure.com${CC}?api-version=2022-10-01` } });
  const own = (): OwnWriteLog => {
    const log = new OwnWriteLog();
    log.record(REQ, CC);
    return log;
  };
  const mapWith = (input: unknown, log: OwnWriteLog | undefined) => resourceEventToWork(parseEventGridEvent(input), policy, log);

  it('ignores the write event that carries the client request id of Warden’s own write of that compute', () => {
    expect(mapWith(egEvent(CC, undefined, http(REQ)), own())).toEqual({ kind: 'ignored', reason: "Warden's own write, verified by the reconcile that made it", resourceId: CC });
    // ARM's casing of the id does not matter.
    const odd = CC.replace('resourceGroups', 'resourcegroups').toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/');
    expect(mapWith(egEvent(odd, undefined, http(REQ)), own()).kind).toBe('ignored');
  });

  it.each([
    ['another request id (anyone else’s write)', CC, http('6d6f1a2e-0000-4000-8000-000000000001')],
    ['no httpRequest (a create, or a portal write)', CC, {}],
    ['a malformed httpRequest', CC, { httpRequest: 'PUT /computes/cc1' }],
    ['a non-string request id', CC, http(42)],
    ['Warden’s request id on another compute', `${WS}/computes/cc2`, http(REQ)],
  ])('reconciles the event with %s', (_name, subject, data) => {
    expect(mapWith(egEvent(subject, undefined, data), own())).toMatchObject({ kind: 'work', resourceId: subject, items: [{ capability: 'compute', target: subject }] });
  });

  it('recognises nothing without a log, and a delete is never taken for a write', () => {
    expect(mapWith(egEvent(CC, undefined, http(REQ)), undefined).kind).toBe('work');
    const log = own();
    log.record(REQ, `${WS}/datastores/keyed`);
    expect(mapWith(egEvent(`${WS}/datastores/keyed`, 'Microsoft.Resources.ResourceDeleteSuccess', http(REQ)), log).kind).toBe('work');
  });

  it('never skips an event whose request id Warden did not send (property)', () => {
    const log = own();
    const seg = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/);
    fc.assert(
      fc.property(fc.uuid(), seg, fc.constantFrom('Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'), (id, name, type) => {
        fc.pre(id !== REQ);
        const subject = `${WS}/computes/${name}`;
        const withLog = mapWith(egEvent(subject, type, http(id)), log);
        expect(withLog).toEqual(mapWith(egEvent(subject, type, http(id)), undefined));
      }),
    );
  });

  it('forgets a write after its time, and the oldest first when full', () => {
    let t = 0;
    const log = new OwnWriteLog({ ttlMs: 1000, max: 2, now: () => t });
    log.record('a', CC);
    t = 1000;
    expect(log.isOwn('a', CC)).toBe(true);
    t = 1001;
    expect(log.isOwn('a', CC)).toBe(false);
    log.record('b', CC);
    log.record('c', CC);
    log.record('d', CC);
    expect(['b', 'c', 'd'].map((id) => log.isOwn(id, CC))).toEqual([false, true, true]);
    expect(log.isOwn(undefined, CC)).toBe(false);
  });

  it('handleResourceEvent consults the process-wide log the ML adapter records into, and queues nothing for it', async () => {
    const sink = memorySink();
    const queued: WorkRequest[][] = [];
    const id = `${WS}/computes/cc-own-${Date.now()}`;
    ownMlWrites.record(REQ, id);
    const r = await handleResourceEvent(egEvent(id, undefined, http(REQ)), { policy, logger: createLogger(sink), enqueue: async (items) => void queued.push(items) });
    expect(r.kind).toBe('ignored');
    expect(queued).toEqual([]);
    expect(sink.text()).toContain("Ignored resource event: Warden's own write");
    // An injected log replaces it.
    await handleResourceEvent(egEvent(id, undefined, http(REQ)), { policy, logger: createLogger(sink), enqueue: async (items) => void queued.push(items), ownWrites: new OwnWriteLog() });
    expect(queued).toHaveLength(1);
  });
});

describe('classifyResourceId', () => {
  it('recognises workspaces, computes and datastores', () => {
    expect(classifyResourceId(WS)).toEqual({ kind: 'workspace', id: WS, workspaceId: WS });
    expect(classifyResourceId(`${CC}/`)).toEqual({ kind: 'compute', id: CC, workspaceId: WS });
    expect(classifyResourceId(`${WS}/datastores/d1`)).toEqual({ kind: 'datastore', id: `${WS}/datastores/d1`, workspaceId: WS });
    expect(classifyResourceId(`${WS}/jobs/j1`)).toBeUndefined();
  });
});

describe('handleResourceEvent', () => {
  function deps() {
    const sink = memorySink();
    const queued: WorkRequest[][] = [];
    return {
      sink,
      queued,
      deps: { policy, logger: createLogger(sink), enqueue: async (items: WorkRequest[]) => void queued.push(items) },
    };
  }

  it('queues the work items of a relevant event', async () => {
    const { deps: d, queued, sink } = deps();
    await handleResourceEvent(egEvent(CC), d);
    expect(queued).toHaveLength(1);
    expect(queued[0]?.[0]).toMatchObject({ capability: 'compute', target: CC });
    expect(sink.text()).toContain(`Queued compute for compute ${CC}`);
  });

  it('queues the same work again for a duplicate (the queue coalesces it)', async () => {
    const { deps: d, queued } = deps();
    await handleResourceEvent(egEvent(WS), d);
    await handleResourceEvent(egEvent(WS), d);
    expect(queued).toEqual([queued[0], queued[0]]);
  });

  it.each([
    ['not JSON', 'not json {'],
    ['an array', [1, 2]],
    ['null', null],
    ['no event type', { id: 'x', subject: WS }],
    ['a CloudEvent without source', { specversion: '1.0', id: 'x', type: 'Microsoft.Resources.ResourceWriteSuccess' }],
  ])('logs and drops %s without throwing', async (_n, input) => {
    const { deps: d, queued, sink } = deps();
    await expect(handleResourceEvent(input, d)).resolves.toMatchObject({ kind: 'ignored' });
    expect(queued).toEqual([]);
    expect(sink.records.some((r) => r.level === 'warn' && r.message.includes('could not be parsed'))).toBe(true);
  });

  it('logs and drops a forged out-of-scope event without queueing anything', async () => {
    const { deps: d, queued, sink } = deps();
    const r = await handleResourceEvent(egEvent(CC.replace(SUB, OUT_SUB)), d);
    expect(r).toMatchObject({ kind: 'ignored', reason: 'outside the policy scopes' });
    expect(queued).toEqual([]);
    expect(sink.text()).toContain('Ignored resource event: outside the policy scopes');
  });

  it('fails when the queue fails, so Event Grid redelivers', async () => {
    const { deps: d } = deps();
    await expect(
      handleResourceEvent(egEvent(CC), {
        ...d,
        enqueue: async () => {
          throw new Error('queue unavailable');
        },
      }),
    ).rejects.toThrow('queue unavailable');
  });
});
