/**
 * The code step's sandbox: what user code can read and return, and the escape corpus
 * (host objects, constructors, prototypes, limits). Every escape attempt must fail inside
 * the sandbox, leave the host untouched, and leave the sandbox usable for the next call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeSandbox } from '../../src/engine/code-sandbox.js';
import { StepError } from '../../src/errors.js';

let sandbox: CodeSandbox;
beforeAll(async () => {
  sandbox = await new CodeSandbox({ cpuMs: 200, memoryBytes: 8 * 1024 * 1024 }).ready();
});
afterAll(() => sandbox.dispose());

const input = { event: { id: 7, tags: ['a', 'b'] }, steps: { first: { output: { n: 2 } } }, config: { tag: 'vip' } };
const run = (code: string) => sandbox.run(code, input);
async function fails(code: string): Promise<StepError> {
  try {
    await run(code);
  } catch (err) {
    expect(err).toBeInstanceOf(StepError);
    return err as StepError;
  }
  throw new Error(`expected the code to fail: ${code}`);
}

describe('code sandbox', async () => {
  it('reads event, steps and config and returns JSON', async () => {
    const r = (await run('return { id: event.id, n: steps.first.output.n * 2, tags: event.tags.concat(config.tag) };'));
    expect(r.value).toEqual({ id: 7, n: 4, tags: ['a', 'b', 'vip'] });
  });

  it('collects console.log lines', async () => {
    const r = (await run('console.log("hello", { a: 1 }, 3); console.warn("w"); return null;'));
    expect(r.logs).toEqual(['hello {"a":1} 3', 'w']);
  });

  it('returns null for no return value', async () => {
    expect((await run('let x = 1;')).value).toBeNull();
  });

  it('reports a runtime error with its line and the line text', async () => {
    const err = (await fails('const a = 1;\nconst b = null;\nreturn b.field;'));
    expect(err.code).toBe('E_CODE_ERROR');
    expect(err.message).toMatch(/TypeError/);
    expect(err.message).toContain('code line 3');
    expect(err.message).toContain('return b.field;');
    expect(err.details).toMatchObject({ line: 3 });
  });

  it('reports syntax errors with line and column', async () => {
    expect(sandbox.checkSyntax('const a = 1;\nreturn a +;')).toMatchObject({ line: 2 });
    expect(sandbox.checkSyntax('return (;')).toMatchObject({ line: 1, column: expect.any(Number) });
    expect(sandbox.checkSyntax('return 1;')).toBeUndefined();
    const first = sandbox.checkSyntax('return (;')!;
    expect(first.column).toBeLessThan(12);
  });

  describe('escape corpus', async () => {
    it.each([
      ['process', 'return typeof process'],
      ['require', 'return typeof require'],
      ['module', 'return typeof module'],
      ['setTimeout', 'return typeof setTimeout'],
      ['setInterval', 'return typeof setInterval'],
      ['fetch', 'return typeof fetch'],
      ['Buffer', 'return typeof Buffer'],
      ['globalThis.process', 'return typeof globalThis.process'],
      ['std/os modules', 'return typeof std + typeof os'],
    ])('%s is not there', async (_name, code) => {
      const v = (await run(code)).value as string;
      expect(v.replace(/undefined/g, '')).toBe('');
    });

    it('the Function constructor reaches only the sandbox global', async () => {
      expect((await run('return globalThis.constructor.constructor("return typeof process")()')).value).toBe('undefined');
      expect((await run('return (function(){}).constructor("return Object.keys(globalThis).join(\\",\\")")()')).value).not.toMatch(/process|require/);
      expect((await run('return [].constructor.constructor("return this")() === globalThis')).value).toBe(true);
    });

    it('import() resolves nothing', async () => {
      const err = (await fails('return import("fs")'));
      expect(err.message).toMatch(/Promise|synchronous/);
      const err2 = (await fails('return (async () => await import("node:child_process"))()'));
      expect(err2.message).toMatch(/Promise|synchronous/);
    });

    it('static import is a syntax error', async () => {
      expect(sandbox.checkSyntax('import fs from "fs"; return 1;')).toBeDefined();
    });

    it('the realm is frozen: prototype pollution and global stashes fail, and nothing carries to the next call', async () => {
      expect((await fails('Object.prototype.polluted = "yes"; return 1;')).message).toMatch(/read-only|not extensible|frozen|define/i);
      expect((await fails('Array.prototype.map = null; return 1;')).code).toBe('E_CODE_ERROR');
      expect((await fails('JSON.parse = () => 1; return 1;')).code).toBe('E_CODE_ERROR');
      expect((await fails('globalThis.stash = event.id; return 1;')).code).toBe('E_CODE_ERROR');
      // Sloppy code made with the Function constructor cannot write either (silently).
      expect((await run('return Function("Object.prototype.p2 = 1; this.p3 = 1; return [({}).p2, this.p3]")()')).value).toEqual([null, null]);
      // Hidden intrinsics reached through instances are frozen too.
      expect((await fails('Object.getPrototypeOf([][Symbol.iterator]()).next = () => 1; return 1;')).code).toBe('E_CODE_ERROR');
      expect((await fails('(function*(){}).constructor.prototype.x = 1; return 1;')).code).toBe('E_CODE_ERROR');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(typeof [].map).toBe('function');
      expect((await run('return [({}).polluted === undefined, typeof [].map, JSON.parse("2"), typeof globalThis.stash]')).value).toEqual([true, 'function', 2, 'undefined']);
    });

    it('__proto__ in returned data does not pollute the host', async () => {
      const r = (await run('return JSON.parse(\'{"__proto__": {"hacked": true}}\')'));
      expect(({} as Record<string, unknown>).hacked).toBeUndefined();
      expect(Object.getPrototypeOf(r.value)).toBe(Object.prototype);
    });

    it('an infinite loop hits the CPU limit', async () => {
      const started = Date.now();
      const err = (await fails('let i = 0;\nwhile (true) { i++; }'));
      expect(err.code).toBe('E_CODE_TIMEOUT');
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await run('return 1')).value).toBe(1);
    });

    it('a loop that catches the interrupt is still stopped', async () => {
      const err = (await fails('for (;;) { try { while (true) {} } catch (e) {} }'));
      expect(err.code).toBe('E_CODE_TIMEOUT');
    });

    it('deep recursion is a stack overflow', async () => {
      const err = (await fails('function f(n) { return f(n + 1) + 1; }\nreturn f(0);'));
      expect(['E_CODE_STACK', 'E_CODE_ERROR']).toContain(err.code);
      expect(err.message).toMatch(/stack/i);
      expect((await run('return 2')).value).toBe(2);
    });

    it('a huge allocation hits the memory limit', async () => {
      const err = (await fails('const a = [];\nwhile (true) a.push("x".repeat(1024 * 1024));'));
      expect(['E_CODE_MEMORY', 'E_CODE_TIMEOUT']).toContain(err.code);
      expect((await fails('return new Array(1e9).fill(1)')).code).toMatch(/E_CODE_(MEMORY|ERROR)/);
      expect((await run('return 3')).value).toBe(3);
    });

    it('returning a function, a symbol, a bigint or a cycle fails', async () => {
      expect((await fails('return function () {}')).message).toMatch(/function/);
      expect((await fails('return { f: () => 1 }')).message).toMatch(/function.*"f"/);
      expect((await fails('return Symbol("s")')).message).toMatch(/symbol/);
      expect((await fails('return 10n')).message).toMatch(/bigint/);
      expect((await fails('const a = {}; a.self = a; return a;')).message).toMatch(/circular|cycl/i);
      expect((await fails('return NaN')).message).toMatch(/NaN/);
    });

    it('a thrown non-Error value is reported', async () => {
      expect((await fails('throw "nope"')).message).toContain('nope');
    });

    it('cannot reach the host log function after start', async () => {
      expect((await run('return typeof __alloyLog + typeof __alloyInput')).value).toBe('undefinedundefined');
    });

    it('logging is capped', async () => {
      const r = (await run('for (let i = 0; i < 250; i++) console.log(i === 0 ? "x".repeat(3000) : "y"); return 1;'));
      expect(r.logs.length).toBeLessThanOrEqual(201);
      expect(r.logs[0].length).toBeLessThan(2100);
    });
  });
});
