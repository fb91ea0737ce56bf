/**
 * App settings as Core Tools builds them: `local.settings.json` `Values`, with variables already in
 * the environment winning ("Skipping 'X' from local settings as it's already defined in current
 * environment variables"), and `Host.LocalHttpPort` as the default port.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';

const localSettingsSchema = z.looseObject({
  IsEncrypted: z.boolean().optional(),
  Values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  Host: z.looseObject({ LocalHttpPort: z.coerce.number().int().min(0).max(65535).optional() }).optional(),
});

export interface LocalSettings {
  values: Record<string, string>;
  localHttpPort: number | undefined;
}

export function readLocalSettings(file: string): LocalSettings {
  if (!existsSync(file)) return { values: {}, localHttpPort: undefined };
  const parsed = localSettingsSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`Invalid ${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  if (parsed.data.IsEncrypted) throw new Error(`${file} is encrypted; the host runner reads plain values only (func settings decrypt)`);
  return { values: parsed.data.Values ?? {}, localHttpPort: parsed.data.Host?.LocalHttpPort };
}

/** Local values under the environment; returns the merged settings and the local keys the environment shadowed. */
export function mergeSettings(
  local: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
): { settings: Record<string, string>; shadowed: string[] } {
  const settings: Record<string, string> = {};
  const shadowed: string[] = [];
  for (const [k, v] of Object.entries(local)) settings[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (k in local && local[k] !== v) shadowed.push(k);
    settings[k] = v;
  }
  return { settings, shadowed };
}

/** `1`, `true`, `yes` (any case). */
export function isTruthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes)$/i.test(v.trim());
}
