import type { EmuRequest, EmuResponse, ServiceName } from './types';
import { errorResponse } from './types';

/**
 * A fault rule: requests that match get the fault instead of (or, for `delayMs`, before) the real
 * answer. `times` bounds how often it fires (default: always); `probability` makes it intermittent.
 */
export interface FaultRule {
  service?: ServiceName;
  method?: string;
  /** Matched against the normalised path. */
  path?: RegExp;
  /** Operation name (exact, or prefix ending in `*`). */
  operation?: string;
  /** Answer with this status (429, 500, 503…). */
  status?: number;
  /** Retry-After header value in seconds (for 429/503). */
  retryAfterSeconds?: number;
  /** Error code in the body (defaults per status). */
  code?: string;
  /** Wait this long before answering (the real answer, unless `status` is also set). */
  delayMs?: number;
  /** Close the socket without answering. */
  reset?: boolean;
  times?: number;
  probability?: number;
}

interface ActiveRule extends FaultRule {
  id: number;
  fired: number;
}

export interface FaultDecision {
  delayMs: number;
  response?: EmuResponse;
  reset?: boolean;
}

const DEFAULT_CODES: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

export class FaultInjector {
  private rules: ActiveRule[] = [];
  private nextId = 1;
  /** Simulated latency added to every answer (benchmarks): fixed milliseconds per call. */
  latencyMs = 0;

  add(rule: FaultRule): number {
    const id = this.nextId++;
    this.rules.push({ ...rule, id, fired: 0 });
    return id;
  }

  remove(id: number): void {
    this.rules = this.rules.filter((r) => r.id !== id);
  }

  clear(): void {
    this.rules = [];
  }

  /** How often a rule fired so far. */
  fired(id: number): number {
    return this.rules.find((r) => r.id === id)?.fired ?? 0;
  }

  decide(req: EmuRequest, operation: string): FaultDecision {
    let delayMs = this.latencyMs;
    for (const r of this.rules) {
      if (r.service && r.service !== req.service) continue;
      if (r.method && r.method.toUpperCase() !== req.method) continue;
      if (r.path && !r.path.test(req.path)) continue;
      if (r.operation) {
        const op = r.operation;
        if (op.endsWith('*') ? !operation.startsWith(op.slice(0, -1)) : operation !== op) continue;
      }
      if (r.times !== undefined && r.fired >= r.times) continue;
      if (r.probability !== undefined && Math.random() >= r.probability) continue;
      r.fired++;
      delayMs += r.delayMs ?? 0;
      if (r.reset) return { delayMs, reset: true };
      if (r.status) {
        const headers: Record<string, string> = {};
        if (r.retryAfterSeconds !== undefined) headers['Retry-After'] = String(r.retryAfterSeconds);
        const code = r.code ?? DEFAULT_CODES[r.status] ?? 'Fault';
        return { delayMs, response: errorResponse(r.status, code, `Injected fault (${code}).`, headers) };
      }
    }
    return { delayMs };
  }
}
