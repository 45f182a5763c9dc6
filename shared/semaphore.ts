/** A counting semaphore: at most `size` holders at once, waiters served in arrival order. */
export class Semaphore {
  private waiting: Array<() => void> = [];
  private used = 0;

  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.used--;
  }

  /** Runs `fn` holding one slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/**
 * A budget of units (bytes) held by weight, granted strictly in arrival order so a large
 * request is not starved by small ones. A request larger than the whole budget is granted once
 * nothing else holds any, so it runs alone instead of never.
 */
export class WeightedSemaphore {
  private waiting: Array<{ weight: number; grant: () => void }> = [];
  private used = 0;

  constructor(private readonly size: number) {}

  private fits(weight: number): boolean {
    return this.used === 0 || this.used + weight <= this.size;
  }

  async acquire(weight: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(weight)) {
      this.used += weight;
      return;
    }
    await new Promise<void>((grant) => this.waiting.push({ weight, grant }));
  }

  release(weight: number): void {
    this.used -= weight;
    while (this.waiting.length > 0 && this.fits(this.waiting[0].weight)) {
      const next = this.waiting.shift()!;
      this.used += next.weight;
      next.grant();
    }
  }
}
