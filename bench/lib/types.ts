/**
 * What a benchmark scenario reports: named metrics, each with its value and (optionally) the target it
 * is held to. Benchmarks report; they never fail a build on a slow machine, so a missed target is a
 * row marked ✗, not an exception.
 */

export interface Metric {
  /** Short name, e.g. `writes`, `wall`, `ack p99`. */
  name: string;
  value: number;
  /** `ms`, `MB`, `calls`, `×`… (empty for plain counts). */
  unit: string;
  /** The target in words, e.g. `= 600`, `≤ 3.9 s`; absent for figures reported for information. */
  target?: string;
  /** Whether the target was met; absent when there is no target. */
  met?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  title: string;
  metrics: Metric[];
  /** Calls the emulator answered, by operation, for the measured phase(s). */
  calls?: Record<string, Record<string, number>>;
  /** Anything else worth keeping with the figures (sizes, settings, phases). */
  details?: Record<string, unknown>;
  /** Set when the scenario could not run (a capability not ready, an error): the message. */
  error?: string;
  durationMs: number;
}

/** Where a scenario runs: the Azurite connection string and the emulator's certificate. */
export interface ScenarioContext {
  /** Azurite connection string (a fresh Azurite per scenario, unless a test shares its own). */
  storage: string;
  /** Progress lines (stderr in the CLI; nothing in tests). */
  log: (line: string) => void;
}

export interface Scenario<S = Record<string, number>> {
  name: string;
  title: string;
  /** The sizes; the smoke test passes smaller ones. */
  defaults: S;
  /** Needs Azurite (most do; cold start does not). */
  storage: boolean;
  run(ctx: ScenarioContext, sizes: S): Promise<Omit<ScenarioResult, 'scenario' | 'title' | 'durationMs'>>;
}

/** A target checker: the metric with `target` and `met` filled in. */
export function metric(name: string, value: number, unit: string, target?: { text: string; ok: (v: number) => boolean }): Metric {
  const m: Metric = { name, value: round(value), unit };
  if (target) {
    m.target = target.text;
    m.met = target.ok(value);
  }
  return m;
}

export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  return Math.round(v * 100) / 100;
}

export const atMost = (limit: number, text?: string) => ({ text: text ?? `≤ ${fmt(limit)}`, ok: (v: number) => v <= limit });
export const below = (limit: number, text?: string) => ({ text: text ?? `< ${fmt(limit)}`, ok: (v: number) => v < limit });
export const exactly = (want: number, text?: string) => ({ text: text ?? `= ${fmt(want)}`, ok: (v: number) => v === want });

export function fmt(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : String(round(v));
}
