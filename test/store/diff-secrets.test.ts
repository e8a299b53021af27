import { describe, expect, it } from 'vitest';
import { detectSecret, diffDefinitions, diffSteps, diffWorkflow, findLiteralSecrets } from '../../src/store/index.js';
import type { Step } from '../../src/core/model.js';
import { workflow } from './helpers.js';

const t = (id: string, extra: Record<string, unknown> = {}): Step => ({ id, uses: 'transform', with: { v: `{{ event.${id} }}` }, ...extra }) as Step;

describe('step-level diff', () => {
  it('reports added, removed and changed steps with field paths', () => {
    const changes = diffSteps([t('a'), t('b'), t('c')], [t('a', { with: { v: 'x' } }), t('c'), t('d')]);
    expect(changes).toEqual([
      { id: 'b', change: 'removed', at: 'steps[1]' },
      { id: 'd', change: 'added', at: 'steps[2]' },
      { id: 'a', change: 'changed', at: 'steps[0]', fields: [{ path: 'with.v', from: '{{ event.a }}', to: 'x' }] },
    ]);
  });

  it('one insertion does not "move" the steps after it; a swap moves one step', () => {
    expect(diffSteps([t('a'), t('b'), t('c')], [t('x'), t('a'), t('b'), t('c')]).map((c) => c.change)).toEqual(['added']);
    const swap = diffSteps([t('a'), t('b'), t('c')], [t('a'), t('c'), t('b')]);
    expect(swap).toHaveLength(1);
    expect(swap[0]).toMatchObject({ change: 'moved' });
  });

  it('a step moved into an if branch is moved, not removed + added', () => {
    const before = [t('a'), { id: 'check', if: '{{ event.ok }}', then: [t('b')] } as Step, t('c')];
    const after = [t('a'), { id: 'check', if: '{{ event.ok }}', then: [t('b'), t('c')] } as Step];
    expect(diffSteps(before, after)).toEqual([{ id: 'c', change: 'moved', at: 'steps[1].then[1]', from: 'steps[2]' }]);
  });

  it('changing a nested step does not mark its parent as changed', () => {
    const before = [{ id: 'loop', each: '{{ event.items }}', steps: [t('inner')] } as Step];
    const after = [{ id: 'loop', each: '{{ event.items }}', steps: [t('inner', { retry: { attempts: 3 } })] } as Step];
    expect(diffSteps(before, after)).toEqual([{ id: 'inner', change: 'changed', at: 'steps[0].steps[0]', fields: [{ path: 'retry', to: { attempts: 3 } }] }]);
  });

  it('reports trigger changes by field and workflow fields apart from steps', () => {
    const a = workflow('w');
    const b = { ...workflow('w', undefined, { event: 'acme.other' }), timeout: '30s' };
    const d = diffWorkflow('w', a, b);
    expect(d.status).toBe('changed');
    expect(d.trigger?.fields).toEqual([{ path: 'event', from: 'acme.w', to: 'acme.other' }]);
    expect(d.fields).toEqual([{ path: 'timeout', to: '30s' }]);
    expect(d.steps).toEqual([]);
  });

  it('diffs whole definition sets: workflows added and removed, unchanged ones left out', () => {
    const integ = { apiVersion: 'alloy/v1' as const, kind: 'Integration' as const, name: 'shop', app: 'shopify' };
    const d = diffDefinitions(
      'shop',
      { label: 'v1', defs: { integration: integ, workflows: new Map([['a', workflow('a')], ['b', workflow('b')]]) } },
      { label: 'v2', defs: { integration: { ...integ, description: 'new' }, workflows: new Map([['a', workflow('a')], ['c', workflow('c')]]) } },
    );
    expect(d.changed).toBe(true);
    expect(d.fields).toEqual([{ path: 'description', to: 'new' }]);
    expect(d.workflows.map((w) => [w.name, w.status])).toEqual([['b', 'removed'], ['c', 'added']]);
  });

  it('redacts values that look like secrets in a diff', () => {
    const d = diffSteps([t('a')], [t('a', { with: { token: 'shpat_0123456789abcdef0123456789abcdef' } })]);
    expect(JSON.stringify(d)).not.toContain('shpat_');
    expect(JSON.stringify(d)).toContain('<redacted>');
  });
});

describe('literal secret detection', () => {
  it.each([
    ['shpat_0123456789abcdef0123456789abcdef', 'Shopify access token'],
    ['Bearer shpss_0123456789abcdef0123456789abcdef', 'Shopify access token'],
    ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'Standard Webhooks secret'],
    ['sk_live_51H8abcdefGHIJKLmnopQRST', 'Stripe live key'],
    ['ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123', 'GitHub token'],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', 'JSON Web Token'],
    ['https://user:hunter22@acme.example/x', 'credential in a URL'],
    ['Zx8Qm2Lk9Tr4Wv7Yb3Nc6Hd1Jf5Gs0Pa2Ke8Ru', 'high-entropy key'],
  ])('flags %s', (value, kind) => {
    expect(detectSecret(undefined, value)).toBe(kind);
  });

  it.each([
    '{{ secrets.SHOPIFY_TOKEN }}',
    'Bearer {{ secrets.ACME_TOKEN }}',
    '{{ env.ACME_STREAM_URL }}',
    'https://acme.example/admin/api/2024-10/orders.json',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    "When Acme's app sends acme.order.requested, create the order in Shopify.",
  ])('does not flag %s', (value) => {
    expect(detectSecret(undefined, value)).toBeUndefined();
  });

  it('flags a literal value in a field named like a credential, not a template', () => {
    expect(detectSecret('password', 'correct horse battery')).toMatch(/password/);
    expect(detectSecret('secret', '{{ secrets.X }}')).toBeUndefined();
    const found = findLiteralSecrets('wf.yaml', { steps: [{ with: { headers: { 'X-Api-Key': 'abcdefgh12345' } } }] });
    expect(found).toEqual([{ file: 'wf.yaml', field: '/steps/0/with/headers/X-Api-Key', kind: 'literal value in a "X-Api-Key" field' }]);
  });
});
