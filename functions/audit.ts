import { fn } from '../shared/registration';
import { auditFunctionOptions } from '../shared/remediation/functions';
import { getRuntime } from '../shared/runtime';

fn.http('audit', auditFunctionOptions(getRuntime));
