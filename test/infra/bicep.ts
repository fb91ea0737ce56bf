/**
 * A small reader for the Bicep that `infra/` is written in, so the infra consistency test can compare
 * the templates with the code without a Bicep compiler. It parses declarations (`param`, `var`,
 * `resource`, `module`, `output`, `targetScope`) into expression trees and evaluates the subset of
 * Bicep functions the templates use. Anything it cannot know at build time (a resource's runtime
 * properties, a module's outputs) evaluates to a {@link Ref}, which prints as `«path»`.
 *
 * It is deliberately strict: an unknown token, operator or function is an error naming the file and
 * position, so a template that drifts into syntax this reader does not understand fails the test
 * rather than being skipped.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export type Expr =
  | { t: 'str'; parts: Array<string | Expr> }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' }
  | { t: 'id'; name: string }
  | { t: 'obj'; props: Array<{ key: string; value: Expr }> }
  | { t: 'arr'; items: Expr[] }
  | { t: 'for'; item: string; index: string | undefined; source: Expr; cond: Expr | undefined; body: Expr }
  | { t: 'member'; obj: Expr; name: string; safe: boolean }
  | { t: 'index'; obj: Expr; index: Expr; safe: boolean }
  | { t: 'call'; name: string; args: Expr[] }
  | { t: 'unary'; op: '!' | '-'; e: Expr }
  | { t: 'bin'; op: string; l: Expr; r: Expr }
  | { t: 'tern'; c: Expr; a: Expr; b: Expr }
  | { t: 'lambda'; params: string[]; body: Expr };

export interface ParamDecl {
  name: string;
  type: string;
  default: Expr | undefined;
  decorators: Expr[];
}

export interface Declared {
  symbol: string;
  /** `type@apiVersion` for resources, the module path for modules. */
  ref: string;
  existing: boolean;
  condition: Expr | undefined;
  loop: { item: string; index: string | undefined; source: Expr } | undefined;
  body: Expr;
}

export interface BicepFile {
  path: string;
  targetScope: string;
  params: Map<string, ParamDecl>;
  vars: Map<string, Expr>;
  resources: Declared[];
  modules: Declared[];
  outputs: Map<string, { type: string; value: Expr }>;
}

// ---------------------------------------------------------------------------------------------
// Lexer

type Tok =
  | { k: 'str'; parts: Array<string | Expr>; pos: number }
  | { k: 'id'; v: string; pos: number }
  | { k: 'num'; v: number; pos: number }
  | { k: 'p'; v: string; pos: number }
  | { k: 'nl'; pos: number }
  | { k: 'eof'; pos: number };

const PUNCT = ['??', '=>', '==', '!=', '=~', '!~', '<=', '>=', '&&', '||', '.?', '[?', '{', '}', '[', ']', '(', ')', ',', ':', '.', '?', '<', '>', '!', '+', '-', '*', '/', '%', '=', '@'];

class BicepSyntaxError extends Error {
  constructor(file: string, text: string, pos: number, message: string) {
    const line = text.slice(0, pos).split('\n').length;
    super(`${file}:${line}: ${message}`);
    this.name = 'BicepSyntaxError';
  }
}

