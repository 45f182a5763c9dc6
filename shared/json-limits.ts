/**
 * Bounds on the shape of JSON values that come from outside (a send request's template data, a
 * record from a foreign producer). Measured without recursion, so a value nested 100,000 deep
 * is refused instead of overflowing the stack of whatever walks it next (a JSON encoder, a
 * fingerprint, a template engine).
 */

export interface JsonLimits {
  /** Deepest nesting: a scalar or an empty container is depth 1, `{ "a": 1 }` is 2. */
  maxDepth: number;
  /** Most values (containers and scalars) in all. */
  maxValues: number;
}

/** What a template's data may hold: deep enough for any real template, far from any stack limit. */
export const TEMPLATE_DATA_LIMITS: JsonLimits = { maxDepth: 32, maxValues: 100_000 };

/** Why `value` is over `limits`, or undefined. Stops at the first excess. */
export function jsonShapeProblem(value: unknown, limits: JsonLimits): string | undefined {
  return new ShapeWalk(limits).problem(value, 1);
}

/**
 * Walks a value depth first, counting. It recurses, but at most one level past `maxDepth` (a
 * value beyond it is reported, never opened), so the stack stays small whatever the input; and
 * it allocates nothing per value (every record of every topic is walked on decode).
 */
class ShapeWalk {
  private values = 0;

  constructor(private readonly limits: JsonLimits) {}

  problem(v: unknown, depth: number): string | undefined {
    if (++this.values > this.limits.maxValues) return `holds more than ${this.limits.maxValues} values`;
    if (depth > this.limits.maxDepth) return `is nested more than ${this.limits.maxDepth} levels deep`;
    if (v === null || typeof v !== 'object') return undefined;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const p = this.problem(v[i], depth + 1);
        if (p !== undefined) return p;
      }
      return undefined;
    }
    const o = v as Record<string, unknown>;
    for (const k in o) {
      if (!Object.hasOwn(o, k)) continue;
      const p = this.problem(o[k], depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
}
