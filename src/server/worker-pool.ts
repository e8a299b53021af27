/**
 * A FIFO of execution ids with a concurrency limit. The queue's durable form is the event
 * log (executions in status queued or running); this is only the in-memory schedule of one
 * process, seeded from the log on start. An id is never scheduled twice at once.
 */
export interface WorkerPoolOptions {
  concurrency: number;
  run(id: string): Promise<void>;
  /** Called when `run` rejects (it should not: the runtime records failures itself). */
  onError?(id: string, err: unknown): void;
}

export class WorkerPool {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly known = new Set<string>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WorkerPoolOptions) {
    if (!(options.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  push(id: string): void {
    if (this.stopped || this.known.has(id)) return;
    this.known.add(id);
    this.queue.push(id);
    this.pump();
  }

  get size(): { queued: number; running: number } {
    return { queued: this.queue.length - this.head, running: this.active };
  }

  /** Stops starting new work; queued ids stay in the log for the next start. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when nothing is running (queued ids are not waited for once stopped). */
  idle(): Promise<void> {
    if (this.active === 0 && (this.stopped || this.head === this.queue.length)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (!this.stopped && this.active < this.options.concurrency && this.head < this.queue.length) {
      const id = this.queue[this.head++];
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.active++;
      // One reaction per run (a catch and a finally made two promises more each).
      const done = () => {
        this.active--;
        this.known.delete(id);
        this.pump();
        this.checkIdle();
      };
      this.options.run(id).then(done, (err) => {
        try {
          this.options.onError?.(id, err);
        } finally {
          done();
        }
      });
    }
  }

  private checkIdle(): void {
    if (this.active === 0 && (this.stopped || this.head === this.queue.length)) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
