/** Shared bits of the host runner tests. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { formatHostLog, type HostLogRecord, type HostLogSink } from '../../host/log';

export const FIXTURE_MODULE = join(__dirname, 'fixtures', 'functions.ts');
export const APP_ROOT = join(__dirname, '..', '..');

export function testStorage(): string {
  const s = process.env.WARDEN_TEST_STORAGE;
  if (!s) throw new Error('WARDEN_TEST_STORAGE is not set: run the tests through `npm test`');
  return s;
}

/** A queue name no other test uses (lowercase letters, digits, hyphens). */
export function uniqueQueue(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export function captureLogs(): HostLogSink & { records: HostLogRecord[]; text(): string } {
  const records: HostLogRecord[] = [];
  const sink = ((r: HostLogRecord) => {
    records.push(r);
  }) as HostLogSink & { records: HostLogRecord[]; text(): string };
  sink.records = records;
  sink.text = () => records.map(formatHostLog).join('\n');
  return sink;
}

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function base64Json(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
}
