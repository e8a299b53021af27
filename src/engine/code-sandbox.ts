/**
 * The `code:` step's sandbox: QuickJS compiled to WebAssembly (quickjs-emscripten, the
 * release "sync" build whose .wasm ships inside the npm package; nothing is downloaded).
 * Why this engine: docs/decisions/0001-code-step-sandbox.md.
 *
 * User code is the body of a function that sees `event`, `steps`, `config`, `user` and
 * `execution` (plain JSON, copied in as text) and returns a JSON value (copied out as
 * text). Inside there is no `process`, `require`, module loader, timers, network, file
 * system or host object: the only thing the host exposes is one function that receives
 * `console.log` lines as strings. One context is built per sandbox with its built-ins
 * frozen (PRELUDE), so calls cannot leave anything for each other; it is reused while calls
 * end normally and thrown away, with its whole wasm instance, after any limit is hit (an
 * out-of-memory or interrupted runtime is not trusted again). The CPU limit is an interrupt handler checked by the interpreter;
 * the memory limit is QuickJS's allocator limit; the stack is capped so deep recursion is
 * a RangeError-like InternalError, not a crash of the host.
 *
 * This module is loaded lazily (dynamic import) by the executor and the validator, only
 * when a workflow holds a code step.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSSyncVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core';
import { StepError } from '../errors.js';

export interface CodeLimits {
  /** CPU (wall time inside the interpreter) per call. Default 1000 ms. */
  cpuMs?: number;
  /** Memory the sandbox may grow by above QuickJS's 16 MiB base. Default 32 MiB. */
  memoryBytes?: number;
  /** Interpreter stack limit. Default 256 KiB (well under the host's own stack). */
  stackBytes?: number;
}

export interface CodeInput {
  event: unknown;
  steps: Record<string, unknown>;
  config: Record<string, unknown>;
  user?: unknown;
  execution?: unknown;
  /** Names in scope: inside `each` the item (`item` or its `as` name) and `index`; in onError steps `error`. */
  vars?: Record<string, unknown>;
}

export interface CodeResult {
  value: unknown;
  /** `console.log` (and warn/error/info) lines, in order, capped. */
  logs: string[];
}

/** A syntax error in a code step, with its 1-based line and column inside the code. */
export interface CodeSyntaxProblem {
  message: string;
  line: number;
  column: number;
}

export const CODE_DEFAULT_LIMITS = { cpuMs: 1000, memoryBytes: 32 * 1024 * 1024, stackBytes: 256 * 1024 } as const;
const MAX_LOG_LINES = 200;
const MAX_LOG_CHARS = 2000;
const MAX_OUTPUT_CHARS = 4 * 1024 * 1024;
const FILE_NAME = 'code.js';
/** Compiled code steps kept per realm (a project rarely has more). */
const MAX_COMPILED = 256;

/*
 * The wrapper puts everything before the user's code on line 1, so the code's line N is
 * line N of the script; columns on line 1 are shifted by PREFIX.length. Evaluating it gives
 * a function of the input JSON text; it is compiled once per code text and context.
 */
const PREFIX = '(function(__in){"use strict";var __i=JSON.parse(__in),__v=__i.vars||{};var __r=(function(event,steps,config,user,execution,vars,item,index,error){';
const SUFFIX = '\n}).call(undefined,__i.event,__i.steps,__i.config,__i.user,__i.execution,__v,__v.item,__v.index,__v.error);return __alloyOut(__r);})';

/**
 * Runs once per context, before any user code: console, the output check, then the realm is
 * frozen (every object reachable from globalThis, and the hidden intrinsics reachable from
 * sample functions and iterators: their prototypes and constructors), as SES's lockdown
 * does. User code can then store nothing anywhere another call could read it, so the
 * context is reused across calls (a fresh context per call cost about 1 ms).
 */
