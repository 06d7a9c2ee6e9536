// The value expressions of a Telemetry `tagOverrides` UPSERT: the part of CEL (the language Istio's
// stats filter evaluates them in) that Istio's documentation and common recipes use, compiled once per
// snapshot and evaluated per request against its attributes (metric-attributes.ts). Supported:
// string, integer and boolean literals; attribute paths with `.field` and `['key']`; `+`; `==`, `!=`,
// `<`, `<=`, `>`, `>=` (numbers, or strings), `in`; `!`, `&&`, `||`; `cond ? a : b`; `string(x)`, `has(a.b)`, and the string methods
// `startsWith`, `endsWith`, `contains`. Anything else does not compile, with the reason, so
// validation can say where; an expression that fails at run time (a missing header, a type
// mismatch) yields `unknown`, as in Istio. An access-log `filter.expression` is the same language,
// its value `true` or not.

import { knownAttribute } from './metric-attributes.js';

/** What an expression can evaluate to; `undefined` is an evaluation error (no such attribute or key). */
export type Value = string | number | boolean | ReadonlyMap<string, string> | { readonly [k: string]: Value | undefined } | undefined;

/** Resolves a top-level attribute (`request`, `upstream_peer`, …) for one request or connection. */
export type Attributes = (root: string) => Value;

export interface CompiledExpression {
  readonly text: string;
  /** The value as a label value, or undefined when the expression fails for this request. */
  evaluate(attributes: Attributes): string | undefined;
}

/** A failure is either not CEL at all (`syntax`: Envoy refuses it too), or CEL that meshgate does not evaluate. */
export type CompileResult = { readonly ok: true; readonly expression: CompiledExpression } | { readonly ok: false; readonly reason: string; readonly syntax: boolean };

/**
 * Why a text is not CEL at all, whatever meshgate evaluates: empty, a quote or bracket left open or
 * closed twice, a character CEL has no use for, or an operator with nothing after it. Checked apart
 * from the parser, which also refuses valid CEL it does not evaluate (`1.5`, `{'a': 1}`, `size(x)`).
 */
export function celSyntaxProblem(text: string): string | undefined {
  if (text.trim() === '') return 'the expression is empty';
  const open: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) return `the string opened at ${i + 1} is not closed`;
      i = j;
    } else if (c === '(' || c === '[' || c === '{') open.push(c);
    else if (c in pairs) {
      if (open.pop() !== pairs[c]) return `unbalanced '${c}' at ${i + 1}`;
    } else if (!/[\w\s.,:?!=<>&|+\-*/%]/.test(c)) return `unexpected character at ${i + 1}: '${c}'`;
  }
  if (open.length > 0) return `'${open[open.length - 1]}' is not closed`;
  if (/(?:&&|\|\||==|!=|<=|>=|[<>+\-*/%!?:.,])\s*$/.test(text)) return 'the expression ends too early';
  if (/^\s*(?:&&|\|\||==|!=|<=|>=|[<>*/%?:.,])/.test(text)) return 'the expression starts with an operator';
  return undefined;
}

type Node =
  | { k: 'lit'; v: string | number | boolean }
  | { k: 'attr'; root: string }
  | { k: 'sel'; of: Node; field: string }
  | { k: 'idx'; of: Node; key: Node }
  | { k: 'call'; fn: 'string' | 'has'; arg: Node }
  | { k: 'method'; fn: 'startsWith' | 'endsWith' | 'contains'; of: Node; arg: Node }
  | { k: 'not'; of: Node }
  | { k: 'bin'; op: '+' | '==' | '!=' | '&&' | '||' | 'in' | Relation; a: Node; b: Node }
  | { k: 'cond'; c: Node; t: Node; f: Node };

type Relation = '<' | '<=' | '>' | '>=';
const RELATIONS: ReadonlySet<string> = new Set(['<', '<=', '>', '>=']);

const TOKEN = /\s*(?:(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|&&|\|\||[-+.!?:()[\],<>|*/%]))/y;

type Token = { t: 'num'; v: number } | { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string };

