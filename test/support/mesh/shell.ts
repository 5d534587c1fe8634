/**
 * A small POSIX `sh -c` for probe scripts in the curl and busybox images: lists (`;`, newlines, `&&`, `||`),
 * pipelines, `!`, `if`/`until`/`while`/`for` (bounded), `{ …; }`, variables, `$?`, `$(…)`, quoting, redirections
 * (`>`, `>>`, `2>`, `2>&1`, `>&2`), and the commands echo, printf, sleep, true, false, exit, test/[, cat, grep,
 * seq, curl and nc. Anything else fails loudly.
 */
import { runCurl } from './curl.js';
import type { ClientEnv, ProgramResult } from './curl.js';
import { clientConnect, sidecarRunning } from './datapath.js';
import type { HttpRequest } from './apps.js';
import { UnmodelledFeatureError, unmodelled } from './world.js';

/** Upper bound on iterations of one loop: a probe script must terminate. */
export const MAX_LOOP_ITERATIONS = 1000;

type Node =
  | { t: 'simple'; words: string[]; redirs: Redir[] }
  | { t: 'pipe'; cmds: Node[]; neg: boolean }
  | { t: 'and' | 'or' | 'seq'; a: Node; b: Node }
  | { t: 'loop'; until: boolean; cond: Node; body: Node }
  | { t: 'for'; name: string; words: string[]; body: Node }
  | { t: 'if'; cond: Node; then: Node; else?: Node }
  | { t: 'group'; body: Node }
  | { t: 'empty' };

interface Redir { fd: 1 | 2; op: '>' | '>>' | '>&'; target: string }

interface Sink { out(text: string): void; err(text: string): void }

class ExitSignal { constructor(readonly code: number) {} }

// ---------------------------------------------------------------------------------------------------------------
// Lexer

type Tok = { k: 'word'; v: string } | { k: 'op'; v: string };

function lex(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const isSpace = (c: string): boolean => c === ' ' || c === '\t';
  while (i < src.length) {
    const c = src[i]!;
    if (isSpace(c)) { i++; continue; }
    if (c === '\\' && src[i + 1] === '\n') { i += 2; continue; }
    if (c === '#') { while (i < src.length && src[i] !== '\n') i++; continue; }
    if (c === '\n') { toks.push({ k: 'op', v: ';' }); i++; continue; }
    const three = src.slice(i, i + 4);
    if (three === '2>&1') { toks.push({ k: 'op', v: '2>&1' }); i += 4; continue; }
    const two = src.slice(i, i + 2);
    if (['&&', '||', '>>', '2>', '>&'].includes(two)) {
      if (two === '2>' && i > 0 && !isSpace(src[i - 1]!) && !';|&'.includes(src[i - 1]!)) { /* part of a word */ } else {
        if (two === '>&' && src[i + 2] === '2') { toks.push({ k: 'op', v: '>&2' }); i += 3; continue; }
        if (two === '>&' && src[i + 2] === '1') { toks.push({ k: 'op', v: '>&1' }); i += 3; continue; }
        if (two === '2>' && src[i + 2] === '>') { toks.push({ k: 'op', v: '2>>' }); i += 3; continue; }
        toks.push({ k: 'op', v: two }); i += 2; continue;
      }
    }
    if (';|()<>&'.includes(c)) {
      if (c === '&') unmodelled('background jobs (&) in sh');
      if (c === '<') unmodelled('input redirection (<) in sh');
      toks.push({ k: 'op', v: c }); i++; continue;
    }
    let w = '';
    while (i < src.length) {
      const d = src[i]!;
      if (isSpace(d) || d === '\n' || ';|&<>()'.includes(d)) break;
      if (d === "'") {
        const j = src.indexOf("'", i + 1);
        if (j < 0) throw new SyntaxError('unterminated quoted string');
        w += src.slice(i, j + 1); i = j + 1; continue;
      }
      if (d === '"') {
        let j = i + 1;
        while (j < src.length && src[j] !== '"') {
          if (src[j] === '\\') j++;
          else if (src[j] === '$' && src[j + 1] === '(') j = skipParens(src, j + 1) - 1;
          j++;
        }
        if (j >= src.length) throw new SyntaxError('unterminated quoted string');
        w += src.slice(i, j + 1); i = j + 1; continue;
      }
      if (d === '\\') { w += src.slice(i, i + 2); i += 2; continue; }
      if (d === '$' && src[i + 1] === '(') { const j = skipParens(src, i + 1); w += src.slice(i, j); i = j; continue; }
      if (d === '`') unmodelled('backquote command substitution in sh (use $(…))');
      w += d; i++;
    }
    toks.push({ k: 'word', v: w });
  }
  return toks;
}

