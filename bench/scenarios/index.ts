/** Every scenario, in the order of the table. */
import type { Scenario } from '../lib/types';
import { burst } from './burst';
import { coldStart } from './coldStart';
import { compute } from './compute';
import { credentials } from './credentials';
import { largeGroup } from './largeGroup';
import { members } from './members';
import { rbacColdStart, rbacSteady } from './rbac';

export const SCENARIOS: ReadonlyArray<Scenario> = [rbacColdStart, rbacSteady, members, burst, credentials, compute, coldStart, largeGroup];