function lex(text: string, file: string, base = 0): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const fail = (msg: string): never => {
    throw new BicepSyntaxError(file, text, i, msg);
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\n') {
      toks.push({ k: 'nl', pos: base + i });
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) fail('unterminated comment');
      i = end + 2;
    } else if (text.startsWith("'''", i)) {
      const end = text.indexOf("'''", i + 3);
      if (end < 0) fail('unterminated multi-line string');
      let body = text.slice(i + 3, end);
      if (body.startsWith('\r\n')) body = body.slice(2);
      else if (body.startsWith('\n')) body = body.slice(1);
      toks.push({ k: 'str', parts: [body], pos: base + i });
      i = end + 3;
    } else if (c === "'") {
      const start = i;
      i++;
      const parts: Array<string | Expr> = [];
      let lit = '';
      for (;;) {
        if (i >= text.length) fail('unterminated string');
        const ch = text[i] as string;
        if (ch === "'") {
          i++;
          break;
        }
        if (ch === '\n') fail('newline in a single-line string');
        if (ch === '\\') {
          const n = text[i + 1];
          const map: Record<string, string> = { '\\': '\\', "'": "'", n: '\n', r: '\r', t: '\t', $: '$' };
          if (n === undefined || !(n in map)) fail(`unknown escape \\${n ?? ''}`);
          lit += map[n as string];
          i += 2;
          continue;
        }
        if (ch === '$' && text[i + 1] === '{') {
          // Find the matching `}`, skipping nested braces and strings.
          let depth = 1;
          let j = i + 2;
          while (j < text.length && depth > 0) {
            const cj = text[j];
            if (cj === "'") {
              j++;
              while (j < text.length && text[j] !== "'") j += text[j] === '\\' ? 2 : 1;
            } else if (cj === '{') depth++;
            else if (cj === '}') depth--;
            j++;
          }
          if (depth !== 0) fail('unterminated interpolation');
          if (lit) parts.push(lit);
          lit = '';
          const inner = text.slice(i + 2, j - 1);
          parts.push(parseExpressionText(inner, file, base + i + 2));
          i = j;
          continue;
        }
        lit += ch;
        i++;
      }
      if (lit || parts.length === 0) parts.push(lit);
      toks.push({ k: 'str', parts, pos: base + start });
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i)) as RegExpExecArray;
      toks.push({ k: 'id', v: m[0], pos: base + i });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(text.slice(i)) as RegExpExecArray;
      toks.push({ k: 'num', v: Number(m[0]), pos: base + i });
      i += m[0].length;
    } else {
      const p = PUNCT.find((x) => text.startsWith(x, i));
      if (!p) fail(`unexpected character "${c}"`);
      toks.push({ k: 'p', v: p as string, pos: base + i });
      i += (p as string).length;
    }
  }
  toks.push({ k: 'eof', pos: base + text.length });
  return toks;
}

// ---------------------------------------------------------------------------------------------
// Parser

class Parser {
  private i = 0;
  /** >0 inside parentheses and index brackets, where newlines are plain whitespace. */
  private nlSkip = 0;

  constructor(
    private readonly toks: Tok[],
    private readonly file: string,
    private readonly text: string,
  ) {}

  private fail(msg: string, tok: Tok = this.peek()): never {
    throw new BicepSyntaxError(this.file, this.text, tok.pos, msg);
  }

  peek(offset = 0): Tok {
    let j = this.i;
    let n = offset;
    for (;;) {
      const t = this.toks[j] as Tok;
      if (t.k === 'nl' && this.nlSkip > 0) {
        j++;
        continue;
      }
      if (n === 0) return t;
      n--;
      j++;
    }
  }

  next(): Tok {
    for (;;) {
      const t = this.toks[this.i] as Tok;
      this.i++;
      if (t.k === 'nl' && this.nlSkip > 0) continue;
      return t;
    }
  }

  isP(v: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.k === 'p' && t.v === v;
  }

  isId(v?: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.k === 'id' && (v === undefined || t.v === v);
  }

  expectP(v: string): void {
    const t = this.next();
    if (t.k !== 'p' || t.v !== v) this.fail(`expected "${v}"`, t);
  }

  expectId(v?: string): string {
    const t = this.next();
    if (t.k !== 'id' || (v !== undefined && t.v !== v)) this.fail(`expected ${v ?? 'an identifier'}`, t);
    return t.v;
  }

  skipNewlines(): void {
    while ((this.toks[this.i] as Tok).k === 'nl') this.i++;
  }

  private withNewlines<T>(skip: boolean, fn: () => T): T {
    const saved = this.nlSkip;
    this.nlSkip = skip ? saved + 1 : 0;
    try {
      return fn();
    } finally {
      this.nlSkip = saved;
    }
  }

  expression(): Expr {
    if (this.isLambda()) return this.lambda();
    const c = this.binary(0);
    if (this.isP('?')) {
      this.next();
      const a = this.expression();
      this.expectP(':');
      const b = this.expression();
      return { t: 'tern', c, a, b };
    }
    return c;
  }

  private isLambda(): boolean {
    if (this.isId() && this.isP('=>', 1)) return true;
    if (!this.isP('(')) return false;
    // `(a, b) =>`: look ahead without consuming.
    let k = 1;
    for (;;) {
      const t = this.peek(k);
      if (t.k === 'p' && t.v === ')') return this.isP('=>', k + 1);
      if (t.k !== 'id' && !(t.k === 'p' && t.v === ',')) return false;
      k++;
    }
  }

