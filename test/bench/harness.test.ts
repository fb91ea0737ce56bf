/**
 * Keeps the benchmark harness from rotting: the smallest scenario (RBAC cold start) runs in-process
 * with tiny sizes against the real emulator and its own Azurite, and its figures must add up; the
 * table and the JSON report are produced from the result.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineInfo } from '../../bench/lib/machine';
import { formatMarkdown, formatTable, writeReport } from '../../bench/lib/report';
import { runScenario } from '../../bench/lib/run';
import { percentile } from '../../bench/lib/stats';
import type { ScenarioResult } from '../../bench/lib/types';
import { rbacColdStart } from '../../bench/scenarios/rbac';
import { SCENARIOS } from '../../bench/scenarios';

describe('benchmark harness', () => {
  let result: ScenarioResult;
  beforeAll(async () => {
    result = await runScenario(rbacColdStart, { sizes: { workspaces: 3, bindings: 2 } });
  }, 30_000);

  it('runs the RBAC cold start and counts every assignment it creates', () => {
    expect(result.error).toBeUndefined();
    const writes = result.metrics.find((m) => m.name === 'writes');
    expect(writes).toMatchObject({ value: 6, target: '= 6', met: true });
    expect(result.calls?.sweep?.['arm.roleAssignments.create']).toBe(6);
    expect(result.metrics.find((m) => m.name === 'failed changes')?.value).toBe(0);
    expect(result.metrics.find((m) => m.name === 'wall')?.met).toBeDefined();
  });

  it('prints the table and writes the JSON report with the machine', () => {
    const table = formatTable([result]);
    expect(table).toMatch(/^scenario\s+metric\s+value\s+target\s+met/);
    expect(table).toMatch(/rbac-cold\s+writes\s+6 calls\s+= 6\s+✓/);
    expect(formatMarkdown([result])).toContain('| rbac-cold | writes | 6 calls | = 6 | ✓ |');
    const dir = mkdtempSync(join(tmpdir(), 'warden-bench-test-'));
    try {
      const file = join(dir, 'latest.json');
      writeReport(file, { generatedAt: new Date().toISOString(), machine: machineInfo(), settings: {}, totalMs: 1, results: [result] });
      const back = JSON.parse(readFileSync(file, 'utf8')) as { machine: { cores: number; cpuModel: string }; results: ScenarioResult[] };
      expect(back.machine.cores).toBeGreaterThan(0);
      expect(back.machine.cpuModel).not.toBe('');
      expect(back.results[0]?.scenario).toBe('rbac-cold');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('knows every scenario of the issue by a unique name', () => {
    const names = SCENARIOS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(['rbac-cold', 'rbac-steady', 'members', 'burst', 'credentials', 'compute', 'cold-start', 'large-group']);
  });

  it('takes percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
});
