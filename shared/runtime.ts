/**
 * The composition root's front door. Functions import only this small module; the heavy wiring in
 * `composition.ts` (SDK adapters, capabilities) loads on the first invocation, so registering the
 * functions at cold start stays cheap. The runtime is built once per process from `loadSettings()`.
 */
import type { Runtime, RuntimeOptions } from './composition';

export type { Runtime, RuntimeOptions } from './composition';

let current: Promise<Runtime> | undefined;

/** The process-wide runtime, built on first use. A failure (bad settings or policy) is not cached. */
export function getRuntime(): Promise<Runtime> {
  if (!current) {
    current = import('./composition').then((m) => m.createRuntime());
    current.catch(() => {
      current = undefined;
    });
  }
  return current;
}

/** Builds a runtime from explicit options (tests, benchmarks, the demo) and makes it the process one. */
export async function useRuntime(options: RuntimeOptions): Promise<Runtime> {
  const m = await import('./composition');
  const p = m.createRuntime(options);
  current = p;
  return p;
}

/** Forgets the process runtime (tests that change settings between cases). */
export function resetRuntime(): void {
  current = undefined;
}