  private lambda(): Expr {
    const params: string[] = [];
    if (this.isP('(')) {
      this.next();
      while (!this.isP(')')) {
        params.push(this.expectId());
        if (this.isP(',')) this.next();
      }
      this.next();
    } else params.push(this.expectId());
    this.expectP('=>');
    return { t: 'lambda', params, body: this.expression() };
  }

  private static readonly LEVELS: string[][] = [['??'], ['||'], ['&&'], ['==', '!=', '=~', '!~'], ['<', '<=', '>', '>='], ['+', '-'], ['*', '/', '%']];

  private binary(level: number): Expr {
    if (level >= Parser.LEVELS.length) return this.unary();
    let l = this.binary(level + 1);
    for (;;) {
      const t = this.peek();
      if (t.k === 'p' && (Parser.LEVELS[level] as string[]).includes(t.v)) {
        this.next();
        const r = this.binary(level + 1);
        l = { t: 'bin', op: t.v, l, r };
      } else return l;
    }
  }

  private unary(): Expr {
    if (this.isP('!') || this.isP('-')) {
      const op = (this.next() as { v: string }).v as '!' | '-';
      return { t: 'unary', op, e: this.unary() };
    }
    return this.postfix(this.primary());
  }

  private postfix(e: Expr): Expr {
    for (;;) {
      if (this.isP('.') || this.isP('.?')) {
        const safe = (this.next() as { v: string }).v === '.?';
        const name = this.expectId();
        e = { t: 'member', obj: e, name, safe };
      } else if (this.isP('[') || this.isP('[?')) {
        const safe = (this.next() as { v: string }).v === '[?';
        const index = this.withNewlines(true, () => this.expression());
        this.expectP(']');
        e = { t: 'index', obj: e, index, safe };
      } else if (this.isP('(')) {
        const name = dottedName(e);
        if (!name) this.fail('only named functions can be called');
        this.next();
        const args = this.withNewlines(true, () => {
          const out: Expr[] = [];
          while (!this.isP(')')) {
            out.push(this.expression());
            if (this.isP(',')) this.next();
            else if (!this.isP(')')) this.fail('expected "," or ")"');
          }
          return out;
        });
        this.expectP(')');
        e = { t: 'call', name, args };
      } else return e;
    }
  }

  private primary(): Expr {
    const t = this.next();
    if (t.k === 'str') return { t: 'str', parts: t.parts };
    if (t.k === 'num') return { t: 'num', v: t.v };
    if (t.k === 'id') {
      if (t.v === 'true' || t.v === 'false') return { t: 'bool', v: t.v === 'true' };
      if (t.v === 'null') return { t: 'null' };
      return { t: 'id', name: t.v };
    }
    if (t.k === 'p' && t.v === '(') {
      const e = this.withNewlines(true, () => this.expression());
      this.expectP(')');
      return e;
    }
    if (t.k === 'p' && t.v === '{') return this.objectBody();
    if (t.k === 'p' && t.v === '[') return this.arrayBody();
    return this.fail('expected an expression', t);
  }

  /** After `{`: properties separated by newlines or commas. */
  private objectBody(): Expr {
    return this.withNewlines(false, () => {
      const props: Array<{ key: string; value: Expr }> = [];
      for (;;) {
        this.skipNewlines();
        if (this.isP('}')) {
          this.next();
          return { t: 'obj', props };
        }
        const kt = this.next();
        let key: string;
        if (kt.k === 'id') key = kt.v;
        else if (kt.k === 'str' && kt.parts.every((p) => typeof p === 'string')) key = kt.parts.join('');
        else if (kt.k === 'str') key = `\${${kt.parts.map((p) => (typeof p === 'string' ? p : show(p))).join('')}}`;
        else this.fail('expected a property name', kt);
        this.expectP(':');
        const value = this.expression();
        props.push({ key, value });
        if (this.isP(',')) this.next();
      }
    });
  }

