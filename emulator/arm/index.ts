/**
 * The emulated Azure Resource Manager: role assignments and definitions, Azure ML, container
 * registries and generic resources on one HTTPS listener that requires a bearer token.
 */
import type { Router } from '../core/router';
import { requireBearer } from '../core/server';
import type { EmuRequest, EmuResponse } from '../core/types';
import { ArmControl } from './control';
import { buildArmRouter } from './routes';
import { ArmState, type ArmDeps, type ArmOptions } from './state';

export interface ArmService {
  router: Router;
  control: ArmControl;
  state: ArmState;
  /** Pass to `createService({ authorize })`: ARM refuses calls without a bearer token. */
  authorize: (req: EmuRequest) => EmuResponse | undefined;
}

/** Builds the ARM service from the tenant file's `resources` section. */
export function createArmService(deps: ArmDeps, section: unknown, opts: ArmOptions = {}): ArmService {
  const state = new ArmState(deps, opts);
  state.seed(section);
  return { router: buildArmRouter(state), control: new ArmControl(state), state, authorize: requireBearer };
}

export { ArmControl, resourceTypeOf } from './control';
export type { ComputePatch, ControlWriteOptions, EmitEventOptions, WorkspacePatch } from './control';
export { ArmState, ArmError, guidFrom } from './state';
export type { ArmDeps, ArmOptions, ArmSnapshot, Caller, LroFailureRule, LroKind } from './state';
export type { PrincipalDirectory, ComputeRecord, WorkspaceRecord, RoleAssignmentRecord, DatastoreRecord, RegistryRecord } from './model';
export { BUILT_IN_ROLES, roleGuid } from './roles';
export { ArmSection } from './schema';
export type { ComputeSpec, DatastoreSpec, IdentitySpec, RegistrySpec, RoleAssignmentSpec, WorkspaceSpec } from './schema';
