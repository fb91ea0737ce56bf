/**
 * Registering the functions must not load an Azure SDK: the runtime (clients, adapters) loads on the
 * first invocation. A fresh Node process imports functions/index.ts and lists what it loaded.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

it('registers every function without loading an Azure SDK beyond @azure/functions', () => {
  const root = join(__dirname, '..', '..');
  const script = `
    require('./functions/index.ts');
    const { registeredFunctions } = require('./shared/registration.ts');
    const mods = Object.keys(require.cache).filter((k) => k.includes('node_modules'))
      .map((k) => k.replace(/.*node_modules[\\\\/]/, '').split(/[\\\\/]/).slice(0, 2).join('/'));
    process.stdout.write(JSON.stringify({ names: registeredFunctions().map((f) => f.name), mods: [...new Set(mods)] }));
  `;
  const out = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: root, encoding: 'utf8' });
  const { names, mods } = JSON.parse(out) as { names: string[]; mods: string[] };
  expect(names.sort()).toEqual(
    ['audit', 'graphEvents', 'graphLifecycle', 'graphNotifications', 'graphSubscriptions', 'health', 'healthDeep', 'keyVaultEvents', 'plan', 'remediate', 'resourceEvents', 'sweep', 'work'].sort(),
  );
  const sdks = mods.filter((m) => (m.startsWith('@azure/') || m.startsWith('@microsoft/')) && !m.startsWith('@azure/functions'));
  expect(sdks).toEqual([]);
});