const PRELUDE = `(function(){
  var send = globalThis.__alloyLog; delete globalThis.__alloyLog;
  function fmt(v){ if (typeof v === 'string') return v; try { var s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); } }
  function log(){ var parts = []; for (var i = 0; i < arguments.length; i++) parts.push(fmt(arguments[i])); send(parts.join(' ')); }
  globalThis.console = { log: log, info: log, warn: log, error: log, debug: log };
  var stringify = JSON.stringify;
  globalThis.__alloyOut = function(value){
    if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') throw new TypeError('code steps are synchronous: return a value, not a Promise');
    return stringify(value === undefined ? null : value, function(k, v){
      var t = typeof v;
      if (t === 'function' || t === 'symbol' || t === 'bigint') throw new TypeError('the returned value holds a ' + t + (k ? ' at key "' + k + '"' : '') + '; return JSON (objects, arrays, strings, numbers, booleans, null)');
      if (t === 'number' && !isFinite(v)) throw new TypeError('the returned value holds ' + v + (k ? ' at key "' + k + '"' : '') + ', which JSON cannot hold');
      return v;
    });
  };
  var seen = new Set();
  function harden(o){
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || seen.has(o)) return;
    seen.add(o);
    var keys = Reflect.ownKeys(o);
    for (var i = 0; i < keys.length; i++) {
      var d = Object.getOwnPropertyDescriptor(o, keys[i]);
      if (!d) continue;
      if ('value' in d) harden(d.value); else { harden(d.get); harden(d.set); }
    }
    harden(Object.getPrototypeOf(o));
    Object.freeze(o);
  }
  var samples = [
    function*(){}, async function(){}, async function*(){}, (function*(){})(), (async function*(){})(),
    [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](),
    /x/[Symbol.matchAll](''), Object.getPrototypeOf(Int8Array), Promise.resolve(), new Error(''),
    (function(){ return arguments; })(), new WeakMap(), new WeakSet(), new ArrayBuffer(0), new DataView(new ArrayBuffer(0))
  ];
  for (var j = 0; j < samples.length; j++) harden(samples[j]);
  harden(globalThis);
})();`;

const PAGE = 64 * 1024;
/** The prebuilt module's INITIAL_MEMORY (16 MiB): a smaller memory fails to instantiate. */
const BASE_PAGES = 256;

/** The few WebAssembly APIs used here (the project compiles without the DOM lib). */
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: Promise<object> | undefined;

