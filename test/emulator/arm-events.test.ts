/**
 * Resource events: every write and delete of a workspace or compute — through the ARM API or the
 * control — reaches an Azure Functions Core Tools style endpoint as Event Grid delivers it
 * (`/runtime/webhooks/eventgrid?functionName=…`, `aeg-event-type: Notification`), in the Event Grid
 * schema and as CloudEvents, with the facts §6.2 data shape.
 */
import { EventGridDeserializer } from '@azure/eventgrid';
import type { AzureMachineLearningWorkspaces } from '@azure/arm-machinelearning';
import { FAST_LRO, machineLearningClient, startArm, startEventReceiver, staticCredential, type ArmHarness, type EventReceiver } from '../helpers/emulator';

const SUB = '3f8c5e7a-4d6b-4c8e-8a2f-1b3c4d5e6f70';
const TENANT = 'd4e5f6a7-0000-4000-8000-00000000aaaa';
const CALLER = 'e5f6a7b8-0000-4000-8000-00000000bbbb';
const RG_ID = `/subscriptions/${SUB}/resourceGroups/rg-events`;
const WS_ID = `${RG_ID}/providers/Microsoft.MachineLearningServices/workspaces/ws-events`;

const section = {
  subscriptions: [{ id: SUB, resourceGroups: [{ name: 'rg-events', location: 'westeurope', workspaces: [{ name: 'ws-events' }] }] }],
};

