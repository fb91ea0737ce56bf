/**
 * What Warden decided, and when, for the demo's timeline: every `plan` and `apply` of every capability
 * of the process runtime, stamped with the shared clock. The trace only observes (each call is passed
 * through unchanged); the story judges Warden by the emulator's state, never by this.
 */
import type { Capability, CapabilityName, ChangeOutcome, Plan } from '../shared/capability';

export interface TraceEntry {
  capability: CapabilityName;
  target: string;
  /** Clock time (ms) the plan was ready. */
  plannedAt: number;
  plan: Plan;
  /** Clock time (ms) the apply returned (enforce mode, when there was something to apply). */
  appliedAt?: number;
  outcomes?: ChangeOutcome[];
}

export interface Trace {
  entries: TraceEntry[];
  /** Entries whose plan was made at or after `since` (clock ms). */
  since(since: number): TraceEntry[];
}

/**
 * Wraps `plan` and `apply` of each capability object in place (the runtime's reconcile and work
 * pipeline hold the same objects), recording into the returned trace.
 */
export function traceCapabilities(capabilities: Readonly<Record<CapabilityName, Capability>>, now: () => number): Trace {
  const entries: TraceEntry[] = [];
  const open = new WeakMap<Plan, TraceEntry>();
  for (const cap of Object.values(capabilities)) {
    const plan = cap.plan.bind(cap);
    const apply = cap.apply.bind(cap);
    cap.plan = async (target) => {
      const p = await plan(target);
      const entry: TraceEntry = { capability: cap.name, target, plannedAt: now(), plan: p };
      entries.push(entry);
      open.set(p, entry);
      return p;
    };
    cap.apply = async (p, options) => {
      const outcomes = await apply(p, options);
      const entry = open.get(p);
      if (entry) {
        entry.appliedAt = now();
        entry.outcomes = outcomes;
      }
      return outcomes;
    };
  }
  return { entries, since: (t) => entries.filter((e) => e.plannedAt >= t) };
}
