/**
 * A counting semaphore over `size` units: holders take one unit (a slot) or a weight (bytes),
 * granted strictly in arrival order so a large request is not starved by small ones. A request
 * larger than the whole budget is granted once nothing else holds any, so it runs alone
 * instead of never.
 */
export class Semaphore {
  private waiting: Array<{ weight: number; grant: () => void }> = [];
  private used = 0;

  constructor(private readonly size: number) {}

  private fits(weight: number): boolean {
    return this.used === 0 || this.used + weight <= this.size;
  }

  async acquire(weight = 1): Promise<void> {
    if (this.waiting.length === 0 && this.fits(weight)) {
      this.used += weight;
      return;
    }
    await new Promise<void>((grant) => this.waiting.push({ weight, grant }));
  }

  release(weight = 1): void {
    this.used -= weight;
    while (this.waiting.length > 0 && this.fits(this.waiting[0].weight)) {
      const next = this.waiting.shift()!;
      this.used += next.weight;
      next.grant();
    }
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