/** A JWT-shaped token naming the caller, as the emulator's managed-identity endpoint issues. */
function tokenFor(oid: string): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ typ: 'JWT', alg: 'none' })}.${enc({ oid, appid: oid, idtyp: 'app' })}.sig`;
}

let arm: ArmHarness;
let receiver: EventReceiver;
let ml: AzureMachineLearningWorkspaces;

interface Received {
  functionName: string;
  headers: Record<string, unknown>;
  body: unknown;
}

beforeAll(async () => {
  arm = await startArm({ section, tenantId: TENANT });
  receiver = await startEventReceiver();
  arm.events.subscribe({
    name: 'resource-events',
    topic: `/subscriptions/${SUB}`,
    endpoint: receiver.url('resourceEvents'),
    schema: 'EventGridSchema',
    includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
  });
  arm.events.subscribe({
    name: 'resource-events-ce',
    topic: `/subscriptions/${SUB}`,
    endpoint: receiver.url('resourceEventsCloud'),
    schema: 'CloudEventSchemaV1_0',
    includedEventTypes: ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'],
  });
  ml = machineLearningClient(arm.url, SUB, staticCredential(tokenFor(CALLER)));
});
afterAll(async () => {
  await arm.close();
  await receiver.close();
});

async function deliveriesAfter(action: () => Promise<unknown>, expected: number): Promise<{ eg: Received[]; ce: Received[] }> {
  const before = receiver.received.length;
  await action();
  await arm.pusher.drain();
  await receiver.waitFor(before + expected * 2);
  const fresh = receiver.received.slice(before);
  return { eg: fresh.filter((r) => r.functionName === 'resourceEvents'), ce: fresh.filter((r) => r.functionName === 'resourceEventsCloud') };
}

function egEvents(r: Received[]): Array<Record<string, unknown> & { data: Record<string, unknown> }> {
  return r.flatMap((x) => x.body as Array<Record<string, unknown> & { data: Record<string, unknown> }>);
}

describe('resource events', () => {
  it('delivers ResourceWriteSuccess for a compute created through ARM, in both schemas, after the LRO completes', async () => {
    const computeId = `${WS_ID}/computes/cc-events`;
    const { eg, ce } = await deliveriesAfter(async () => {
      const poller = await ml.computeOperations.beginCreateOrUpdate(
        'rg-events',
        'ws-events',
        'cc-events',
        { location: 'westeurope', properties: { computeType: 'AmlCompute', properties: { vmSize: 'STANDARD_DS3_V2' } } },
        FAST_LRO,
      );
      expect(arm.events.published.filter((e) => e.subject === computeId)).toHaveLength(0);
      await poller.pollUntilDone();
    }, 1);

    expect(eg).toHaveLength(1);
    expect(eg[0]?.headers['aeg-event-type']).toBe('Notification');
    expect(eg[0]?.headers['content-type']).toContain('application/json');
    const [ev] = (await new EventGridDeserializer().deserializeEventGridEvents(JSON.stringify(eg[0]?.body))) as unknown as Array<Record<string, unknown> & { data: Record<string, unknown> }>;
    expect(ev).toMatchObject({
      topic: RG_ID,
      subject: computeId,
      eventType: 'Microsoft.Resources.ResourceWriteSuccess',
      dataVersion: '2',
      metadataVersion: '1',
      data: {
        resourceUri: computeId,
        operationName: 'Microsoft.MachineLearningServices/workspaces/computes/write',
        resourceProvider: 'Microsoft.MachineLearningServices',
        status: 'Succeeded',
        subscriptionId: SUB,
        tenantId: TENANT,
        authorization: { scope: computeId, action: 'Microsoft.MachineLearningServices/workspaces/computes/write' },
        claims: { 'http://schemas.microsoft.com/identity/claims/objectidentifier': CALLER, 'http://schemas.microsoft.com/identity/claims/tenantid': TENANT },
      },
    });
    expect(typeof ev?.data.correlationId).toBe('string');
    expect(ev?.data.httpRequest).toBeUndefined();

    expect(ce).toHaveLength(1);
    expect(ce[0]?.headers['aeg-event-type']).toBe('Notification');
    expect(ce[0]?.headers['content-type']).toContain('application/cloudevents+json');
    const [cloud] = await new EventGridDeserializer().deserializeCloudEvents(JSON.stringify(ce[0]?.body));
    expect(cloud).toMatchObject({ specversion: '1.0', type: 'Microsoft.Resources.ResourceWriteSuccess', source: RG_ID, subject: computeId });
    expect(cloud?.data).toMatchObject({ resourceUri: computeId });
  });

  it('delivers ResourceDeleteSuccess with httpRequest for a compute deleted through ARM', async () => {
    const computeId = `${WS_ID}/computes/cc-events`;
    const { eg } = await deliveriesAfter(() => ml.computeOperations.beginDeleteAndWait('rg-events', 'ws-events', 'cc-events', 'Delete', FAST_LRO), 1);
    const [ev] = egEvents(eg);
    expect(ev).toMatchObject({
      eventType: 'Microsoft.Resources.ResourceDeleteSuccess',
      subject: computeId,
      data: { operationName: 'Microsoft.MachineLearningServices/workspaces/computes/delete', httpRequest: { method: 'DELETE' } },
    });
  });

  it('publishes events for control writes: a workspace, a compute that is Creating then Succeeded, duplicates and a delete', async () => {
    const OPERATOR = 'f6a7b8c9-0000-4000-8000-00000000cccc';
    const { eg: wsEvents } = await deliveriesAfter(async () => {
      arm.control.createWorkspace('rg-events', { name: 'ws-portal', tags: { team: 'vision' } }, { callerObjectId: OPERATOR });
    }, 1);
    const [wsEv] = egEvents(wsEvents);
    expect(wsEv).toMatchObject({
      subject: `${RG_ID}/providers/Microsoft.MachineLearningServices/workspaces/ws-portal`,
      data: { operationName: 'Microsoft.MachineLearningServices/workspaces/write', claims: { 'http://schemas.microsoft.com/identity/claims/objectidentifier': OPERATOR } },
    });

    const { eg: creating } = await deliveriesAfter(async () => {
      arm.control.createCompute(WS_ID, { name: 'ci-portal', computeType: 'ComputeInstance', provisioningState: 'Creating' }, { succeedAfterMs: 20 });
      const deadline = Date.now() + 3000;
      while (arm.control.getCompute(`${WS_ID}/computes/ci-portal`)?.properties.provisioningState !== 'Succeeded') {
        if (Date.now() > deadline) throw new Error('compute never succeeded');
        await new Promise((r) => setTimeout(r, 5));
      }
    }, 2);
    expect(egEvents(creating).map((e) => e.subject)).toEqual([`${WS_ID}/computes/ci-portal`, `${WS_ID}/computes/ci-portal`]);
    expect(arm.control.getCompute(`${WS_ID}/computes/ci-portal`)?.properties.properties.state).toBe('Running');

    const { eg: dupes } = await deliveriesAfter(async () => {
      const evs = arm.control.emitWriteEvent(`${WS_ID}/computes/CI-PORTAL`, { count: 2 });
      expect(evs[0]?.id).not.toBe(evs[1]?.id);
    }, 2);
    expect(egEvents(dupes).map((e) => e.subject)).toEqual([`${WS_ID}/computes/ci-portal`, `${WS_ID}/computes/ci-portal`]);

    const { eg: deleted } = await deliveriesAfter(async () => {
      expect(arm.control.deleteCompute(`${WS_ID}/computes/ci-portal`)).toBe(true);
    }, 1);
    expect(egEvents(deleted)[0]).toMatchObject({ eventType: 'Microsoft.Resources.ResourceDeleteSuccess', data: { httpRequest: { method: 'DELETE' } } });
  });

  it('delivers only to subscriptions whose topic and event types match', async () => {
    const before = receiver.received.length;
    arm.events.publish([
      arm.events.event({ topic: '/subscriptions/other/resourceGroups/rg', subject: '/x', eventType: 'Microsoft.Resources.ResourceWriteSuccess', data: {} }),
      arm.events.event({ topic: RG_ID, subject: `${WS_ID}/computes/x`, eventType: 'Microsoft.Resources.ResourceActionSuccess', data: {} }),
    ]);
    await arm.pusher.drain();
    expect(receiver.received.length).toBe(before);
  });
});
