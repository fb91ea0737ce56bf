import type { EmuRequest, EmuResponse, Handler } from './types';
import { errorResponse } from './types';

interface Route {
  method: string;
  regex: RegExp;
  keys: string[];
  operation: string;
  handler: Handler;
}

/**
 * A small case-insensitive path router. Patterns use `:name` for one segment and `*name` for the
 * rest of the path (e.g. an ARM scope): `/*scope/providers/Microsoft.Authorization/roleAssignments/:name`.
 * Each route carries an operation name for the request record and fault rules.
 */
export class Router {
  private routes: Route[] = [];

  add(method: string, pattern: string, operation: string, handler: Handler): this {
    const keys: string[] = [];
    const source = pattern
      .split('/')
      .map((seg) => {
        if (seg.startsWith(':')) {
          keys.push(seg.slice(1));
          return '([^/]+)';
        }
        if (seg.startsWith('*')) {
          keys.push(seg.slice(1));
          return '(.+?)';
        }
        return seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    this.routes.push({ method: method.toUpperCase(), regex: new RegExp(`^${source}/?$`, 'i'), keys, operation, handler });
    return this;
  }

  /** Finds the route for a request; fills `req.params`. */
  match(req: EmuRequest): { operation: string; handler: Handler } | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.regex.exec(req.path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== req.method && r.method !== '*') continue;
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        params[k] = m[i + 1] ?? '';
      });
      req.params = params;
      return { operation: r.operation, handler: r.handler };
    }
    if (pathMatched) {
      return {
        operation: 'methodNotAllowed',
        handler: (): EmuResponse => errorResponse(405, 'MethodNotAllowed', `The method ${req.method} is not allowed on ${req.path}.`),
      };
    }
    return undefined;
  }
}
