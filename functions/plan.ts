import { fn } from '../shared/registration';
import { planFunctionOptions } from '../shared/remediation/functions';
import { getRuntime } from '../shared/runtime';

fn.http('plan', planFunctionOptions(getRuntime));
