/**
 * Timer triggers on their NCRONTAB schedule (six fields, seconds first, UTC like the host unless
 * `WEBSITE_TIME_ZONE` says otherwise) or a TimeSpan (`hh:mm:ss`, every interval). A timer never
 * overlaps itself, as the host's singleton lock guarantees; `runOnStartup` runs it once at start.
 */
import { Cron } from 'croner';
import type { RegisteredFunction } from '../shared/registration';
import { parseTimeSpan } from '../shared/work/hostConfig';
import { timerInput } from './http';
import type { Invoker } from './invoke';
import type { HostLogger } from './log';

type TimerFunction = Extract<RegisteredFunction, { kind: 'timer' }>;

export interface TimerScheduleOptions {
  fn: TimerFunction;
  /** The schedule with `%SETTING%` already resolved. */
  schedule: string;
  timezone: string | undefined;
  invoker: Invoker;
  log: HostLogger;
}

export class TimerSchedule {
  private cron: Cron | undefined;
  private interval: NodeJS.Timeout | undefined;
  private busy = false;
  private last: Date | undefined;

  constructor(private readonly opts: TimerScheduleOptions) {}

  /** Throws for a schedule the host would reject; `enabled: false` only validates it (runs stay possible by hand). */
  start(enabled: boolean): void {
    const { schedule, fn } = this.opts;
    if (/^\s*(\d+\.)?\d{1,2}:\d{1,2}:\d{1,2}\s*$/.test(schedule)) {
      const every = parseTimeSpan(schedule);
      if (!every || every < 1000) throw new Error(`Timer '${fn.name}': interval "${schedule}" must be at least one second`);
      if (enabled) this.interval = setInterval(() => void this.fire(false), every);
    } else {
      if (schedule.trim().split(/\s+/).length !== 6) {
        throw new Error(`Timer '${fn.name}': "${schedule}" is not an NCRONTAB expression with six fields (seconds first)`);
      }
      this.cron = new Cron(schedule, { timezone: this.opts.timezone ?? 'Etc/UTC', paused: !enabled }, () => void this.fire(false));
    }
    if (enabled && fn.options.runOnStartup) void this.fire(false);
  }

  next(): Date | undefined {
    return this.cron?.nextRun() ?? undefined;
  }

  stop(): void {
    this.cron?.stop();
    if (this.interval) clearInterval(this.interval);
  }

  async fire(byHand: boolean): Promise<void> {
    if (this.busy && !byHand) {
      this.opts.log.warn(`Timer '${this.opts.fn.name}' is still running; skipped this occurrence`, { functionName: this.opts.fn.name });
      return;
    }
    this.busy = true;
    const now = new Date();
    try {
      await this.opts.invoker.invoke({
        fn: this.opts.fn,
        input: timerInput(false, this.last, this.next(), now),
        reason: byHand ? 'This function was programmatically called via the host APIs.' : `Timer fired at ${now.toISOString()}`,
        resolved: { schedule: this.opts.schedule },
      });
    } finally {
      this.last = now;
      this.busy = false;
    }
  }
}