/** Index just after the parenthesis matching the one at `open`. */
function skipParens(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (c === "'") { i = src.indexOf("'", i + 1); if (i < 0) break; continue; }
    if (c === '"') { i++; while (i < src.length && src[i] !== '"') { if (src[i] === '\\') i++; i++; } continue; }
    if (c === '(') depth++;
    if (c === ')') { depth--; if (depth === 0) return i + 1; }
  }
  throw new SyntaxError('unterminated $(');
}

// ---------------------------------------------------------------------------------------------------------------
// Parser

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}
  private peek(): Tok | undefined { return this.toks[this.i]; }
  private isWord(v: string): boolean { const t = this.peek(); return t?.k === 'word' && t.v === v; }
  private isOp(v: string): boolean { const t = this.peek(); return t?.k === 'op' && t.v === v; }
  private expectWord(v: string): void {
    if (!this.isWord(v)) throw new SyntaxError(`syntax error: expected "${v}"`);
    this.i++;
  }
  private skipSeps(): void { while (this.isOp(';')) this.i++; }

  parseProgram(): Node {
    const n = this.list(new Set());
    if (this.i < this.toks.length) throw new SyntaxError(`syntax error: unexpected "${this.peek()!.v}"`);
    return n;
  }

  private list(stop: Set<string>): Node {
    this.skipSeps();
    let node: Node = { t: 'empty' };
    while (this.i < this.toks.length) {
      const t = this.peek()!;
      if (t.k === 'word' && stop.has(t.v)) break;
      if (t.k === 'op' && t.v === ')') break;
      const item = this.andOr();
      node = node.t === 'empty' ? item : { t: 'seq', a: node, b: item };
      if (this.isOp(';')) this.skipSeps(); else break;
    }
    return node;
  }

  private andOr(): Node {
    let node = this.pipeline();
    for (;;) {
      if (this.isOp('&&')) { this.i++; this.skipSeps(); node = { t: 'and', a: node, b: this.pipeline() }; } else if (this.isOp('||')) { this.i++; this.skipSeps(); node = { t: 'or', a: node, b: this.pipeline() }; } else return node;
    }
  }

  private pipeline(): Node {
    let neg = false;
    if (this.isWord('!')) { neg = true; this.i++; }
    const cmds = [this.command()];
    while (this.isOp('|')) { this.i++; this.skipSeps(); cmds.push(this.command()); }
    return cmds.length === 1 && !neg ? cmds[0]! : { t: 'pipe', cmds, neg };
  }

  private command(): Node {
    if (this.isWord('until') || this.isWord('while')) {
      const until = this.peek()!.v === 'until';
      this.i++;
      const cond = this.list(new Set(['do']));
      this.expectWord('do');
      const body = this.list(new Set(['done']));
      this.expectWord('done');
      return { t: 'loop', until, cond, body };
    }
    if (this.isWord('for')) {
      this.i++;
      const name = this.peek()?.v ?? '';
      this.i++;
      const words: string[] = [];
      if (this.isWord('in')) {
        this.i++;
        while (this.peek()?.k === 'word') words.push(this.toks[this.i++]!.v);
      } else unmodelled('for loops without an "in" list');
      this.skipSeps();
      this.expectWord('do');
      const body = this.list(new Set(['done']));
      this.expectWord('done');
      return { t: 'for', name, words, body };
    }
    if (this.isWord('if')) {
      this.i++;
      return this.ifRest();
    }
    if (this.isWord('{')) {
      this.i++;
      const body = this.list(new Set(['}']));
      this.expectWord('}');
      return { t: 'group', body };
    }
    if (this.isOp('(')) {
      this.i++;
      const body = this.list(new Set());
      if (!this.isOp(')')) throw new SyntaxError('syntax error: expected ")"');
      this.i++;
      return { t: 'group', body };
    }
    const words: string[] = [];
    const redirs: Redir[] = [];
    for (;;) {
      const t = this.peek();
      if (!t) break;
      if (t.k === 'word') { words.push(t.v); this.i++; continue; }
      if (t.v === '2>&1') { redirs.push({ fd: 2, op: '>&', target: '1' }); this.i++; continue; }
      if (t.v === '>&2') { redirs.push({ fd: 1, op: '>&', target: '2' }); this.i++; continue; }
      if (t.v === '>&1') { redirs.push({ fd: 1, op: '>&', target: '1' }); this.i++; continue; }
      if (['>', '>>', '2>', '2>>'].includes(t.v)) {
        this.i++;
        const target = this.peek();
        if (target?.k !== 'word') throw new SyntaxError('syntax error: redirection without a file');
        this.i++;
        redirs.push({ fd: t.v.startsWith('2') ? 2 : 1, op: t.v.endsWith('>>') ? '>>' : '>', target: target.v });
        continue;
      }
      break;
    }
    if (words.length === 0 && redirs.length === 0) throw new SyntaxError(`syntax error: unexpected "${this.peek()?.v ?? 'end of file'}"`);
    return { t: 'simple', words, redirs };
  }

  private ifRest(): Node {
    const cond = this.list(new Set(['then']));
    this.expectWord('then');
    const then = this.list(new Set(['else', 'elif', 'fi']));
    if (this.isWord('elif')) { this.i++; return { t: 'if', cond, then, else: this.ifRest() }; }
    let otherwise: Node | undefined;
    if (this.isWord('else')) { this.i++; otherwise = this.list(new Set(['fi'])); }
    this.expectWord('fi');
    return { t: 'if', cond, then, else: otherwise };
  }
}

