import { fn } from '../shared/registration';
import { graphNotificationsOptions } from '../shared/rbac/functions';
import { getRuntime } from '../shared/runtime';

fn.http('graphNotifications', graphNotificationsOptions(getRuntime));
