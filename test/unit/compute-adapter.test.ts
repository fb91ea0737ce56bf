/** Pure parts of the ML adapter: the identity PUT body and the identity mapping. */
import { fullPutBody, toIdentity } from '../../shared/ports/azure/ml';

const UAI = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1';

const raw = {
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/cc1',
  name: 'cc1',
  type: 'Microsoft.MachineLearningServices/workspaces/computes',
  location: 'westeurope',
  tags: { team: 'vision' },
  systemData: { createdBy: 'someone' },
  identity: { type: 'UserAssigned', userAssignedIdentities: { '/other': { principalId: 'p', clientId: 'c' } } },
  properties: {
    computeType: 'AmlCompute',
    provisioningState: 'Succeeded',
    createdOn: '2026-01-01T00:00:00.0000000Z',
    modifiedOn: '2026-01-01T00:00:00.0000000Z',
    isAttachedCompute: false,
    provisioningErrors: null,
    description: 'GPU',
    disableLocalAuth: true,
    properties: {
      vmSize: 'STANDARD_NC6',
      scaleSettings: { maxNodeCount: 2, minNodeCount: 0 },
      futureSetting: { a: 1 },
      allocationState: 'Steady',
      allocationStateTransitionTime: '2026-01-01T00:00:00Z',
      errors: null,
      currentNodeCount: 0,
      targetNodeCount: 0,
      nodeStateCounts: { idleNodeCount: 0 },
    },
  },
};

describe('fullPutBody', () => {
  it('keeps every setting as the service sent it, replaces the identity and leaves out what the service owns', () => {
    expect(fullPutBody(raw, { type: 'SystemAssigned' })).toEqual({
      location: 'westeurope',
      tags: { team: 'vision' },
      identity: { type: 'SystemAssigned' },
      properties: {
        computeType: 'AmlCompute',
        description: 'GPU',
        disableLocalAuth: true,
        properties: { vmSize: 'STANDARD_NC6', scaleSettings: { maxNodeCount: 2, minNodeCount: 0 }, futureSetting: { a: 1 } },
      },
    });
  });

  it('sends a user-assigned identity with an empty object per identity, and never mutates its input', () => {
    const copy = structuredClone(raw);
    expect(fullPutBody(raw, { type: 'UserAssigned', id: UAI }).identity).toEqual({ type: 'UserAssigned', userAssignedIdentities: { [UAI]: {} } });
    expect(raw).toEqual(copy);
  });
});

describe('toIdentity', () => {
  it.each([
    [undefined, { type: 'None', userAssignedIdentities: [] }],
    [{ type: 'None' }, { type: 'None', userAssignedIdentities: [] }],
    [{ type: 'systemassigned' }, { type: 'SystemAssigned', userAssignedIdentities: [] }],
    [{ type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [UAI]: {} } }, { type: 'SystemAssigned,UserAssigned', userAssignedIdentities: [UAI] }],
    [{ type: 'UserAssigned', userAssignedIdentities: { [UAI]: {} } }, { type: 'UserAssigned', userAssignedIdentities: [UAI] }],
  ])('%j → %j', (input, want) => {
    expect(toIdentity(input)).toEqual(want);
  });
});
