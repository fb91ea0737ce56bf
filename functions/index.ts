/**
 * The app: importing this module registers every function (SPEC §4) through `shared/registration.ts`,
 * for the Azure Functions host and for the project's host runner alike. One file per function; the
 * file name is the function name.
 */
import { app } from '@azure/functions';
import { isFunctionsRuntime } from '../shared/registration';

if (isFunctionsRuntime()) app.setup({ enableHttpStream: false });

import './health';
import './healthDeep';
import './plan';
import './remediate';
import './audit';
import './resourceEvents';
import './keyVaultEvents';
import './work';
import './sweep';
import './graphNotifications';
import './graphLifecycle';
import './graphEvents';
import './graphSubscriptions';
