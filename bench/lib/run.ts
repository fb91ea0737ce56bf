/** Runs one scenario: its own Azurite when it needs storage, sizes merged over its defaults, errors caught into the result. */
import { startAzurite } from '../../tools/azurite';
import type { Scenario, ScenarioResult } from './types';

export interface RunOptions {
  /** Overrides of the scenario's sizes. */
  sizes?: Record<string, number>;
  /** An Azurite to use instead of starting one; the scenario clears its work queue. */
  storage?: string;
  log?: (line: string) => void;
}

export async function runScenario<S>(scenario: Scenario<S>, opts: RunOptions = {}): Promise<ScenarioResult> {
  const started = performance.now();
  const sizes = { ...scenario.defaults, ...(opts.sizes ?? {}) } as S;
  const log = opts.log ?? (() => undefined);
  const azurite = scenario.storage && !opts.storage ? await startAzurite() : undefined;
  try {
    const out = await scenario.run({ storage: opts.storage ?? azurite?.connectionString ?? '', log }, sizes);
    return { scenario: scenario.name, title: scenario.title, ...out, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      scenario: scenario.name,
      title: scenario.title,
      metrics: [],
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      details: { stack: err instanceof Error ? err.stack : undefined, sizes },
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await azurite?.stop();
  }
}
