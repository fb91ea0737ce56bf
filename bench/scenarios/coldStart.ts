/**
 * Cold start: a fresh `node` process loads the compiled app (dist/functions/index.js, what runs in
 * Azure) the way the Functions worker does, until every handler is registered; measured against a bare
 * app that imports only @azure/functions and registers one HTTP function, in the same run, with the
 * same loader. Runs alternate between the two and the medians are reported. Also reported: which
 * packages are loaded by registration (Azure SDKs should wait for the first invocation), and what
 * that first invocation then loads (the composition root).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import { DIST, ensureBuilt, ROOT } from '../lib/build';
import { writeFixtures } from '../lib/fixtures';
import { median } from '../lib/stats';
import { exactly, metric, type Scenario } from '../lib/types';

export type ColdStartSizes = {
  runs: number;
};

const probeSchema = z.object({
  sinceStartMs: z.number(),
  requireMs: z.number(),
  registered: z.number(),
  rssAtRegistered: z.number(),
  maxRssAtRegistered: z.number(),
  modules: z.number(),
  packages: z.array(z.string()),
  lazyMs: z.number().optional(),
  maxRssAfterLazy: z.number().optional(),
});
type Probe = z.infer<typeof probeSchema>;

/** Packages the app needs at registration; anything else from these scopes is an SDK loaded too early. */
const ALLOWED_AT_REGISTRATION = new Set(['@azure/functions', '@azure/functions-extensions-base']);
const SDK_SCOPES = /^(@azure|@microsoft|@typespec|@azure-rest)\//;

function probe(preload: string, script: string, entry: string, lazy?: string): Promise<Probe> {
  // As in Azure: no loader options, no extra CA file to read at start-up.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', preload, script, entry, ...(lazy ? [lazy] : [])], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`probe of ${entry} exited with ${code}: ${err.slice(0, 500)}`));
      try {
        resolve(probeSchema.parse(JSON.parse(out)));
      } catch (e) {
        reject(new Error(`probe of ${entry} printed no result: ${out.slice(0, 200)} ${err.slice(0, 300)} (${String(e)})`));
      }
    });
  });
}

const MB = 1024 * 1024;

export const coldStart: Scenario<ColdStartSizes> = {
  name: 'cold-start',
  title: 'Cold start: import the functions until handlers are registered, vs a bare @azure/functions app',
  defaults: { runs: 7 },
  storage: false,
  async run(ctx, sizes) {
    const build = ensureBuilt(ctx.log);
    const f = writeFixtures();
    const entry = join(DIST, 'functions', 'index.js');
    const lazy = join(DIST, 'shared', 'composition.js');
    ctx.log(`cold-start: ${sizes.runs} runs each (plus one warm-up), alternating`);
    await probe(f.functionsCore, f.coldStartProbe, entry);
    await probe(f.functionsCore, f.coldStartProbe, f.bareApp);
    const warden: Probe[] = [];
    const bare: Probe[] = [];
    for (let i = 0; i < sizes.runs; i++) {
      warden.push(await probe(f.functionsCore, f.coldStartProbe, entry, lazy));
      bare.push(await probe(f.functionsCore, f.coldStartProbe, f.bareApp));
    }
    const m = (list: Probe[], pick: (p: Probe) => number): number => median(list.map(pick));
    const wardenMs = m(warden, (p) => p.sinceStartMs);
    const bareMs = m(bare, (p) => p.sinceStartMs);
    const wardenRss = m(warden, (p) => p.maxRssAtRegistered) / MB;
    const bareRss = m(bare, (p) => p.maxRssAtRegistered) / MB;
    const last = warden[warden.length - 1] as Probe;
    const early = last.packages.filter((p) => SDK_SCOPES.test(p) && !ALLOWED_AT_REGISTRATION.has(p));
    return {
      metrics: [
        metric('warden: start→registered', wardenMs, 'ms'),
        metric('bare: start→registered', bareMs, 'ms'),
        metric('time ratio', wardenMs / bareMs, '×'),
        metric('warden: import', m(warden, (p) => p.requireMs), 'ms'),
        metric('bare: import', m(bare, (p) => p.requireMs), 'ms'),
        metric('warden: peak RSS', wardenRss, 'MB'),
        metric('bare: peak RSS', bareRss, 'MB'),
        metric('RSS ratio', wardenRss / bareRss, '×'),
        metric('handlers registered', last.registered, ''),
        metric('SDK packages at registration', early.length, '', exactly(0, '= 0 (lazy)')),
        metric('first invocation: load runtime', m(warden, (p) => p.lazyMs ?? Number.NaN), 'ms'),
        metric('first invocation: peak RSS', m(warden, (p) => p.maxRssAfterLazy ?? Number.NaN) / MB, 'MB'),
      ],
      details: {
        sizes,
        build,
        wardenPackagesAtRegistration: last.packages,
        sdkPackagesAtRegistration: early,
        wardenModules: last.modules,
        bareModules: (bare[bare.length - 1] as Probe).modules,
        samples: {
          wardenMs: warden.map((p) => Math.round(p.sinceStartMs)),
          bareMs: bare.map((p) => Math.round(p.sinceStartMs)),
        },
      },
    };
  },
};