function tokenize(text: string): Token[] | string {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) return `unexpected character at ${at + 1}: '${text.slice(at).trimStart()[0]}'`;
    at = TOKEN.lastIndex;
    if (m[1] !== undefined) out.push({ t: 'num', v: Number(m[1]) });
    else if (m[2] !== undefined || m[3] !== undefined) out.push({ t: 'str', v: (m[2] ?? m[3]!).replace(/\\(.)/g, '$1') });
    else if (m[4] !== undefined) out.push({ t: 'id', v: m[4] });
    else out.push({ t: 'op', v: m[5]! });
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const n = this.expr();
    if (this.i < this.tokens.length) throw new Error(`unexpected '${this.tokens[this.i]!.v}'`);
    return n;
  }

  private peek(v: string): boolean {
    const t = this.tokens[this.i];
    return t !== undefined && t.t === 'op' && t.v === v;
  }

  private eat(v: string): void {
    if (!this.peek(v)) throw new Error(`expected '${v}'${this.tokens[this.i] ? ` before '${this.tokens[this.i]!.v}'` : ' at the end'}`);
    this.i++;
  }

  private expr(): Node {
    const c = this.or();
    if (!this.peek('?')) return c;
    this.i++;
    const t = this.expr();
    this.eat(':');
    return { k: 'cond', c, t, f: this.expr() };
  }

  private or(): Node {
    let a = this.and();
    while (this.peek('||')) {
      this.i++;
      a = { k: 'bin', op: '||', a, b: this.and() };
    }
    return a;
  }

  private and(): Node {
    let a = this.eq();
    while (this.peek('&&')) {
      this.i++;
      a = { k: 'bin', op: '&&', a, b: this.eq() };
    }
    return a;
  }

  private eq(): Node {
    const a = this.add();
    const t = this.tokens[this.i];
    if (t?.t === 'op' && (t.v === '==' || t.v === '!=' || RELATIONS.has(t.v))) {
      this.i++;
      return { k: 'bin', op: t.v as '==' | '!=' | Relation, a, b: this.add() };
    }
    if (t?.t === 'id' && t.v === 'in') {
      this.i++;
      return { k: 'bin', op: 'in', a, b: this.add() };
    }
    if (t?.t === 'op' && /^[|*/%-]$/.test(t.v)) throw new Error(`operator '${t.v}' is not supported`);
    return a;
  }

  private add(): Node {
    let a = this.unary();
    while (this.peek('+')) {
      this.i++;
      a = { k: 'bin', op: '+', a, b: this.unary() };
    }
    return a;
  }

  private unary(): Node {
    if (this.peek('!')) {
      this.i++;
      return { k: 'not', of: this.unary() };
    }
    return this.postfix();
  }

  private postfix(): Node {
    let n = this.primary();
    for (;;) {
      if (this.peek('.')) {
        this.i++;
        const t = this.tokens[this.i++];
        if (t?.t !== 'id') throw new Error('expected a field name after \'.\'');
        if (this.peek('(')) {
          if (t.v !== 'startsWith' && t.v !== 'endsWith' && t.v !== 'contains') throw new Error(`function '${t.v}' is not supported`);
          this.i++;
          const arg = this.expr();
          this.eat(')');
          n = { k: 'method', fn: t.v, of: n, arg };
        } else n = { k: 'sel', of: n, field: t.v };
      } else if (this.peek('[')) {
        this.i++;
        const key = this.expr();
        this.eat(']');
        n = { k: 'idx', of: n, key };
      } else return n;
    }
  }

  private primary(): Node {
    const t = this.tokens[this.i++];
    if (!t) throw new Error('the expression ends too early');
    if (t.t === 'num') return { k: 'lit', v: t.v };
    if (t.t === 'str') return { k: 'lit', v: t.v };
    if (t.t === 'op') {
      if (t.v !== '(') throw new Error(`unexpected '${t.v}'`);
      const n = this.expr();
      this.eat(')');
      return n;
    }
    if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
    if (this.peek('(')) {
      if (t.v !== 'string' && t.v !== 'has') throw new Error(`function '${t.v}' is not supported`);
      this.i++;
      const arg = this.expr();
      this.eat(')');
      if (t.v === 'has' && arg.k !== 'sel') throw new Error('has() takes a field selection such as has(request.headers.x)');
      return { k: 'call', fn: t.v, arg };
    }
    return { k: 'attr', root: t.v };
  }
}

/** The attribute path a node names (`request.headers`), when it is one. */
function pathOf(n: Node): string[] | undefined {
  if (n.k === 'attr') return [n.root];
  if (n.k === 'sel') {
    const p = pathOf(n.of);
    return p && [...p, n.field];
  }
  if (n.k === 'idx') return pathOf(n.of) && [...pathOf(n.of)!, '[]'];
  return undefined;
}