  /** After `[`: items separated by newlines or commas, or a `for` expression. */
  private arrayBody(): Expr {
    return this.withNewlines(false, () => {
      this.skipNewlines();
      if (this.isId('for')) {
        this.next();
        let item: string;
        let index: string | undefined;
        if (this.isP('(')) {
          this.next();
          item = this.expectId();
          this.expectP(',');
          index = this.expectId();
          this.expectP(')');
        } else item = this.expectId();
        this.expectId('in');
        const source = this.expression();
        this.expectP(':');
        let cond: Expr | undefined;
        if (this.isId('if')) {
          this.next();
          this.expectP('(');
          cond = this.withNewlines(true, () => this.expression());
          this.expectP(')');
        }
        const body = this.expression();
        this.skipNewlines();
        this.expectP(']');
        return { t: 'for', item, index, source, cond, body };
      }
      const items: Expr[] = [];
      for (;;) {
        this.skipNewlines();
        if (this.isP(']')) {
          this.next();
          return { t: 'arr', items };
        }
        items.push(this.expression());
        if (this.isP(',')) this.next();
      }
    });
  }

  /** `if (cond) {…}`, `[for …]` or `{…}` after `resource x '…' =` / `module x '…' =`. */
  declBody(): { condition: Expr | undefined; loop: Declared['loop']; body: Expr } {
    if (this.isId('if')) {
      this.next();
      this.expectP('(');
      const condition = this.withNewlines(true, () => this.expression());
      this.expectP(')');
      return { condition, loop: undefined, body: this.expression() };
    }
    const e = this.expression();
    if (e.t === 'for') return { condition: e.cond, loop: { item: e.item, index: e.index, source: e.source }, body: e.body };
    return { condition: undefined, loop: undefined, body: e };
  }

  typeText(): string {
    const parts: string[] = [];
    while (!this.isP('=') && this.peek().k !== 'nl' && this.peek().k !== 'eof') {
      const t = this.next();
      parts.push(t.k === 'id' ? t.v : t.k === 'p' ? t.v : '?');
    }
    return parts.join('');
  }

  stringLiteral(): string {
    const t = this.next();
    if (t.k !== 'str' || !t.parts.every((p) => typeof p === 'string')) this.fail('expected a string literal', t);
    return t.parts.join('');
  }

  atEnd(): boolean {
    return this.peek().k === 'eof';
  }

  endOfStatement(): void {
    const t = this.peek();
    if (t.k !== 'nl' && t.k !== 'eof') this.fail('expected the end of the line');
  }
}

function dottedName(e: Expr): string | undefined {
  if (e.t === 'id') return e.name;
  if (e.t === 'member' && !e.safe) {
    const base = dottedName(e.obj);
    return base ? `${base}.${e.name}` : undefined;
  }
  return undefined;
}

function parseExpressionText(text: string, file: string, base: number): Expr {
  const p = new Parser(lex(text, file, base), file, text);
  const e = p.expression();
  if (!p.atEnd()) throw new Error(`${file}: trailing text in interpolation "${text}"`);
  return e;
}

