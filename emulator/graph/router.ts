import { Router } from '../core/router';
import type { EmuRequest, Handler } from '../core/types';

const APP_ID_MARK = 'appId=';
const ALTERNATE_KEY = /^\/v1\.0\/(applications|servicePrincipals)\(appId='([^'/]*)'\)(\/.*)?$/i;

/**
 * The core router plus Graph's alternate-key addressing: `/applications(appId='…')/addPassword`
 * is matched as `/applications/appId=…/addPassword`, so one route table serves both forms and the
 * recorded path stays the one the client sent. Handlers resolve `:id` through `appIdKey`.
 */
export class GraphRouter extends Router {
  override match(req: EmuRequest): { operation: string; handler: Handler } | undefined {
    const m = ALTERNATE_KEY.exec(req.path);
    if (!m) return super.match(req);
    const probe: EmuRequest = { ...req, path: `/v1.0/${m[1] ?? ''}/${APP_ID_MARK}${m[2] ?? ''}${m[3] ?? ''}` };
    const found = super.match(probe);
    req.params = probe.params;
    return found;
  }
}

/** The appId of an alternate-key route parameter, or undefined for a plain object id. */
export function appIdKey(param: string): string | undefined {
  return param.startsWith(APP_ID_MARK) ? param.slice(APP_ID_MARK.length) : undefined;
}