/** Parses a script; throws SyntaxError with a message like sh's. */
export function parseScript(src: string): unknown {
  return new Parser(lex(src)).parseProgram();
}

// ---------------------------------------------------------------------------------------------------------------
// Interpreter

/** A shell session in a pod. */
export class Shell {
  private vars = new Map<string, string>();
  private status = 0;
  readonly files: Map<string, string>;

  constructor(private readonly env: ClientEnv, private readonly signal?: AbortSignal, vars: Record<string, string> = {}) {
    this.files = env.files ?? new Map();
    for (const [k, v] of Object.entries(vars)) this.vars.set(k, v);
  }

  /** Runs a script; output goes to `sink` as it is produced. Returns the exit status. */
  async run(script: string, sink: Sink): Promise<number> {
    let ast: Node;
    try {
      ast = new Parser(lex(script)).parseProgram();
    } catch (e) {
      if (e instanceof SyntaxError) { sink.err(`sh: ${e.message}\n`); return 2; }
      throw e;
    }
    try {
      return await this.exec(ast, '', sink);
    } catch (e) {
      if (e instanceof ExitSignal) return e.code;
      throw e;
    }
  }

  /** Runs one program (argv) as the container's command, without a shell. */
  async runArgv(argv: string[], sink: Sink): Promise<number> {
    try {
      return await this.command(argv, '', sink);
    } catch (e) {
      if (e instanceof ExitSignal) return e.code;
      throw e;
    }
  }

