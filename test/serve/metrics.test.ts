import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/serve/metrics.js';

describe('serve metrics', () => {
  it('exposes the request durations, counted in plain numbers, exactly as a prom-client histogram observing the same requests', async () => {
    const metrics = createMetrics();
    const reference = new Registry();
    const histogram = new Histogram({ name: 'alloy_http_request_duration_seconds', help: 'Time to answer', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [reference] });
    const requests = [
      { method: 'POST', route: '/v1/run/event', status: 202, ms: 0.4 },
      { method: 'POST', route: '/v1/run/event', status: 202, ms: 1 },
      { method: 'POST', route: '/v1/run/event', status: 400, ms: 3.2 },
      { method: 'GET', route: '/v1/executions/:id', status: 200, ms: 70 },
      { method: 'GET', route: '/v1/executions/:id', status: 404, ms: 9000 },
    ];
    for (const r of requests) {
      metrics.request(r);
      histogram.observe({ method: r.method, route: r.route }, r.ms / 1000);
    }
    const name = 'alloy_http_request_duration_seconds';
    const text = await metrics.registry.getSingleMetricAsString(name);
    expect(text).toBe(await reference.getSingleMetricAsString(name));
    expect(text).toContain('alloy_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/run/event"} 3');
    expect(text).toContain('alloy_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/executions/:id"} 2');
    const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    expect(json).toEqual((await reference.getMetricsAsJSON())[0]);
    // The request counter beside it, from the same calls.
    expect(await metrics.registry.getSingleMetricAsString('alloy_http_requests_total')).toContain('alloy_http_requests_total{method="POST",route="/v1/run/event",status="202"} 2');
    metrics.registry.resetMetrics();
    expect(await metrics.registry.getSingleMetricAsString(name)).not.toContain('_bucket');
  });
});
