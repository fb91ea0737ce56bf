/**
 * Graph on its own HTTPS listener, with its own clock, record, faults, pusher and event bus — for
 * Graph-only tests and probes. The full emulator composes Graph with the other services instead.
 */
import { EmuClock } from '../core/clock';
import { EventBus } from '../core/eventbus';
import { FaultInjector } from '../core/faults';
import { Pusher } from '../core/push';
import { RequestRecord } from '../core/record';
import { createService, requireBearer, type EmuContext, type TlsMaterial } from '../core/server';
import { createGraphService, type GraphControl, type PrincipalDirectory } from './index';

export interface StandaloneGraph {
  /** `https://127.0.0.1:<port>`: the Graph client's `baseUrl`. */
  url: string;
  control: GraphControl;
  principals: PrincipalDirectory;
  ctx: EmuContext;
  pusher: Pusher;
  events: EventBus;
  tenantId: string;
  close(): Promise<void>;
}

export async function startStandaloneGraph(opts: { tls: TlsMaterial; section?: unknown; tenantId?: string }): Promise<StandaloneGraph> {
  const clock = new EmuClock();
  const ctx: EmuContext = { clock, record: new RequestRecord(), faults: new FaultInjector() };
  const pusher = new Pusher(clock);
  const events = new EventBus(pusher, clock);
  const tenantId = opts.tenantId ?? '11111111-2222-4333-8444-555555555555';
  const graph = createGraphService({ ctx, pusher, events, tenantId }, opts.section ?? {});
  const running = await createService({ service: 'graph', router: graph.router, ctx, tls: opts.tls, authorize: requireBearer });
  return {
    url: running.url,
    control: graph.control,
    principals: graph.principals,
    ctx,
    pusher,
    events,
    tenantId,
    close: async () => {
      await pusher.drain();
      await running.close();
    },
  };
}