/** Parses one `.bicep` file. */
export function parseBicep(path: string): BicepFile {
  const text = readFileSync(path, 'utf8');
  const p = new Parser(lex(text, path), path, text);
  const file: BicepFile = {
    path,
    targetScope: 'resourceGroup',
    params: new Map(),
    vars: new Map(),
    resources: [],
    modules: [],
    outputs: new Map(),
  };
  let decorators: Expr[] = [];
  for (;;) {
    p.skipNewlines();
    if (p.atEnd()) break;
    if (p.isP('@')) {
      p.next();
      decorators.push(p.expression());
      continue;
    }
    const kw = p.expectId();
    switch (kw) {
      case 'targetScope': {
        p.expectP('=');
        file.targetScope = p.stringLiteral();
        break;
      }
      case 'param': {
        const name = p.expectId();
        const type = p.typeText();
        let def: Expr | undefined;
        if (p.isP('=')) {
          p.next();
          def = p.expression();
        }
        file.params.set(name, { name, type, default: def, decorators });
        break;
      }
      case 'var': {
        const name = p.expectId();
        p.expectP('=');
        file.vars.set(name, p.expression());
        break;
      }
      case 'resource':
      case 'module': {
        const symbol = p.expectId();
        const ref = p.stringLiteral();
        let existing = false;
        if (p.isId('existing')) {
          p.next();
          existing = true;
        }
        p.expectP('=');
        const d = p.declBody();
        (kw === 'resource' ? file.resources : file.modules).push({ symbol, ref, existing, ...d });
        break;
      }
      case 'output': {
        const name = p.expectId();
        const type = p.expectId();
        p.expectP('=');
        file.outputs.set(name, { type, value: p.expression() });
        break;
      }
      default:
        throw new Error(`${path}: unsupported declaration "${kw}"`);
    }
    p.endOfStatement();
    decorators = [];
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// Printing and navigating

/** Canonical text of an expression (for comparing two expressions and for messages). */
export function show(e: Expr): string {
  switch (e.t) {
    case 'str':
      return `'${e.parts.map((p) => (typeof p === 'string' ? p.replace(/'/g, "\\'") : `\${${show(p)}}`)).join('')}'`;
    case 'num':
      return String(e.v);
    case 'bool':
      return String(e.v);
    case 'null':
      return 'null';
    case 'id':
      return e.name;
    case 'obj':
      return `{ ${e.props.map((p) => `${p.key}: ${show(p.value)}`).join(', ')} }`;
    case 'arr':
      return `[${e.items.map(show).join(', ')}]`;
    case 'for':
      return `[for ${e.index ? `(${e.item}, ${e.index})` : e.item} in ${show(e.source)}: ${e.cond ? `if (${show(e.cond)}) ` : ''}${show(e.body)}]`;
    case 'member':
      return `${show(e.obj)}${e.safe ? '.?' : '.'}${e.name}`;
    case 'index':
      return `${show(e.obj)}${e.safe ? '[?' : '['}${show(e.index)}]`;
    case 'call':
      return `${e.name}(${e.args.map(show).join(', ')})`;
    case 'unary':
      return `${e.op}${show(e.e)}`;
    case 'bin':
      return `(${show(e.l)} ${e.op} ${show(e.r)})`;
    case 'tern':
      return `(${show(e.c)} ? ${show(e.a)} : ${show(e.b)})`;
    case 'lambda':
      return `(${e.params.join(', ')}) => ${show(e.body)}`;
  }
}

/** A property of an object expression, or undefined. */
export function prop(e: Expr | undefined, key: string): Expr | undefined {
  if (!e || e.t !== 'obj') return undefined;
  return e.props.find((p) => p.key === key)?.value;
}

/** A nested property (`prop(e, 'properties', 'destination')`). */
export function path(e: Expr | undefined, ...keys: string[]): Expr | undefined {
  let cur = e;
  for (const k of keys) cur = prop(cur, k);
  return cur;
}

/** The literal text of a string expression without interpolation, else undefined. */
export function literal(e: Expr | undefined): string | undefined {
  if (!e || e.t !== 'str' || !e.parts.every((p) => typeof p === 'string')) return undefined;
  return e.parts.join('');
}

/** The literal strings of an array expression (throws on anything else). */
export function literalArray(e: Expr | undefined, what: string): string[] {
  if (!e || e.t !== 'arr') throw new Error(`${what} is not an array literal`);
  return e.items.map((x, i) => {
    const s = literal(x);
    if (s === undefined) throw new Error(`${what}[${i}] is not a string literal`);
    return s;
  });
}

export function resourcesOfType(file: BicepFile, type: string): Declared[] {
  return file.resources.filter((r) => r.ref.split('@')[0]?.toLowerCase() === type.toLowerCase());
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** A value only Azure knows at deployment time (a resource property, a module output). */
export class Ref {
  constructor(readonly path: string) {}
  toString(): string {
    return `«${this.path}»`;
  }
}

interface Lambda {
  lambda: Extract<Expr, { t: 'lambda' }>;
  locals: Map<string, unknown>;
}

function isLambda(v: unknown): v is Lambda {
  return typeof v === 'object' && v !== null && 'lambda' in v && 'locals' in v;
}

export interface EvalOptions {
  /** Parameter values (missing ones take their defaults). */
  params?: Record<string, unknown>;
  /** Values for resource and module symbols (otherwise they are {@link Ref}s). */
  symbols?: Record<string, unknown>;
  /** Replaces `loadJsonContent(path)` targets, keyed by the path as written. */
  jsonFiles?: Record<string, unknown>;
  subscriptionId?: string;
  tenantId?: string;
  resourceGroupName?: string;
  cloudName?: string;
}

export class Evaluator {
  private readonly varCache = new Map<string, unknown>();

  constructor(
    readonly file: BicepFile,
    private readonly opts: EvalOptions = {},
  ) {
    for (const name of Object.keys(opts.params ?? {})) {
      if (!file.params.has(name)) throw new Error(`${file.path}: no parameter "${name}"`);
    }
  }

  variable(name: string): unknown {
    if (this.varCache.has(name)) return this.varCache.get(name);
    const e = this.file.vars.get(name);
    if (!e) throw new Error(`${this.file.path}: no variable "${name}"`);
    const v = this.eval(e);
    this.varCache.set(name, v);
    return v;
  }

  param(name: string): unknown {
    const supplied = this.opts.params ?? {};
    if (Object.prototype.hasOwnProperty.call(supplied, name)) return supplied[name];
    const decl = this.file.params.get(name);
    if (!decl) throw new Error(`${this.file.path}: no parameter "${name}"`);
    if (!decl.default) throw new Error(`${this.file.path}: parameter "${name}" has no default and no value was given`);
    return this.eval(decl.default);
  }

  eval(e: Expr, locals: Map<string, unknown> = new Map()): unknown {
    const ev = (x: Expr): unknown => this.eval(x, locals);
    switch (e.t) {
      case 'str':
        return e.parts.map((p) => (typeof p === 'string' ? p : stringify(ev(p)))).join('');
      case 'num':
      case 'bool':
        return e.v;
      case 'null':
        return null;
      case 'id': {
        if (locals.has(e.name)) return locals.get(e.name);
        if (this.file.params.has(e.name)) return this.param(e.name);
        if (this.file.vars.has(e.name)) return this.variable(e.name);
        const symbols = this.opts.symbols ?? {};
        if (Object.prototype.hasOwnProperty.call(symbols, e.name)) return symbols[e.name];
        if ([...this.file.resources, ...this.file.modules].some((d) => d.symbol === e.name)) return new Ref(e.name);
        throw new Error(`${this.file.path}: unknown name "${e.name}"`);
      }
      case 'obj': {
        const out: Record<string, unknown> = {};
        for (const p of e.props) out[p.key] = ev(p.value);
        return out;
      }
      case 'arr':
        return e.items.map(ev);
      case 'for': {
        const src = ev(e.source);
        if (!Array.isArray(src)) throw new Error(`${this.file.path}: for over a non-array (${show(e.source)})`);
        const out: unknown[] = [];
        src.forEach((item, i) => {
          const l = new Map(locals);
          l.set(e.item, item);
          if (e.index) l.set(e.index, i);
          if (e.cond === undefined || truthy(this.eval(e.cond, l))) out.push(this.eval(e.body, l));
        });
        return out;
      }
      case 'member': {
        // A declared resource's name is known at build time; everything else about it is not.
        if (e.name === 'name' && e.obj.t === 'id' && !locals.has(e.obj.name) && !Object.prototype.hasOwnProperty.call(this.opts.symbols ?? {}, e.obj.name)) {
          const symbol = e.obj.name;
          const decl = this.file.resources.find((r) => r.symbol === symbol && !r.loop);
          const nameExpr = decl ? prop(decl.body, 'name') : undefined;
          if (nameExpr) return ev(nameExpr);
        }
        const o = ev(e.obj);
        if (o instanceof Ref) return new Ref(`${o.path}.${e.name}`);
        if (o === null || o === undefined) {
          if (e.safe) return null;
          throw new Error(`${this.file.path}: .${e.name} of null in ${show(e)}`);
        }
        if (typeof o !== 'object') throw new Error(`${this.file.path}: .${e.name} of a ${typeof o} in ${show(e)}`);
        const key = Object.keys(o).find((k) => k.toLowerCase() === e.name.toLowerCase());
        if (key === undefined) {
          if (e.safe) return null;
          throw new Error(`${this.file.path}: no property ${e.name} in ${show(e)}`);
        }
        return (o as Record<string, unknown>)[key];
      }
      case 'index': {
        const o = ev(e.obj);
        const k = ev(e.index);
        if (o instanceof Ref) return new Ref(`${o.path}[${stringify(k)}]`);
        if (Array.isArray(o) && typeof k === 'number') {
          if (k < 0 || k >= o.length) {
            if (e.safe) return null;
            throw new Error(`${this.file.path}: index ${k} out of range in ${show(e)}`);
          }
          return o[k];
        }
        if (o && typeof o === 'object' && typeof k === 'string') {
          const key = Object.keys(o).find((x) => x.toLowerCase() === k.toLowerCase());
          if (key === undefined) {
            if (e.safe) return null;
            throw new Error(`${this.file.path}: no key "${k}" in ${show(e)}`);
          }
          return (o as Record<string, unknown>)[key];
        }
        if ((o === null || o === undefined) && e.safe) return null;
        throw new Error(`${this.file.path}: cannot index ${show(e)}`);
      }
      case 'unary': {
        const v = ev(e.e);
        if (e.op === '!') return !truthy(v);
        if (typeof v !== 'number') throw new Error(`${this.file.path}: minus of a non-number`);
        return -v;
      }
      case 'bin':
        return this.binary(e, locals);
      case 'tern':
        return truthy(ev(e.c)) ? ev(e.a) : ev(e.b);
      case 'lambda':
        return { lambda: e, locals } satisfies Lambda;
      case 'call':
        return this.call(e.name, e.args.map(ev));
    }
  }

  private binary(e: Extract<Expr, { t: 'bin' }>, locals: Map<string, unknown>): unknown {
    const l = this.eval(e.l, locals);
    if (e.op === '&&') return truthy(l) && truthy(this.eval(e.r, locals));
    if (e.op === '||') return truthy(l) || truthy(this.eval(e.r, locals));
    if (e.op === '??') return l === null || l === undefined ? this.eval(e.r, locals) : l;
    const r = this.eval(e.r, locals);
    if (l instanceof Ref || r instanceof Ref) throw new Error(`${this.file.path}: ${show(e)} depends on a deployment-time value`);
    switch (e.op) {
      case '==':
        return JSON.stringify(l) === JSON.stringify(r);
      case '!=':
        return JSON.stringify(l) !== JSON.stringify(r);
      case '=~':
        return String(l).toLowerCase() === String(r).toLowerCase();
      case '!~':
        return String(l).toLowerCase() !== String(r).toLowerCase();
      case '<':
        return (l as number) < (r as number);
      case '<=':
        return (l as number) <= (r as number);
      case '>':
        return (l as number) > (r as number);
      case '>=':
        return (l as number) >= (r as number);
      case '+':
        return (l as number) + (r as number);
      case '-':
        return (l as number) - (r as number);
      case '*':
        return (l as number) * (r as number);
      case '/':
        return Math.trunc((l as number) / (r as number));
      case '%':
        return (l as number) % (r as number);
      default:
        throw new Error(`${this.file.path}: operator ${e.op}`);
    }
  }

  private apply(fn: unknown, args: unknown[]): unknown {
    if (!isLambda(fn)) throw new Error(`${this.file.path}: expected a lambda`);
    const l = new Map(fn.locals);
    fn.lambda.params.forEach((p, i) => l.set(p, args[i]));
    return this.eval(fn.lambda.body, l);
  }

  private call(name: string, a: unknown[]): unknown {
    const str = (v: unknown, what: string): string => {
      if (typeof v !== 'string') throw new Error(`${this.file.path}: ${name}() needs a string ${what}, got ${stringify(v)}`);
      return v;
    };
    const arr = (v: unknown): unknown[] => {
      if (!Array.isArray(v)) throw new Error(`${this.file.path}: ${name}() needs an array, got ${stringify(v)}`);
      return v;
    };
    if (a.some((x) => x instanceof Ref) && !['string', 'guid', 'uniqueString', 'union', 'concat', 'empty', 'last', 'split'].includes(name)) {
      return new Ref(`${name}(${a.map(stringify).join(', ')})`);
    }
    switch (name) {
      case 'loadJsonContent': {
        const p = str(a[0], 'path');
        const override = this.opts.jsonFiles?.[p];
        if (override !== undefined) return structuredClone(override);
        return JSON.parse(readFileSync(resolve(dirname(this.file.path), p), 'utf8')) as unknown;
      }
      case 'map':
        return arr(a[0]).map((x, i) => this.apply(a[1], [x, i]));
      case 'filter':
        return arr(a[0]).filter((x, i) => truthy(this.apply(a[1], [x, i])));
      case 'join':
        return arr(a[0]).map((x) => stringify(x)).join(str(a[1], 'separator'));
      case 'concat':
        return a.every(Array.isArray) ? a.flatMap((x) => x as unknown[]) : a.map(stringify).join('');
      case 'replace':
        return str(a[0], 'input').split(str(a[1], 'old')).join(str(a[2], 'new'));
      case 'split':
        if (a[0] instanceof Ref) return new Ref(`split(${stringify(a[0])})`);
        return str(a[0], 'input').split(str(a[1], 'separator'));
      case 'toLower':
        return str(a[0], 'input').toLowerCase();
      case 'toUpper':
        return str(a[0], 'input').toUpperCase();
      case 'trim':
        return str(a[0], 'input').trim();
      case 'length':
        return typeof a[0] === 'string' ? a[0].length : Array.isArray(a[0]) ? a[0].length : Object.keys(a[0] as object).length;
      case 'empty':
        if (a[0] instanceof Ref) return false;
        return a[0] === null || a[0] === '' || (Array.isArray(a[0]) && a[0].length === 0) || (typeof a[0] === 'object' && a[0] !== null && Object.keys(a[0]).length === 0);
      case 'contains': {
        const [c, item] = a;
        if (typeof c === 'string') return c.includes(str(item, 'item'));
        if (Array.isArray(c)) return c.some((x) => JSON.stringify(x) === JSON.stringify(item));
        if (c && typeof c === 'object') return Object.keys(c).some((k) => k.toLowerCase() === String(item).toLowerCase());
        throw new Error(`${this.file.path}: contains() on ${stringify(c)}`);
      }
      case 'last':
        if (a[0] instanceof Ref) return new Ref(`last(${stringify(a[0])})`);
        return typeof a[0] === 'string' ? a[0].slice(-1) : arr(a[0])[arr(a[0]).length - 1];
      case 'first':
        return typeof a[0] === 'string' ? a[0].slice(0, 1) : arr(a[0])[0];
      case 'take':
        return typeof a[0] === 'string' ? a[0].slice(0, a[1] as number) : arr(a[0]).slice(0, a[1] as number);
      case 'union': {
        if (a.every(Array.isArray)) {
          const out: unknown[] = [];
          for (const x of a.flatMap((v) => v as unknown[])) if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
          return out;
        }
        if (a.some((x) => x instanceof Ref)) return new Ref(`union(${a.map(stringify).join(', ')})`);
        return Object.assign({}, ...(a as object[])) as unknown;
      }
      case 'string':
        if (a[0] instanceof Ref) return `${a[0].toString()}`;
        return typeof a[0] === 'string' ? a[0] : JSON.stringify(a[0]);
      case 'uniqueString':
        return createHash('sha256').update(a.map(stringify).join('|')).digest('hex').slice(0, 13);
      case 'guid': {
        const h = createHash('sha256').update(a.map(stringify).join('|')).digest('hex');
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
      }
      case 'subscriptionResourceId':
        return `/subscriptions/${this.opts.subscriptionId ?? '00000000-0000-0000-0000-000000000000'}/providers/${str(a[0], 'type')}/${a.slice(1).map(stringify).join('/')}`;
      case 'environment':
        return { name: this.opts.cloudName ?? 'AzureCloud' };
      case 'tenant':
        return { tenantId: this.opts.tenantId ?? '00000000-0000-0000-0000-0000000000aa' };
      case 'subscription':
        if (a.length > 0) return new Ref(`subscription(${stringify(a[0])})`);
        return { id: `/subscriptions/${this.opts.subscriptionId ?? '00000000-0000-0000-0000-000000000000'}`, subscriptionId: this.opts.subscriptionId ?? '00000000-0000-0000-0000-000000000000' };
      case 'resourceGroup':
        if (a.length > 0) return new Ref(`resourceGroup(${a.map(stringify).join(', ')})`);
        return { id: `/subscriptions/${this.opts.subscriptionId ?? '0'}/resourceGroups/${this.opts.resourceGroupName ?? 'rg'}`, name: this.opts.resourceGroupName ?? 'rg' };
      default:
        throw new Error(`${this.file.path}: the infra test does not know the Bicep function ${name}()`);
    }
  }
}

function truthy(v: unknown): boolean {
  if (v instanceof Ref) throw new Error(`a condition depends on a deployment-time value (${v.path})`);
  return v === true;
}

export function stringify(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Ref) return v.toString();
  return JSON.stringify(v);
}
