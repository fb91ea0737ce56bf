import { fn } from '../shared/registration';
import { healthFunctionOptions } from '../shared/remediation/functions';
import { getRuntime } from '../shared/runtime';

fn.http('health', healthFunctionOptions(getRuntime));
