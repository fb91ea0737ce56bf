/** Shared pieces of the HTTP routes: error envelope, bounded JSON bodies, caller identity, health. */
export { errorResponse, INVOCATION_HEADER, isClientError, MethodNotAllowedError, toErrorResponse, type ErrorBody } from './errors';
export { MAX_BODY_BYTES, parseInput, queryObject, readJsonBody, requireMethod } from './request';
export { authorizeCaller, identifyCaller, parsePrincipal, PRINCIPAL_HEADER, type Caller } from './caller';
export { ALL_METHODS, httpRoute, jsonResponse, type RouteContext, type RouteHandler } from './route';
export { deepChecks, runHealthChecks, type HealthCheck, type HealthReport } from './health';
