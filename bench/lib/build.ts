/**
 * The compiled app (`npm run build` → dist/), which is what runs in Azure: cold start and memory are
 * measured on it. Rebuilt when missing or older than the sources.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

function newestMtime(dir: string): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

export interface BuildStatus {
  built: boolean;
  /** tsc's error lines when it had any (it still emits JavaScript). */
  errors: string[];
}

/** Builds dist/ unless it is newer than every source under functions/ and shared/. */
export function ensureBuilt(log: (line: string) => void): BuildStatus {
  const entry = join(DIST, 'functions', 'index.js');
  const sources = Math.max(newestMtime(join(ROOT, 'functions')), newestMtime(join(ROOT, 'shared')));
  if (existsSync(entry) && statSync(entry).mtimeMs >= sources) return { built: false, errors: [] };
  log('building dist/ (npm run build)');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, encoding: 'utf8' });
  const errors = `${res.stdout}${res.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
  if (!existsSync(entry)) throw new Error(`npm run build produced no ${entry}: ${errors.slice(0, 3).join('; ') || res.stderr}`);
  return { built: true, errors };
}
