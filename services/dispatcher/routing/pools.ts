/**
 * Pools: which pool a message leaves through and which of its source addresses sends it. Pure:
 * availability (warm-up caps, pauses) is asked of a function the shaper provides.
 */
import type { Priority } from '../../../shared/config.js';

export interface SourceAddress {
  /** IPv4 or IPv6 address bound as the connection's local address. */
  address: string;
  /** Name sent with EHLO (should have forward-confirmed reverse DNS). */
  ehlo: string;
  weight: number;
}

export interface PoolChoice {
  /** Tenant → its default pool. */
  tenants: Record<string, string>;
  /** Priority → pool, for messages without a pool of their own or their tenant's. */
  priorities: Partial<Record<Priority, string>>;
}

export type PoolDecision = { pool: string } | { unknownPool: string };

/**
 * The pool of a message: its own `pool` field, else its tenant's default, else its priority's,
 * else `default`. A `pool` field naming no configured pool is the sender's error (`unknownPool`).
 */
export function choosePool(msg: { pool?: string; tenant: string; priority: Priority }, choice: PoolChoice, pools: ReadonlySet<string>): PoolDecision {
  if (msg.pool) return pools.has(msg.pool) ? { pool: msg.pool } : { unknownPool: msg.pool };
  const byTenant = choice.tenants[msg.tenant];
  if (byTenant !== undefined) return { pool: byTenant };
  return { pool: choice.priorities[msg.priority] ?? 'default' };
}

/**
 * A source address of the pool, by weight among those `available` allows; undefined when none
 * is available (the whole pool is capped or paused: the message waits, it does not fail).
 */
export function chooseSource(addresses: readonly SourceAddress[], available: (address: string) => boolean, random: () => number = Math.random): SourceAddress | undefined {
  const open = addresses.filter((a) => a.weight > 0 && available(a.address));
  const total = open.reduce((sum, a) => sum + a.weight, 0);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const a of open) {
    x -= a.weight;
    if (x < 0) return a;
  }
  return open[open.length - 1];
}
