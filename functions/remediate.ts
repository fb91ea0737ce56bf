import { fn } from '../shared/registration';
import { remediateFunctionOptions } from '../shared/remediation/functions';
import { getRuntime } from '../shared/runtime';

fn.http('remediate', remediateFunctionOptions(getRuntime));
