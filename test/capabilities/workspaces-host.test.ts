/**
 * Resource events end to end: the emulator pushes ARM's ResourceWriteSuccess events to the host
 * runner's Event Grid endpoint (`resourceEvents`), which queues work on `warden-work` (a private
 * Azurite); the `work` function runs the real runtime (composition root) against the emulator.
 * A workspace created at 2 a.m. gets its binding's role assignment; duplicates and a late, old event
 * change nothing more; a new cluster gets its identity and a new instance is stopped.
 */
import { QueueClient } from '@azure/storage-queue';
import { startHost, type Host } from '../../host/host';
import { useRuntime, resetRuntime } from '../../shared/runtime';
import { WORK_QUEUE } from '../../shared/work/item';
import { startAzurite, type Azurite } from '../helpers/azurite';
import { withEmulator } from '../helpers/emulator';
import type { Emulator } from '../../emulator';
import { APP_ROOT, waitFor } from '../host/helpers';

const VISION_GROUP = '44444444-4444-4444-8444-000000000001';
const DATA_SCIENTIST = 'f6c7c914-8db3-469d-8ca1-694a8f32e121';
const ADA = '11111111-1111-4111-8111-000000000001';

let emu: Emulator;
let azurite: Azurite;
let host: Host;
let queue: QueueClient;

const wsId = (name: string): string => `/subscriptions/${emu.subscriptionId}/resourceGroups/rg-ml-vision/providers/Microsoft.MachineLearningServices/workspaces/${name}`;

beforeAll(async () => {
  emu = await withEmulator();
  azurite = await startAzurite();
  const policy = {
    mode: 'enforce',
    scopes: [`/subscriptions/${emu.subscriptionId}`],
    rbac: { bindings: [{ id: 'vision-data-scientists', group: VISION_GROUP, role: 'AzureML Data Scientist', match: { tags: { team: 'vision' } }, principals: 'group' }] },
    compute: { onViolation: { cluster: 'assign-identity', instance: 'stop' } },
  };
  const env = {
    ...emu.wardenEnv(),
    AzureWebJobsStorage: azurite.connectionString,
    WARDEN_POLICY: JSON.stringify(policy),
    WARDEN_LRO_POLL_MS: '10',
    WARDEN_RETRY_DELAY_MS: '5',
  };
  await useRuntime({ env, appRoot: APP_ROOT, logSink: () => undefined });
  host = await startHost({
    port: 0,
    env,
    appRoot: APP_ROOT,
    localSettings: false,
    functions: ['resourceEvents', 'work'],
    hostJson: { extensions: { queues: { maxPollingInterval: '00:00:00.100', visibilityTimeout: '00:00:01' } } },
    disableTimers: true,
    exportEnv: false,
    logSink: () => undefined,
  });
  queue = new QueueClient(azurite.connectionString, WORK_QUEUE);
  emu.events.subscribe({ name: 'warden-resources', topic: '*', endpoint: `${host.url}/runtime/webhooks/eventgrid?functionName=resourceEvents`, schema: 'EventGridSchema' });
}, 60_000);

afterAll(async () => {
  await host?.stop({ drainMs: 2000 });
  resetRuntime();
  await emu?.stop();
  await azurite?.stop();
});

/** Waits until every event was delivered and the work queue stayed empty for a while (coalesced follow-ups included). */
async function settled(): Promise<void> {
  await emu.idle();
  let emptySince: number | undefined;
  await waitFor(
    'the work queue to drain',
    async () => {
      const n = (await queue.getProperties()).approximateMessagesCount ?? 0;
      if (n > 0) emptySince = undefined;
      else emptySince ??= Date.now();
      return emptySince !== undefined && Date.now() - emptySince > 1500;
    },
    30_000,
    100,
  );
}

function roleWrites(): number {
  return emu.record.writes({ service: 'arm', operation: 'arm.roleAssignments.*' }).length;
}

describe('resource events on the host runner', () => {
  it('gives a new matching workspace its binding’s role assignment; duplicate and late events change nothing more', async () => {
    const ws = emu.arm.createWorkspace('rg-ml-vision', { name: 'mlw-vision-2am', tags: { team: 'vision' } });
    const assignment = await waitFor('the baseline role assignment', () =>
      emu.arm.roleAssignments({ scope: ws.id, principalId: VISION_GROUP }).find((a) => a.roleDefinitionId.toLowerCase().endsWith(DATA_SCIENTIST)),
    20_000);
    expect(assignment.principalType).toBe('Group');
    expect(assignment.description).toContain('warden:vision-data-scientists');
    await settled();

    const created = emu.events.published.find((e) => e.subject === ws.id && e.eventType === 'Microsoft.Resources.ResourceWriteSuccess');
    const writes = roleWrites();
    const before = emu.arm.roleAssignments({ below: ws.id });
    const mark = emu.record.mark();
    // Event Grid delivers at least once: duplicates, then the original creation event arriving late.
    emu.arm.emitWriteEvent(ws.id, { count: 3 });
    const late = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=resourceEvents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
      body: JSON.stringify([created]),
    });
    expect(late.status).toBe(202);
    await settled();
    expect(roleWrites()).toBe(writes);
    expect(emu.arm.roleAssignments({ below: ws.id })).toEqual(before);
    // The events were not dropped: they were reconciled again (read the truth) and planned nothing.
    const reads = emu.record.since(mark, { service: 'arm' }).map((r) => r.operation);
    expect(reads).toContain('arm.workspaces.get');
    expect(reads.filter((o) => !['GET'].includes(o) && o.startsWith('arm.roleAssignments.') && o !== 'arm.roleAssignments.list' && o !== 'arm.roleAssignments.get')).toEqual([]);
  }, 60_000);

  it('gives a new cluster the configured identity, keeping its settings, and stops a new instance', async () => {
    const ws = wsId('mlw-vision');
    const cluster = emu.arm.createCompute(ws, {
      name: 'cc-2am',
      computeType: 'AmlCompute',
      vmSize: 'STANDARD_NC6',
      scaleSettings: { maxNodeCount: 8, minNodeCount: 0, nodeIdleTimeBeforeScaleDown: 'PT600S' },
      remoteLoginPortPublicAccess: 'Disabled',
      tags: { team: 'vision' },
    });
    emu.arm.createCompute(ws, { name: 'ci-2am', computeType: 'ComputeInstance', assignedUser: ADA });
    const fixed = await waitFor('the cluster identity', () => {
      const c = emu.arm.getCompute(cluster.id);
      return c?.identity?.type === 'SystemAssigned' && c.properties.provisioningState === 'Succeeded' ? c : undefined;
    }, 20_000);
    const strip = (c: typeof cluster): unknown => {
      const { identity: _i, properties, ...rest } = c;
      const { modifiedOn: _m, provisioningState: _p, ...props } = properties;
      return { ...rest, properties: props };
    };
    expect(strip(fixed)).toEqual(strip(cluster));
    await waitFor('the instance to stop', () => emu.arm.getCompute(`${ws}/computes/ci-2am`)?.properties.properties.state === 'Stopped', 20_000);
    await settled();
    // Warden's own writes came back as events (the identity PUT's is recognised and queues nothing): no write twice.
    expect(emu.record.count({ service: 'arm', operation: 'arm.computes.put' })).toBe(1);
    expect(emu.record.count({ service: 'arm', operation: 'arm.computes.stop' })).toBe(1);
  }, 60_000);
});
