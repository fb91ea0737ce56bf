import { fn } from '../shared/registration';
import { getRuntime } from '../shared/runtime';
import { sweepFunctionOptions } from '../shared/work/functions';

fn.timer('sweep', sweepFunctionOptions(async () => (await getRuntime()).work));
