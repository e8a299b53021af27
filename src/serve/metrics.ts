/** Prometheus metrics of `alloy serve` (prom-client), one registry per server (tests run several). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  request(info: { method: string; route: string; status: number; ms: number }): void;
  executionFinished(status: string): void;
  ingested(source: string, count: number): void;
  /** A schedule tick or polled item this process claimed: `stored`, or `duplicate` (another process or run had it). */
  timerClaim(kind: 'schedule' | 'poll', outcome: 'stored' | 'duplicate'): void;
}

export function createMetrics(): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'alloy_' });
  // Requests are counted in plain numbers and handed to prom-client when it is scraped (its
  // collect hook): a labelled child's inc() still hashes the label object on every call.
  const counted = new Map<string, { labels: { method: string; route: string; status: string }; n: number }>();
  const requests = new Counter({
    name: 'alloy_http_requests_total',
    help: 'HTTP requests answered',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
    collect() {
      for (const c of counted.values()) {
        if (c.n === 0) continue;
        this.inc(c.labels, c.n);
        c.n = 0;
      }
    },
  });
  const duration = new Histogram({ name: 'alloy_http_request_duration_seconds', help: 'Time to answer', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] });
  // Counted like the requests (one per execution), handed over on scrape.
  const ended = new Map<string, number>();
  const finished = new Counter({
    name: 'alloy_executions_finished_total',
    help: 'Executions that ended',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      for (const [status, n] of ended) this.inc({ status }, n);
      ended.clear();
    },
  });
  // Counted like the requests (one per ingest request).
  const created = new Map<string, number>();
  const ingested = new Counter({
    name: 'alloy_executions_created_total',
    help: 'Executions created by ingest',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      for (const [source, n] of created) this.inc({ source }, n);
      created.clear();
    },
  });
  const claims = new Counter({ name: 'alloy_timer_claims_total', help: 'Schedule ticks and polled items claimed by this process, by outcome', labelNames: ['kind', 'outcome'] as const, registers: [registry] });
  // The labelled series of a (method, route, status), looked up once. Routes are patterns, so the map stays small.
  const series = new Map<string, { count: { n: number }; time: { observe(v: number): void } }>();
  return {
    registry,
    request(i) {
      const key = `${i.method} ${i.route} ${i.status}`;
      let s = series.get(key);
      if (!s) {
        const count = { labels: { method: i.method, route: i.route, status: String(i.status) }, n: 0 };
        counted.set(key, count);
        series.set(key, (s = { count, time: duration.labels({ method: i.method, route: i.route }) }));
      }
      s.count.n++;
      s.time.observe(i.ms / 1000);
    },
    executionFinished: (status) => void ended.set(status, (ended.get(status) ?? 0) + 1),
    ingested: (source, count) => void created.set(source, (created.get(source) ?? 0) + count),
    timerClaim: (kind, outcome) => claims.inc({ kind, outcome }),
  };
}
