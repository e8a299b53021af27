/**
 * A step id that every plain object already has (`constructor`, `toString`, `__proto__`) does
 * not compile: the engine keeps steps by id in plain objects, where such a step was found
 * before it ran and skipped in silence. `alloy validate` reports it first (E_STEP_ID_RESERVED);
 * this covers a definition that skipped validation, such as another client's release in a store.
 */
import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/engine/index.js';
import { workflow } from './helpers.js';

describe('reserved step ids', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('%s, top level or nested, is E_COMPILE naming the step', (id) => {
    expect(() => compileWorkflow(workflow([{ id, uses: 'transform', with: {} }]))).toThrow(expect.objectContaining({ code: 'E_COMPILE', message: expect.stringContaining(`step id "${id}" is reserved`) }));
    const nested = workflow([{ id: 'loop', each: '{{ [1] }}', as: 'item', steps: [{ id, uses: 'transform', with: {} }] }]);
    expect(() => compileWorkflow(nested)).toThrow(expect.objectContaining({ details: { pointer: '/steps/0/steps/0/id' } }));
  });
  it('an ordinary id that merely contains one compiles', () => {
    expect(compileWorkflow(workflow([{ id: 'constructor_2', uses: 'transform', with: {} }])).steps[0].id).toBe('constructor_2');
  });
});
