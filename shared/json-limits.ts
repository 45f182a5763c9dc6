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
  const stack: Array<[unknown, number]> = [[value, 1]];
  let values = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++values > limits.maxValues) return `holds more than ${limits.maxValues} values`;
    if (depth > limits.maxDepth) return `is nested more than ${limits.maxDepth} levels deep`;
    if (v === null || typeof v !== 'object') continue;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return undefined;
}
