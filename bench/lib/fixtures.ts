/**
 * Plain JavaScript the memory and cold-start probes run under bare `node` (no TypeScript loader, so
 * nothing but the code under test is in the process). Written to .cache/bench/ at run time, inside the
 * repository so `@azure/functions` resolves from its node_modules.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './build';

export const FIXTURES = join(ROOT, '.cache', 'bench');

/** The baseline: an app that imports only @azure/functions and registers one HTTP function. */
const BARE_APP = `const { app } = require('@azure/functions');
app.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'hello' }) });
`;

/**
 * Preloaded with `node -r`: stands in for the `@azure/functions-core` module the Functions Node worker
 * injects, so `@azure/functions` registers for real (not in "test mode") and the probe counts the
 * handlers registered, as the worker would.
 */
const FUNCTIONS_CORE = `const Module = require('node:module');
const registered = [];
const core = {
  registerFunction(metadata, callback) { registered.push({ name: metadata.name, callback }); return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
  setProgrammingModel() {},
  getProgrammingModel() { return undefined; },
  log() {},
};
globalThis.__wardenBenchRegistered = registered;
const load = Module._load;
Module._load = function (request, parent, isMain) {
  if (request === '@azure/functions-core') return core;
  return load.call(this, request, parent, isMain);
};
`;

/**
 * Cold-start probe: requires the app's entry (argv[2]), then prints the time since the process started
 * (performance.now() counts from Node's time origin), the time the require took, the handlers
 * registered, peak RSS and the packages loaded. With a second argument, also requires that module
 * afterwards (what the first invocation loads lazily) and reports its cost.
 */
const COLD_START_PROBE = `const entry = process.argv[2];
const lazy = process.argv[3];
const t0 = performance.now();
require(entry);
const registeredAt = performance.now();
const registered = (globalThis.__wardenBenchRegistered || []).length;
const rssAtRegistered = process.memoryUsage().rss;
const maxRssAtRegistered = process.resourceUsage().maxRSS * 1024;
const packages = new Set();
for (const m of Object.keys(require.cache)) {
  const p = /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(m);
  if (p) packages.add(p[1].replace(/\\\\/g, '/'));
}
const out = { sinceStartMs: registeredAt, requireMs: registeredAt - t0, registered, rssAtRegistered, maxRssAtRegistered, modules: Object.keys(require.cache).length, packages: [...packages].sort() };
if (lazy) {
  const t1 = performance.now();
  require(lazy);
  out.lazyMs = performance.now() - t1;
  out.maxRssAfterLazy = process.resourceUsage().maxRSS * 1024;
}
process.stdout.write(JSON.stringify(out));
`;

/**
 * Memory probe: builds the runtime from the compiled app (argv[2] = dist/ folder) with the settings in
 * WARDEN_BENCH_PROBE, records RSS, then either runs the plan of one target (report mode: nothing is
 * written) or, with `expandOnly`, only streams the group's transitive members through the directory
 * port keeping what the RBAC engine keeps (ids and types); prints RSS sampled every 5 ms and the
 * process's peak (maxRSS).
 */
const PLAN_MEMORY_PROBE = `const path = require('node:path');
const { useRuntime } = require(path.join(process.argv[2], 'shared', 'runtime.js'));
const { createDirectoryAdapter } = require(path.join(process.argv[2], 'shared', 'ports', 'azure', 'directory.js'));
const input = JSON.parse(process.env.WARDEN_BENCH_PROBE);
async function expand(rt) {
  const directory = createDirectoryAdapter(rt.core.clients, rt.core.limiter);
  const seen = new Set();
  const principals = [];
  for await (const page of directory.transitiveMembers(input.target)) {
    for (const m of page) if (!seen.has(m.id)) { seen.add(m.id); principals.push({ id: m.id, type: m.type }); }
  }
  return { changes: principals, findings: [], skipped: [], kept: seen };
}
let sampled = 0;
const sample = () => { const r = process.memoryUsage().rss; if (r > sampled) sampled = r; };
const timer = setInterval(sample, 5);
(async () => {
  const rt = await useRuntime({ env: input.env, logSink: () => {} });
  sample();
  const baselineRss = process.memoryUsage().rss;
  const baselineMaxRss = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  const plan = input.expandOnly ? await expand(rt) : await rt.capabilities[input.capability].plan(input.target);
  const planMs = performance.now() - t0;
  sample();
  clearInterval(timer);
  const mem = process.memoryUsage();
  process.stdout.write(JSON.stringify({
    baselineRss, baselineMaxRss, sampledPeakRss: sampled, maxRss: process.resourceUsage().maxRSS * 1024,
    heapUsedAfter: mem.heapUsed, rssAfter: mem.rss, planMs,
    changes: plan.changes.length, findings: plan.findings.length, skipped: plan.skipped.length,
  }));
  process.exit(0);
})().catch((e) => { process.stderr.write(String((e && e.stack) || e)); process.exit(1); });
`;

export interface FixturePaths {
  bareApp: string;
  functionsCore: string;
  coldStartProbe: string;
  planMemoryProbe: string;
}

export function writeFixtures(): FixturePaths {
  mkdirSync(FIXTURES, { recursive: true });
  const paths: FixturePaths = {
    bareApp: join(FIXTURES, 'bare-app.js'),
    functionsCore: join(FIXTURES, 'functions-core.js'),
    coldStartProbe: join(FIXTURES, 'cold-start-probe.js'),
    planMemoryProbe: join(FIXTURES, 'plan-memory-probe.js'),
  };
  writeFileSync(paths.bareApp, BARE_APP);
  writeFileSync(paths.functionsCore, FUNCTIONS_CORE);
  writeFileSync(paths.coldStartProbe, COLD_START_PROBE);
  writeFileSync(paths.planMemoryProbe, PLAN_MEMORY_PROBE);
  return paths;
}