  private async exec(n: Node, stdin: string, sink: Sink): Promise<number> {
    this.signal?.throwIfAborted();
    switch (n.t) {
      case 'empty': return this.status;
      case 'seq': await this.exec(n.a, stdin, sink); return this.exec(n.b, stdin, sink);
      case 'and': return (await this.exec(n.a, stdin, sink)) === 0 ? this.exec(n.b, stdin, sink) : this.status;
      case 'or': return (await this.exec(n.a, stdin, sink)) !== 0 ? this.exec(n.b, stdin, sink) : this.status;
      case 'group': return this.exec(n.body, stdin, sink);
      case 'if': {
        const c = await this.exec(n.cond, stdin, sink);
        if (c === 0) return this.exec(n.then, stdin, sink);
        return n.else ? this.exec(n.else, stdin, sink) : this.set(0);
      }
      case 'loop': {
        let last = 0;
        for (let k = 0; ; k++) {
          if (k >= MAX_LOOP_ITERATIONS) unmodelled(`a shell loop running more than ${MAX_LOOP_ITERATIONS} iterations`);
          const c = await this.exec(n.cond, stdin, sink);
          if (n.until ? c === 0 : c !== 0) break;
          last = await this.exec(n.body, stdin, sink);
        }
        return this.set(last);
      }
      case 'for': {
        const items: string[] = [];
        for (const w of n.words) items.push(...(await this.expand(w)));
        if (items.length > MAX_LOOP_ITERATIONS) unmodelled(`a shell loop running more than ${MAX_LOOP_ITERATIONS} iterations`);
        let last = 0;
        for (const it of items) { this.vars.set(n.name, it); last = await this.exec(n.body, stdin, sink); }
        return this.set(last);
      }
      case 'pipe': {
        let input = stdin;
        let code = 0;
        for (let k = 0; k < n.cmds.length; k++) {
          const lastStage = k === n.cmds.length - 1;
          let captured = '';
          const stageSink: Sink = lastStage ? sink : { out: (t) => { captured += t; }, err: sink.err };
          code = await this.exec(n.cmds[k]!, input, stageSink);
          input = captured;
        }
        return this.set(n.neg ? (code === 0 ? 1 : 0) : code);
      }
      case 'simple': {
        const argv: string[] = [];
        for (const w of n.words) argv.push(...(await this.expand(w)));
        let out = sink.out;
        let err = sink.err;
        for (const r of n.redirs) {
          if (r.op === '>&') {
            if (r.fd === 2 && r.target === '1') err = out;
            else if (r.fd === 1 && r.target === '2') out = err;
            continue;
          }
          const file = (await this.expand(r.target)).join(' ');
          const write = file === '/dev/null' ? () => undefined : (t: string) => { this.files.set(file, (this.files.get(file) ?? '') + t); };
          if (r.op === '>' && file !== '/dev/null') this.files.set(file, '');
          if (r.fd === 1) out = write; else err = write;
        }
        if (argv.length === 0) return this.set(0);
        const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(n.words[0]!);
        if (assignment && argv.length === 1) {
          this.vars.set(assignment[1]!, argv[0]!.slice(assignment[1]!.length + 1));
          return this.set(0);
        }
        return this.set(await this.command(argv, stdin, { out, err }));
      }
    }
  }

  private set(code: number): number {
    this.status = code;
    return code;
  }

