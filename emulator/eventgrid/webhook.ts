/**
 * Chat webhooks (`POST /webhooks/{name}`) answering like Teams Workflows: 202 with an empty body for
 * any payload (the card is validated later by Teams, so tests use `isAdaptiveCardMessage`).
 */
import { Router } from '../core/router';
import type { EmuContext } from '../core/server';
import { errorResponse } from '../core/types';
import { recordHeaders } from './headers';

export interface ReceivedWebhook {
  name: string;
  /** Parsed JSON, or the text when the body is not JSON. */
  body: unknown;
  headers: Record<string, string>;
  /** Emulator clock time of receipt (ms). */
  time: number;
}

export interface WebhookControl {
  /** Accepted posts (202), oldest first, for one webhook or all. */
  received(name?: string): ReceivedWebhook[];
  /** The next `n` posts to `name` answer `status` (and are not kept). */
  failNext(name: string, n: number, status: number, opts?: { retryAfterSeconds?: number }): void;
  clear(): void;
}

export function createWebhookService(deps: { ctx: EmuContext }): { router: Router; control: WebhookControl } {
  const received: ReceivedWebhook[] = [];
  const failures = new Map<string, { remaining: number; status: number; retryAfterSeconds?: number }>();

  const router = new Router().add('POST', '/webhooks/:name', 'webhook.post', (req) => {
    const name = req.params.name ?? '';
    const f = failures.get(name);
    if (f && f.remaining > 0) {
      f.remaining--;
      if (f.remaining === 0) failures.delete(name);
      return errorResponse(
        f.status,
        f.status === 429 ? 'TooManyRequests' : 'WorkflowTriggerFailed',
        `Injected failure (${f.status}).`,
        f.retryAfterSeconds === undefined ? undefined : { 'Retry-After': String(f.retryAfterSeconds) },
      );
    }
    received.push({
      name,
      body: req.body ?? req.rawBody.toString('utf8'),
      headers: recordHeaders(req.headers),
      time: deps.ctx.clock.now(),
    });
    return { status: 202 };
  });

  const control: WebhookControl = {
    received: (name) => received.filter((r) => name === undefined || r.name === name),
    failNext(name, n, status, opts = {}) {
      failures.set(
        name,
        opts.retryAfterSeconds === undefined
          ? { remaining: n, status }
          : { remaining: n, status, retryAfterSeconds: opts.retryAfterSeconds },
      );
    },
    clear() {
      received.length = 0;
      failures.clear();
    },
  };
  return { router, control };
}
