/** Writes policy.schema.json from the zod schema (`npm run schema`); a unit test fails when it is stale. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { policyJsonSchema } from '../shared/policy';

const file = join(__dirname, '..', 'policy.schema.json');
writeFileSync(file, `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
console.log(`Wrote ${file}`);
