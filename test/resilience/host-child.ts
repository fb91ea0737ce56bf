/**
 * The host runner in a process of its own, for the crash and two-host tests: the app settings come
 * from the environment, `RESILIENCE_MESSAGE_LEASE_MS` shortens the queue message lease (so a killed
 * host's messages reappear in seconds rather than the host's 10 minutes), and it prints
 * `READY <url>` once it serves. Every log line goes to stdout. SIGKILL ends it as a crash does: no
 * drain, no message handed back.
 *   node --import tsx test/resilience/host-child.ts
 */
import { startHost } from '../../host/host';
import { formatHostLog } from '../../host/log';

async function main(): Promise<void> {
  const lease = Number(process.env.RESILIENCE_MESSAGE_LEASE_MS ?? '3000');
  const host = await startHost({
    localSettings: false,
    disableTimers: true,
    messageLeaseMs: lease,
    logSink: (r) => process.stdout.write(`${formatHostLog(r)}\n`),
  });
  process.stdout.write(`READY ${host.url}\n`);
  process.on('SIGTERM', () => {
    void host.stop({ drainMs: 5000 }).then(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`The host did not start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
