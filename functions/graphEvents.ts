import { fn } from '../shared/registration';
import { graphEventsOptions } from '../shared/rbac/functions';
import { getRuntime } from '../shared/runtime';

fn.eventGrid('graphEvents', graphEventsOptions(getRuntime));
