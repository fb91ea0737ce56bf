import { fn } from '../shared/registration';
import { graphLifecycleOptions } from '../shared/rbac/functions';
import { getRuntime } from '../shared/runtime';

fn.http('graphLifecycle', graphLifecycleOptions(getRuntime));
