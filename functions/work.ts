import { fn } from '../shared/registration';
import { getRuntime } from '../shared/runtime';
import { workFunctionOptions } from '../shared/work/functions';

fn.storageQueue('work', workFunctionOptions(async () => (await getRuntime()).work));
