import { fn } from '../shared/registration';
import { graphSubscriptionsOptions } from '../shared/rbac/functions';
import { getRuntime } from '../shared/runtime';

fn.timer('graphSubscriptions', graphSubscriptionsOptions(getRuntime));
