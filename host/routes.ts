/**
 * HTTP route templates as the Functions host reads them (ASP.NET syntax): literals, `{name}`,
 * `{name:int}` (also `guid`, `alpha`, `bool`, `long`), optional `{name?}` and catch-all `{*rest}`.
 */

export interface CompiledRoute {
  template: string;
  regex: RegExp;
  params: string[];
  /** Higher first: literal routes win over parameterised ones, as in the host. */
  precedence: number;
}

const CONSTRAINTS: Record<string, string> = {
  int: '-?\\d+',
  long: '-?\\d+',
  guid: '[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}',
  alpha: '[A-Za-z]+',
  bool: '(?:true|false|True|False)',
};

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function compileRoute(template: string): CompiledRoute {
  const clean = template.replace(/^\/+|\/+$/g, '');
  const params: string[] = [];
  let pattern = '';
  let literals = 0;
  const segments = clean === '' ? [] : clean.split('/');
  segments.forEach((seg, i) => {
    const whole = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(seg);
    if (whole) {
      const [, star, name, constraint, optional] = whole;
      params.push(name as string);
      if (star) {
        if (i !== segments.length - 1) throw new Error(`Route "${template}": a catch-all parameter must be last`);
        pattern += '(?:/(.*))?';
        return;
      }
      const body = (constraint && CONSTRAINTS[constraint.toLowerCase()]) ?? '[^/]+';
      pattern += optional ? `(?:/(${body}))?` : `/(${body})`;
      return;
    }
    literals++;
    let segPattern = '';
    let last = 0;
    for (const m of seg.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}/g)) {
      segPattern += escape(seg.slice(last, m.index));
      params.push(m[1] as string);
      segPattern += `(${(m[2] && CONSTRAINTS[m[2].toLowerCase()]) ?? '[^/]+?'})`;
      last = m.index + m[0].length;
    }
    segPattern += escape(seg.slice(last));
    pattern += `/${segPattern}`;
  });
  return {
    template: clean,
    regex: new RegExp(`^${pattern}/?$`, 'i'),
    params,
    precedence: literals * 100 - params.length + segments.length,
  };
}

/** The parameters of `path` (decoded, without the route prefix), or undefined when it does not match. */
export function matchRoute(route: CompiledRoute, path: string): Record<string, string> | undefined {
  const m = route.regex.exec(path === '' ? '' : `/${path.replace(/^\/+/, '')}`.replace(/\/$/, ''));
  if (!m) return undefined;
  const out: Record<string, string> = {};
  route.params.forEach((p, i) => {
    const v = m[i + 1];
    if (v !== undefined) {
      try {
        out[p] = decodeURIComponent(v);
      } catch {
        out[p] = v;
      }
    }
  });
  return out;
}
