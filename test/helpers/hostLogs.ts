import { formatHostLog, type HostLogRecord, type HostLogSink } from '../../host/log';

/** Captures the host's log and counts invocations still running (from its Executing/Executed lines). */
export function memoryHostSink(): { sink: HostLogSink; records: HostLogRecord[]; text(): string; inFlight(): number } {
  const records: HostLogRecord[] = [];
  const running = new Set<string>();
  const sink: HostLogSink = (r) => {
    records.push(r);
    if (r.category === 'host' && r.invocationId) {
      if (r.message.startsWith('Executing ')) running.add(r.invocationId);
      else if (r.message.startsWith('Executed ')) running.delete(r.invocationId);
    }
    if (process.env.WARDEN_TEST_LOGS === '1') process.stdout.write(`${formatHostLog(r)}\n`);
  };
  return { sink, records, text: () => records.map(formatHostLog).join('\n'), inFlight: () => running.size };
}