/** Every attribute the expression reads must be one meshgate provides. */
function checkAttributes(n: Node): string | undefined {
  switch (n.k) {
    case 'lit':
      return undefined;
    case 'attr':
    case 'sel':
    case 'idx': {
      const p = pathOf(n);
      if (p) {
        const known = knownAttribute(p);
        if (known !== true) return known;
      }
      return n.k === 'idx' ? checkAttributes(n.key) : undefined;
    }
    case 'call':
    case 'not':
      return checkAttributes(n.k === 'call' ? n.arg : n.of);
    case 'method':
      return checkAttributes(n.of) ?? checkAttributes(n.arg);
    case 'bin':
      return checkAttributes(n.a) ?? checkAttributes(n.b);
    case 'cond':
      return checkAttributes(n.c) ?? checkAttributes(n.t) ?? checkAttributes(n.f);
  }
}

const cache = new Map<string, CompileResult>();

export function compileExpression(text: string): CompileResult {
  let r = cache.get(text);
  if (r) return r;
  const tokens = tokenize(text);
  const syntax = celSyntaxProblem(text);
  if (syntax !== undefined) r = { ok: false, reason: syntax, syntax: true };
  else if (typeof tokens === 'string') r = { ok: false, reason: tokens, syntax: false };
  else {
    try {
      const node = new Parser(tokens).parse();
      const bad = checkAttributes(node);
      r = bad ? { ok: false, reason: bad, syntax: false } : { ok: true, expression: { text, evaluate: (a) => print(evaluate(node, a)) } };
    } catch (err) {
      r = { ok: false, reason: (err as Error).message, syntax: false };
    }
  }
  // Bounded: expressions come from configuration, but a long-running process sees many snapshots.
  if (cache.size > 1000) cache.clear();
  cache.set(text, r);
  return r;
}

function print(v: Value): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function isMap(v: Value): v is ReadonlyMap<string, string> {
  return v instanceof Map;
}

function field(of: Value, name: string): Value {
  if (of === undefined || typeof of !== 'object') return undefined;
  // Header maps are looked up without regard to case, as Envoy's are.
  if (isMap(of)) return of.get(name.toLowerCase());
  return Object.prototype.hasOwnProperty.call(of, name) ? (of as Record<string, Value>)[name] : undefined;
}

function evaluate(n: Node, a: Attributes): Value {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'attr':
      return a(n.root);
    case 'sel':
      return field(evaluate(n.of, a), n.field);
    case 'idx': {
      const key = evaluate(n.key, a);
      return typeof key === 'string' ? field(evaluate(n.of, a), key) : undefined;
    }
    case 'call': {
      const v = evaluate(n.arg, a);
      if (n.fn === 'has') return v !== undefined;
      return print(v);
    }
    case 'method': {
      const s = evaluate(n.of, a);
      const arg = evaluate(n.arg, a);
      if (typeof s !== 'string' || typeof arg !== 'string') return undefined;
      return n.fn === 'startsWith' ? s.startsWith(arg) : n.fn === 'endsWith' ? s.endsWith(arg) : s.includes(arg);
    }
    case 'not': {
      const v = evaluate(n.of, a);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'cond': {
      const c = evaluate(n.c, a);
      return typeof c === 'boolean' ? evaluate(c ? n.t : n.f, a) : undefined;
    }
    case 'bin': {
      if (n.op === '&&' || n.op === '||') {
        // CEL's logic is commutative over errors: `error || true` is true, `error && false` false
        // (a TCP connection's `response.code >= 400 || xds.cluster_name == 'x'` still decides).
        const decisive = n.op === '||';
        const l = evaluate(n.a, a);
        if (l === decisive) return l;
        const r = evaluate(n.b, a);
        if (r === decisive) return r;
        return typeof l === 'boolean' && typeof r === 'boolean' ? !decisive : undefined;
      }
      const l = evaluate(n.a, a);
      const r = evaluate(n.b, a);
      if (l === undefined || r === undefined) return undefined;
      if (n.op === 'in') return typeof l === 'string' && isMap(r) ? r.has(l.toLowerCase()) : undefined;
      if (n.op === '+') {
        if (typeof l === 'string' && typeof r === 'string') return l + r;
        if (typeof l === 'number' && typeof r === 'number') return l + r;
        return undefined;
      }
      if (typeof l === 'object' || typeof r === 'object' || typeof l !== typeof r) return undefined;
      if (n.op === '==' || n.op === '!=') return n.op === '==' ? l === r : l !== r;
      if (typeof l === 'boolean' || typeof r === 'boolean') return undefined;
      return n.op === '<' ? l < r : n.op === '<=' ? l <= r : n.op === '>' ? l > r : l >= r;
    }
  }
}