/** The QuickJS wasm, read from node_modules and compiled once per process. */
function compiledQuickJS(): Promise<object> {
  compiled ??= (async () => {
    const require = createRequire(import.meta.url);
    const bytes = await readFile(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm'));
    return Wasm.compile(bytes);
  })();
  return compiled;
}

/**
 * A QuickJS instance with its own linear memory, capped at `memoryBytes` above the base.
 * QuickJS's own `setMemoryLimit` does not bound the total under Emscripten (it counts 8
 * bytes per allocation: justjake/quickjs-emscripten#255, #271), so the hard cap is the
 * WebAssembly memory's maximum: when it cannot grow, malloc fails and QuickJS throws
 * "out of memory" inside the sandbox.
 */
async function newQuickJSInstance(memoryBytes: number): Promise<QuickJSWASMModule> {
  const variant = (await import('@jitl/quickjs-wasmfile-release-sync')).default as unknown as QuickJSSyncVariant;
  const wasmMemory = new Wasm.Memory({ initial: BASE_PAGES, maximum: BASE_PAGES + Math.ceil(memoryBytes / PAGE) });
  type Options = Parameters<typeof newVariant>[1];
  const options = { wasmModule: await compiledQuickJS(), wasmMemory } as unknown as Options;
  return newQuickJSWASMModuleFromVariant(newVariant(variant, options));
}

export class CodeSandbox {
  private quickjs: QuickJSWASMModule | undefined;
  private realm: Realm | undefined;
  private deadline = Infinity;
  private interrupted = false;
  private readonly limits: Required<CodeLimits>;

  constructor(limits: CodeLimits = {}) {
    this.limits = { ...CODE_DEFAULT_LIMITS, ...limits };
  }

  /** Instantiates QuickJS (again, after a call that broke it). */
  async ready(): Promise<this> {
    this.quickjs ??= await newQuickJSInstance(this.limits.memoryBytes);
    return this;
  }

  private instance(): QuickJSWASMModule {
    if (!this.quickjs) throw new Error('CodeSandbox: call ready() first');
    return this.quickjs;
  }

  /** The first syntax error of `code` (a function body), or undefined. Runs nothing. */
  checkSyntax(code: string): CodeSyntaxProblem | undefined {
    const rt = this.instance().newRuntime();
    try {
      rt.setMaxStackSize(this.limits.stackBytes);
      const ctx = rt.newContext();
      try {
        const r = ctx.evalCode(PREFIX + code + SUFFIX, FILE_NAME, { compileOnly: true });
        if (!r.error) {
          r.value.dispose();
          return undefined;
        }
        const err = dumpError(ctx, r.error);
        r.error.dispose();
        const at = positionOf(err);
        return { message: err.message, line: at?.line ?? 1, column: at?.column ?? 1 };
      } finally {
        ctx.dispose();
      }
    } finally {
      rt.dispose();
    }
  }

  /** Runs `code` with `input`; throws StepError (E_CODE_*) naming the line on failure. */
  async run(code: string, input: CodeInput, limits: Pick<CodeLimits, 'cpuMs'> = {}): Promise<CodeResult> {
    await this.ready();
    const lim = { ...this.limits, ...limits };
    this.interrupted = false;
    // Building the realm (once) is alloy's work, not the step's: it gets its own budget.
    this.deadline = Date.now() + 10_000;
    const realm = this.getRealm();
    const { ctx } = realm;
    this.deadline = Date.now() + lim.cpuMs;
    const logs: string[] = [];
    realm.logs = logs;
    let healthy = false;
    try {
      let fn = realm.compiled.get(code);
      if (!fn) {
        const r = ctx.evalCode(PREFIX + code + SUFFIX, FILE_NAME);
        if (r.error) {
          const err = dumpError(ctx, r.error);
          r.error.dispose();
          throw codeRuntimeError(err, this.interrupted, lim, code);
        }
        fn = r.value;
        if (realm.compiled.size >= MAX_COMPILED) {
          const [oldest, handle] = realm.compiled.entries().next().value as [string, QuickJSHandle];
          handle.dispose();
          realm.compiled.delete(oldest);
        }
        realm.compiled.set(code, fn);
      }
      const inputHandle = ctx.newString(JSON.stringify(input));
      const r = ctx.callFunction(fn, ctx.undefined, inputHandle);
      inputHandle.dispose();
      if (r.error) {
        const err = dumpError(ctx, r.error);
        r.error.dispose();
        throw codeRuntimeError(err, this.interrupted, lim, code);
      }
      const out = ctx.typeof(r.value) === 'string' ? ctx.getString(r.value) : 'null';
      r.value.dispose();
      if (out.length > MAX_OUTPUT_CHARS) {
        throw new StepError(`the code step returned ${out.length} characters of JSON (limit ${MAX_OUTPUT_CHARS})`, {
          code: 'E_CODE_OUTPUT',
          hint: 'Return less data: pick the fields later steps need.',
        });
      }
      healthy = true;
      return { value: JSON.parse(out) as unknown, logs };
    } catch (err) {
      if (err instanceof StepError) {
        // A user exception or a too-large output leaves the realm fine; limits and OOM do not.
        if (err.code === 'E_CODE_ERROR' || err.code === 'E_CODE_OUTPUT') healthy = true;
        (err as StepError & { logs?: string[] }).logs = logs;
        throw err;
      }
      if (err instanceof RangeError && /call stack/i.test(err.message)) {
        throw new StepError('the code step overflowed its stack', { code: 'E_CODE_STACK', hint: 'Look for unbounded recursion.' });
      }
      throw new StepError(`the code sandbox failed: ${(err as Error).message}`, { code: 'E_CODE_SANDBOX', cause: err });
    } finally {
      realm.logs = undefined;
      this.deadline = Infinity;
      if (!healthy) this.dropRuntime();
    }
  }

  private getRealm(): Realm {
    if (this.realm) return this.realm;
    const rt = this.instance().newRuntime();
    rt.setMaxStackSize(this.limits.stackBytes);
    // Checked by the interpreter every few thousand instructions; once past the deadline it
    // keeps answering true, so code that catches the interrupt is stopped again.
    rt.setInterruptHandler(() => {
      if (Date.now() > this.deadline) this.interrupted = true;
      return this.interrupted;
    });
    // No module loader: `import()` cannot resolve anything.
    const ctx = rt.newContext();
    const realm: Realm = { rt, ctx, compiled: new Map(), logs: undefined };
    const logFn = ctx.newFunction('log', (line: QuickJSHandle) => {
      const logs = realm.logs;
      if (!logs || logs.length > MAX_LOG_LINES) return;
      if (logs.length === MAX_LOG_LINES) {
        logs.push(`… more console output dropped (limit ${MAX_LOG_LINES} lines)`);
        return;
      }
      const text = ctx.typeof(line) === 'string' ? ctx.getString(line) : '';
      logs.push(text.length > MAX_LOG_CHARS ? `${text.slice(0, MAX_LOG_CHARS)}…` : text);
    });
    ctx.setProp(ctx.global, '__alloyLog', logFn);
    logFn.dispose();
    const prelude = ctx.evalCode(PRELUDE, 'prelude.js');
    if (prelude.error) {
      const err = dumpError(ctx, prelude.error);
      prelude.error.dispose();
      ctx.dispose();
      rt.dispose();
      throw new StepError(`the code sandbox failed to start: ${err.message}`, { code: 'E_CODE_SANDBOX' });
    }
    prelude.value.dispose();
    this.realm = realm;
    return realm;
  }

  dispose(): void {
    const realm = this.realm;
    this.realm = undefined;
    try {
      for (const h of realm?.compiled.values() ?? []) h.dispose();
      realm?.ctx.dispose();
      realm?.rt.dispose();
    } catch {
      // Dropped either way.
    }
    this.quickjs = undefined;
  }

  /**
   * Forgets the realm and its whole QuickJS instance: after an out-of-memory, an interrupt
   * or a host stack overflow, freeing the runtime can abort the wasm module (QuickJS asserts
   * that every object was freed), so the instance is left to the garbage collector and the
   * next call builds a new one.
   */
  private dropRuntime(): void {
    this.realm = undefined;
    this.quickjs = undefined;
  }
}

interface Realm {
  rt: QuickJSRuntime;
  ctx: QuickJSContext;
  /** Compiled wrappers by code text (each a function of the input JSON text). */
  compiled: Map<string, QuickJSHandle>;
  /** Where console lines of the current call go. */
  logs: string[] | undefined;
}

interface DumpedError {
  name: string;
  message: string;
  stack?: string;
}

function dumpError(ctx: QuickJSContext, handle: QuickJSHandle): DumpedError {
  let dumped: unknown;
  try {
    dumped = ctx.dump(handle);
  } catch {
    dumped = undefined;
  }
  if (dumped && typeof dumped === 'object') {
    const d = dumped as Record<string, unknown>;
    return { name: String(d.name ?? 'Error'), message: String(d.message ?? ''), stack: typeof d.stack === 'string' ? d.stack : undefined };
  }
  // `throw "text"` and other non-Error throws.
  return { name: 'Error', message: typeof dumped === 'string' ? dumped : JSON.stringify(dumped) ?? 'thrown value' };
}

/** The first `code.js:line:col` in a QuickJS stack, mapped from the wrapped script to the user's code. */
function positionOf(err: DumpedError): { line: number; column: number } | undefined {
  const m = /code\.js:(\d+)(?::(\d+))?/.exec(err.stack ?? '');
  if (!m) return undefined;
  const line = Number(m[1]);
  let column = m[2] ? Number(m[2]) : 1;
  if (line === 1) column = Math.max(1, column - PREFIX.length);
  return { line, column };
}

function codeRuntimeError(err: DumpedError, interrupted: boolean, lim: Required<CodeLimits>, code: string): StepError {
  const at = positionOf(err);
  const lines = code.split('\n').length;
  // The wrapper's own lines (after the code) are where output checks fail.
  const userAt = at && at.line <= lines ? at : undefined;
  const where = userAt ? ` (code line ${userAt.line}, column ${userAt.column})` : '';
  const details = userAt ? { line: userAt.line, column: userAt.column } : undefined;
  if (interrupted) {
    return new StepError(`the code step ran past its CPU limit of ${lim.cpuMs} ms${where}`, {
      code: 'E_CODE_TIMEOUT',
      hint: 'Look for an endless loop; the limit is per call.',
      details,
    });
  }
  if (/out of memory/i.test(err.message)) {
    return new StepError(`the code step ran out of memory (limit ${Math.round(lim.memoryBytes / 1024 / 1024)} MiB)${where}`, {
      code: 'E_CODE_MEMORY',
      hint: 'Build smaller values; the sandbox heap is capped.',
      details,
    });
  }
  if (/stack overflow/i.test(err.message)) {
    return new StepError(`the code step overflowed its stack${where}`, {
      code: 'E_CODE_STACK',
      hint: 'Look for unbounded recursion.',
      details,
    });
  }
  const codeLine = userAt ? code.split('\n')[userAt.line - 1]?.trim() : undefined;
  return new StepError(`${err.name}: ${err.message}${where}${codeLine ? `: ${codeLine}` : ''}`, {
    code: 'E_CODE_ERROR',
    hint: 'Fix the code step; its line is shown above.',
    details,
  });
}

let shared: Promise<CodeSandbox> | undefined;

/** One sandbox per process for running code steps, created on first use. */
export function sharedCodeSandbox(): Promise<CodeSandbox> {
  shared ??= new CodeSandbox().ready();
  return shared;
}

let checker: Promise<CodeSandbox> | undefined;

/**
 * The validator's own sandbox: it only compiles (never runs user code), so no limit can
 * drop its instance while a code step that ran out of memory drops the executor's.
 */
export function sharedSyntaxChecker(): Promise<CodeSandbox> {
  checker ??= new CodeSandbox().ready();
  return checker;
}
