/**
 * Which resources a binding selects: resource type, tags, resource-group and name globs (all
 * optional, AND-ed), compared the way ARM compares them (type, tag names, group and resource names
 * case-insensitively; tag values exactly).
 */
import type { Binding } from '../policy';
import type { GovernedResource } from '../ports/rbac';

const globCache = new Map<string, RegExp>();

/** `*` matches any run of characters, `?` one character; case-insensitive, whole string. */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = glob
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${body}$`, 'i');
    globCache.set(glob, re);
  }
  return re;
}

export function matchesGlob(value: string, globs: readonly string[] | undefined): boolean {
  if (!globs || globs.length === 0) return true;
  return globs.some((g) => globToRegExp(g).test(value));
}

function tagValue(tags: Record<string, string>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(tags)) if (k.toLowerCase() === want) return v;
  return undefined;
}

export function matchesTags(tags: Record<string, string>, wanted: Record<string, string> | undefined): boolean {
  if (!wanted) return true;
  return Object.entries(wanted).every(([k, v]) => tagValue(tags, k) === v);
}

/** True when the binding selects the resource. */
export function bindingMatches(binding: Pick<Binding, 'resourceType' | 'match'>, resource: GovernedResource): boolean {
  if (binding.resourceType.toLowerCase() !== resource.type.toLowerCase()) return false;
  const m = binding.match;
  return matchesTags(resource.tags, m.tags) && matchesGlob(resource.resourceGroup, m.resourceGroups) && matchesGlob(resource.name, m.names);
}

/** True when a resource carries the exemption tag (any value but `false`): reported, never changed. */
export function isExempt(resource: GovernedResource, exemptTag: string): boolean {
  const v = tagValue(resource.tags, exemptTag);
  return v !== undefined && v.trim().toLowerCase() !== 'false';
}
