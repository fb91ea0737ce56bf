/**
 * Registration options of RBAC sync's four functions, so `functions/*.ts` stay one line each and
 * tests call exactly the registered handlers with a real `HttpRequest` / `InvocationContext` and a
 * runtime of their choosing. Each handler: input → one use case → answer.
 *
 * The Graph validation handshake is answered from the URL alone, before the runtime (policy, SDK
 * clients) is even loaded: Graph allows 10 s and a cold start must not eat them.
 */
import type { EventGridFunctionOptions, HttpFunctionOptions, HttpRequest, HttpResponseInit, TimerFunctionOptions } from '@azure/functions';
import { readValidationToken } from '../events/graph';
import { ALL_METHODS, httpRoute, jsonResponse, type RouteContext } from '../http/route';
import { loggerFromContext } from '../logging';
import type { RbacModule } from './index';

/** What these functions need from the composition root (`shared/runtime.ts`). */
export interface RbacRuntime {
  rbac: Pick<RbacModule, 'receiveNotifications' | 'receiveLifecycle' | 'receiveGraphEvent' | 'ensureSubscription'>;
}

type GetRuntime = () => Promise<RbacRuntime>;

/** Graph subscriptions are checked hourly (renewal is due days before expiry). */
export const SUBSCRIPTIONS_SCHEDULE = '0 0 * * * *';

function handshake(req: HttpRequest): HttpResponseInit | undefined {
  const v = readValidationToken(req.url);
  if (v.kind === 'none') return undefined;
  if (v.kind === 'invalid') return jsonResponse(400, { error: { code: 'InvalidValidationToken', message: v.message } });
  return { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: v.token };
}

function webhook(route: string, receive: (rt: RbacRuntime, body: string, ctx: RouteContext) => Promise<{ status: number; error?: { code: string; message: string } }>, getRuntime: GetRuntime): HttpFunctionOptions {
  return {
    methods: [...ALL_METHODS],
    authLevel: 'anonymous',
    route,
    handler: httpRoute(['POST'], async (req, ctx) => {
      const answer = handshake(req);
      if (answer) {
        ctx.logger.info('Answered a Graph validation handshake');
        return answer;
      }
      const body = await req.text();
      const rt = await getRuntime();
      const receipt = await receive(rt, body, ctx);
      if (receipt.error) return jsonResponse(receipt.status, { error: receipt.error });
      return { status: receipt.status };
    }),
  };
}

/** `POST /api/graph/notifications` (anonymous; the clientState is the credential). */
export function graphNotificationsOptions(getRuntime: GetRuntime): HttpFunctionOptions {
  return webhook('graph/notifications', (rt, body, ctx) => rt.rbac.receiveNotifications(body, ctx.logger.child({ trigger: 'notification' })), getRuntime);
}

/** `POST /api/graph/lifecycle` (anonymous; the clientState is the credential). */
export function graphLifecycleOptions(getRuntime: GetRuntime): HttpFunctionOptions {
  return webhook('graph/lifecycle', (rt, body, ctx) => rt.rbac.receiveLifecycle(body, ctx.logger.child({ trigger: 'notification' })), getRuntime);
}

/**
 * `graphEvents`: Graph change and lifecycle notifications through an Event Grid partner topic. A
 * malformed event is logged and completes (redelivery cannot fix it); a failure to queue fails the
 * invocation so Event Grid delivers it again.
 */
export function graphEventsOptions(getRuntime: GetRuntime): EventGridFunctionOptions {
  return {
    handler: async (event, context) => {
      const logger = loggerFromContext(context, { trigger: 'event' });
      try {
        const rt = await getRuntime();
        const receipt = await rt.rbac.receiveGraphEvent(event, logger);
        logger.info(`Graph event ${receipt.action}`, { enqueued: receipt.enqueued, detail: receipt.detail });
      } catch (err) {
        if (err instanceof Error && err.name === 'InputError') {
          logger.warn('Ignored a malformed Graph event', { error: err });
          return;
        }
        context.error(err);
        throw err;
      }
    },
  };
}

/** `graphSubscriptions`: hourly; creates, checks, renews or recreates the one `/groups` subscription. */
export function graphSubscriptionsOptions(getRuntime: GetRuntime, schedule: string = SUBSCRIPTIONS_SCHEDULE): TimerFunctionOptions {
  return {
    schedule,
    handler: async (_timer, context) => {
      const logger = loggerFromContext(context, { trigger: 'schedule' });
      try {
        const rt = await getRuntime();
        const status = await rt.rbac.ensureSubscription(logger);
        logger.info(`Graph subscription ${status.action}`, { subscriptionId: status.id, expirationDateTime: status.expirationDateTime, reason: status.reason });
      } catch (err) {
        context.error(err);
        throw err;
      }
    },
  };
}
