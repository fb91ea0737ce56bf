import { fn } from '../shared/registration';
import { healthDeepFunctionOptions } from '../shared/remediation/functions';
import { getRuntime } from '../shared/runtime';

fn.http('healthDeep', healthDeepFunctionOptions(getRuntime));