  /** Expands a raw word: quotes, variables, `$?`, `$(…)`, with field splitting of unquoted expansions. */
  private async expand(raw: string): Promise<string[]> {
    const fields: string[] = [];
    let cur = '';
    let hasQuoted = false;
    let i = 0;
    const substitute = async (j: number): Promise<[string, number]> => {
      if (raw.startsWith('((', j + 1)) {
        const end = raw.indexOf('))', j + 3);
        if (end < 0) throw new SyntaxError('unterminated $((');
        return [String(arithmetic(raw.slice(j + 3, end), this.vars)), end + 2];
      }
      if (raw[j + 1] === '(') {
        const end = skipParens(raw, j + 1);
        const script = raw.slice(j + 2, end - 1);
        let captured = '';
        const sub = new Parser(lex(script)).parseProgram();
        await this.exec(sub, '', { out: (t) => { captured += t; }, err: () => undefined });
        return [captured.replace(/\n+$/, ''), end];
      }
      if (raw[j + 1] === '?') return [String(this.status), j + 2];
      if (raw[j + 1] === '{') {
        const end = raw.indexOf('}', j);
        const name = raw.slice(j + 2, end);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) unmodelled(`parameter expansion \${${name}} in sh`);
        return [this.vars.get(name) ?? '', end + 1];
      }
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(raw.slice(j + 1));
      if (!m) return ['$', j + 1];
      return [this.vars.get(m[0]) ?? '', j + 1 + m[0].length];
    };
    while (i < raw.length) {
      const c = raw[i]!;
      if (c === "'") { const j = raw.indexOf("'", i + 1); cur += raw.slice(i + 1, j); hasQuoted = true; i = j + 1; continue; }
      if (c === '"') {
        hasQuoted = true;
        i++;
        while (i < raw.length && raw[i] !== '"') {
          if (raw[i] === '\\' && '"\\$`\n'.includes(raw[i + 1] ?? '')) { cur += raw[i + 1]; i += 2; continue; }
          if (raw[i] === '$') { const [v, j] = await substitute(i); cur += v; i = j; continue; }
          cur += raw[i]; i++;
        }
        i++;
        continue;
      }
      if (c === '\\') { cur += raw[i + 1] ?? ''; i += 2; continue; }
      if (c === '$') {
        const [v, j] = await substitute(i);
        const parts = v.split(/[ \t\n]+/);
        for (let k = 0; k < parts.length; k++) {
          if (k > 0) { if (cur !== '' || hasQuoted) fields.push(cur); cur = ''; hasQuoted = false; }
          cur += parts[k];
        }
        i = j;
        continue;
      }
      if (c === '*' || c === '?') {
        if (raw.length > 1 || c === '*') unmodelled(`filename globbing (${raw}) in sh; quote the word`);
      }
      cur += c; i++;
    }
    if (cur !== '' || hasQuoted) fields.push(cur);
    return fields;
  }

  private async command(argv: string[], stdin: string, sink: Sink): Promise<number> {
    const [name, ...args] = argv as [string, ...string[]];
    const cmd = name.replace(/^\/(usr\/)?(local\/)?s?bin\//, '');
    switch (cmd) {
      case 'true': case ':': return 0;
      case 'false': return 1;
      case 'exit': throw new ExitSignal(args[0] !== undefined ? Number(args[0]) & 255 : this.status);
      case 'echo': {
        let a = args;
        let newline = true;
        if (a[0] === '-n') { newline = false; a = a.slice(1); }
        sink.out(a.join(' ') + (newline ? '\n' : ''));
        return 0;
      }
      case 'printf': sink.out(printf(args[0] ?? '', args.slice(1))); return 0;
      case 'sleep': {
        const secs = Number(args[0]?.replace(/s$/, ''));
        if (args[0] === 'infinity') return this.sleep(Infinity);
        if (!Number.isFinite(secs)) { sink.err(`sleep: invalid number '${args[0] ?? ''}'\n`); return 1; }
        return this.sleep(secs * 1000);
      }
      case 'test': return test(args);
      case '[': {
        if (args[args.length - 1] !== ']') { sink.err('sh: missing ]\n'); return 2; }
        return test(args.slice(0, -1));
      }
      case 'cat': {
        if (args.length === 0) { sink.out(stdin); return 0; }
        let code = 0;
        for (const f of args) {
          const content = this.files.get(f);
          if (content === undefined) { sink.err(`cat: can't open '${f}': No such file or directory\n`); code = 1; } else sink.out(content);
        }
        return code;
      }
      case 'grep': return grep(args, stdin, sink);
      case 'seq': {
        const nums = args.map(Number);
        const [from, to] = nums.length === 1 ? [1, nums[0]!] : [nums[0]!, nums[1]!];
        if (to - from > MAX_LOOP_ITERATIONS) unmodelled(`seq of more than ${MAX_LOOP_ITERATIONS} numbers`);
        const out: string[] = [];
        for (let k = from; k <= to; k++) out.push(String(k));
        sink.out(out.length > 0 ? `${out.join('\n')}\n` : '');
        return 0;
      }
      case 'curl': return this.program(await runCurl({ ...this.env, files: this.files, stdin }, args), sink);
      case 'nc': return this.program(await netcat({ ...this.env, stdin }, args), sink);
      case 'sh': {
        if (args[0] === '-c' && args[1] !== undefined) return new Shell({ ...this.env, files: this.files }, this.signal, Object.fromEntries(this.vars)).run(args[1], sink);
        return unmodelled(`sh ${args.join(' ')}`);
      }
      default:
        return unmodelled(`command "${name}" (the model's sh knows echo, printf, sleep, true, false, exit, test, [, cat, grep, seq, curl, nc)`);
    }
  }

  private program(r: ProgramResult, sink: Sink): number {
    if (r.stdout) sink.out(r.stdout);
    if (r.stderr) sink.err(r.stderr);
    return r.exitCode;
  }

  private sleep(ms: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const signal = this.signal;
      if (signal?.aborted) { reject(signal.reason); return; }
      const timer = Number.isFinite(ms) ? setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(0); }, ms) : undefined;
      const onAbort = (): void => { if (timer) clearTimeout(timer); reject(signal!.reason); };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!signal && !timer) resolve(0);
    });
  }
}

