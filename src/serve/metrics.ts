/** Prometheus metrics of `alloy serve` (prom-client), one registry per server (tests run several). */
import { Counter, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  request(info: { method: string; route: string; status: number; ms: number }): void;
  executionFinished(status: string): void;
  ingested(source: string, count: number): void;
  /** A schedule tick or polled item this process claimed: `stored`, or `duplicate` (another process or run had it). */
  timerClaim(kind: 'schedule' | 'poll', outcome: 'stored' | 'duplicate'): void;
}

interface DurationSeries {
  labels: { method: string; route: string };
  /** Per upper bound (not cumulative); observations above the last bound are only in count. */
  buckets: number[];
  sum: number;
  count: number;
}

/**
 * The request-duration histogram, observed in plain numbers: prom-client's labelled
 * histogram validates and hashes its labels on every observe (about a microsecond per
 * request). Scraped in prom-client's own histogram form (cumulative `le` buckets, `+Inf`,
 * `_sum`, `_count`), so /metrics reads the same.
 */
type Exported = { name: string; help: string; type: 'histogram'; values: MetricValueWithName<'method' | 'route'>[]; aggregator: 'sum' };

class Durations extends Histogram<'method' | 'route'> {
  readonly #series = new Map<string, DurationSeries>();
  readonly #bounds: number[];
  readonly #name: string;
  readonly #help: string;
  constructor(config: ConstructorParameters<typeof Histogram<'method' | 'route'>>[0] & { buckets: number[] }) {
    super(config);
    this.#bounds = config.buckets;
    this.#name = config.name;
    this.#help = config.help;
  }
  /** The series of (method, route), made once. */
  series(method: string, route: string): DurationSeries {
    const key = `${method} ${route}`;
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = { labels: { method, route }, buckets: this.#bounds.map(() => 0), sum: 0, count: 0 }));
    return s;
  }
  add(s: DurationSeries, seconds: number): void {
    s.count++;
    s.sum += seconds;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        s.buckets[i]++;
        return;
      }
    }
  }
  /** What prom-client's Histogram exports, from these counts. */
  // prom-client's registry calls this (rather than get) for the text exposition.
  async getForPromString(): Promise<Exported> {
    const name = this.#name;
    const bucket = `${name}_bucket`;
    const values: MetricValueWithName<'method' | 'route'>[] = [];
    for (const s of this.#series.values()) {
      const sharedLabels = s.labels;
      let acc = 0;
      this.#bounds.forEach((le, i) => {
        acc += s.buckets[i];
        values.push({ labels: { le } as never, sharedLabels, value: acc, metricName: bucket, exemplar: null } as MetricValueWithName<'method' | 'route'>);
      });
      values.push(
        { labels: { le: '+Inf' } as never, sharedLabels, value: s.count, metricName: bucket, exemplar: null } as MetricValueWithName<'method' | 'route'>,
        { labels: {}, sharedLabels, value: s.sum, metricName: `${name}_sum` } as MetricValueWithName<'method' | 'route'>,
        { labels: {}, sharedLabels, value: s.count, metricName: `${name}_count` } as MetricValueWithName<'method' | 'route'>,
      );
    }
    return { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
  }
  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<'method' | 'route'>>> {
    const data = await this.getForPromString();
    // As prom-client's: each value's labels with the series' labels merged in.
    data.values = data.values.map((v) => {
      const { sharedLabels, ...rest } = v as MetricValueWithName<'method' | 'route'> & { sharedLabels: Record<string, string> };
      return { ...rest, labels: { ...rest.labels, ...sharedLabels } };
    });
    return data as unknown as MetricObjectWithValues<MetricValueWithName<'method' | 'route'>>;
  }
  override reset(): void {
    super.reset();
    // The base constructor calls reset before this class's fields exist.
    if (#series in this) this.#series.clear();
  }
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
  const duration = new Durations({ name: 'alloy_http_request_duration_seconds', help: 'Time to answer', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] });
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
  const series = new Map<string, { count: { n: number }; time: DurationSeries }>();
  return {
    registry,
    request(i) {
      const key = `${i.method} ${i.route} ${i.status}`;
      let s = series.get(key);
      if (!s) {
        const count = { labels: { method: i.method, route: i.route, status: String(i.status) }, n: 0 };
        counted.set(key, count);
        series.set(key, (s = { count, time: duration.series(i.method, i.route) }));
      }
      s.count.n++;
      duration.add(s.time, i.ms / 1000);
    },
    executionFinished: (status) => void ended.set(status, (ended.get(status) ?? 0) + 1),
    ingested: (source, count) => void created.set(source, (created.get(source) ?? 0) + count),
    timerClaim: (kind, outcome) => claims.inc({ kind, outcome }),
  };
}