/** `$(( … ))`: integer + - * / % and parentheses over numbers and variables. */
function arithmetic(expr: string, vars: Map<string, string>): number {
  const toks = expr.match(/\d+|[A-Za-z_][A-Za-z0-9_]*|[-+*/%()]|\S/g) ?? [];
  let i = 0;
  const atom = (): number => {
    const t = toks[i++];
    if (t === '(') { const v = sum(); i++; return v; }
    if (t === '-') return -atom();
    if (t !== undefined && /^\d+$/.test(t)) return Number(t);
    if (t !== undefined && /^[A-Za-z_]/.test(t)) return Number(vars.get(t) ?? 0) || 0;
    return unmodelled(`arithmetic expression $((${expr}))`);
  };
  const product = (): number => {
    let v = atom();
    while (toks[i] === '*' || toks[i] === '/' || toks[i] === '%') {
      const op = toks[i++];
      const r = atom();
      v = op === '*' ? v * r : op === '/' ? Math.trunc(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (toks[i] === '+' || toks[i] === '-') { const op = toks[i++]; const r = product(); v = op === '+' ? v + r : v - r; }
    return v;
  };
  const v = sum();
  if (i < toks.length) unmodelled(`arithmetic expression $((${expr}))`);
  return v;
}

function printf(format: string, args: string[]): string {
  let out = '';
  let argi = 0;
  const escapes = (s: string): string => s.replace(/\\(0?[0-7]{1,3}|[\\abfnrtv"'])/g, (_m, e: string) => {
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ '\\': '\\', a: '\u0007', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '"': '"', "'": "'" } as Record<string, string>)[e]!;
  });
  do {
    out += escapes(format).replace(/%([-0-9.]*)([sdbc%])/g, (_m, _w: string, conv: string) => {
      if (conv === '%') return '%';
      const a = args[argi++] ?? '';
      if (conv === 'd') return String(Math.trunc(Number(a) || 0));
      if (conv === 'b') return escapes(a);
      if (conv === 'c') return a.slice(0, 1);
      return a;
    });
  } while (argi < args.length && /%[-0-9.]*[sdbc]/.test(format));
  return out;
}

function test(args: string[]): number {
  const t = (): boolean => {
    if (args.length === 0) return false;
    if (args[0] === '!') return test(args.slice(1)) !== 0;
    if (args.length === 1) return args[0] !== '';
    if (args.length === 2) {
      if (args[0] === '-z') return args[1] === '';
      if (args[0] === '-n') return args[1] !== '';
      return unmodelled(`test ${args.join(' ')}`);
    }
    if (args.length === 3) {
      const [a, op, b] = args as [string, string, string];
      const na = Number(a);
      const nb = Number(b);
      switch (op) {
        case '=': case '==': return a === b;
        case '!=': return a !== b;
        case '-eq': return na === nb;
        case '-ne': return na !== nb;
        case '-lt': return na < nb;
        case '-le': return na <= nb;
        case '-gt': return na > nb;
        case '-ge': return na >= nb;
      }
    }
    return unmodelled(`test ${args.join(' ')}`);
  };
  return t() ? 0 : 1;
}

function grep(args: string[], stdin: string, sink: Sink): number {
  let quiet = false;
  let fixed = false;
  let ignoreCase = false;
  let invert = false;
  let count = false;
  const rest: string[] = [];
  for (const a of args) {
    if (/^-[qFEivc]+$/.test(a)) {
      for (const f of a.slice(1)) {
        if (f === 'q') quiet = true; else if (f === 'F') fixed = true; else if (f === 'i') ignoreCase = true; else if (f === 'v') invert = true; else if (f === 'c') count = true;
      }
    } else if (a.startsWith('-') && rest.length === 0) unmodelled(`grep option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) unmodelled('grep with file arguments');
  const pattern = rest[0]!;
  const re = new RegExp(fixed ? pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : pattern.replace(/\\([(){}|+?])/g, '$1'), ignoreCase ? 'i' : '');
  const lines = stdin.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const matched = lines.filter((l) => re.test(l) !== invert);
  if (count) sink.out(`${matched.length}\n`);
  else if (!quiet) for (const l of matched) sink.out(`${l}\n`);
  return matched.length > 0 ? 0 : 1;
}

/**
 * busybox `nc [-w secs] [-z] host port`: sends standard input, prints what the destination answers. `-z` only
 * connects — and, as in a real mesh, a local sidecar accepting the connection makes it succeed; a TCP check that
 * must reach the destination sends bytes and checks the answer (e.g. postgres answers an SSLRequest with `N`).
 */
export async function netcat(env: ClientEnv, args: string[]): Promise<ProgramResult> {
  let zero = false;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-w' || a === '-W') { i++; continue; }
    if (/^-w\d+$/.test(a)) continue;
    if (a === '-z') { zero = true; continue; }
    if (a === '-v' || a === '-n') continue;
    if (a.startsWith('-')) unmodelled(`nc option ${a}`);
    rest.push(a);
  }
  const [host, portText] = rest;
  if (!host || !portText || !/^\d+$/.test(portText)) {
    return { stdout: '', stderr: 'BusyBox v1.36.1 multi-call binary.\n\nUsage: nc [OPTIONS] HOST PORT  - connect\n', exitCode: 1 };
  }
  const port = Number(portText);
  const data = env.stdin ?? '';
  if (zero && sidecarRunning(env.ctx, env.cluster, env.pod) && !['localhost', '127.0.0.1'].includes(host)) {
    // The sidecar's outbound listener accepts every captured connection itself.
    return { stdout: '', stderr: '', exitCode: 0 };
  }
  const http = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r?\n/.exec(data);
  let payload: { kind: 'tcp'; data: string } | { kind: 'http'; request: HttpRequest } = { kind: 'tcp', data };
  if (http) {
    const headers: Record<string, string> = {};
    for (const line of data.split(/\r?\n/).slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    payload = { kind: 'http', request: { method: http[1]!, path: http[2]!, authority: headers['host'] ?? host, headers } };
  }
  const outcome = await clientConnect(env.ctx, env.cluster, env.pod, host, port, { payload }, { stopSidecar: env.stopSidecar });
  if (!outcome.ok) {
    const f = outcome.failure;
    if (f.kind === 'resolve') return { stdout: '', stderr: `nc: bad address '${host}'\n`, exitCode: 1 };
    const reason = f.kind === 'refused' ? 'Connection refused' : f.kind === 'timeout' ? 'Connection timed out' : 'Connection reset by peer';
    if (f.kind === 'refused' || f.kind === 'timeout') return { stdout: '', stderr: `nc: can't connect to remote host: ${reason}\n`, exitCode: 1 };
    return { stdout: '', stderr: '', exitCode: 0 };
  }
  if (zero) return { stdout: '', stderr: '', exitCode: 0 };
  const reply = outcome.reply;
  if (reply.kind === 'tcp') return { stdout: reply.data, stderr: '', exitCode: 0 };
  if (reply.kind === 'http') {
    const r = reply.response;
    return { stdout: `HTTP/1.1 ${r.status}\r\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}content-length: ${Buffer.byteLength(r.body)}\r\n\r\n${r.body}`, stderr: '', exitCode: 0 };
  }
  return { stdout: '', stderr: '', exitCode: 0 };
}

export { UnmodelledFeatureError };
