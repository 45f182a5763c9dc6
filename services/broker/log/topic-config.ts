/**
 * Per-topic settings, named as in Kafka so `CreateTopics` configs and `kafka-topics` habits
 * carry over. Unknown Kafka settings (e.g. `min.insync.replicas`) are accepted and kept but
 * have no effect on a single node.
 */
export interface TopicConfig {
  /** `cleanup.policy`: delete whole segments by age/size, or keep the latest record per key. */
  cleanupPolicy: 'delete' | 'compact' | 'compact,delete';
  /** `retention.ms` (default 7 days; -1 keeps forever). */
  retentionMs: number;
  /** `retention.bytes` per partition (default -1: no size limit). */
  retentionBytes: number;
  /** `segment.bytes` (default 128 MiB). */
  segmentBytes: number;
  /** `segment.ms` (default 7 days): roll the active segment after this age. */
  segmentMs: number;
  /** `delete.retention.ms` (default 1 day): how long compaction keeps tombstones. */
  deleteRetentionMs: number;
  /** `max.message.bytes` (default 1 MiB + overhead): the largest batch accepted. */
  maxMessageBytes: number;
  /** `index.interval.bytes` (default 4 KiB): bytes between offset-index entries. */
  indexIntervalBytes: number;
  /** `min.compaction.lag.ms` (default 0): records younger than this are never compacted away. */
  minCompactionLagMs: number;
  /** The settings given for this config (not those of `base`), as DescribeConfigs lists them. */
  raw: Record<string, string>;
}

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  cleanupPolicy: 'delete',
  retentionMs: 7 * 24 * 3600_000,
  retentionBytes: -1,
  segmentBytes: 128 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600_000,
  deleteRetentionMs: 24 * 3600_000,
  maxMessageBytes: 1024 * 1024 + 12,
  indexIntervalBytes: 4096,
  minCompactionLagMs: 0,
  raw: {},
};

export class InvalidConfigError extends Error {
  readonly code = 'INVALID_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidConfigError';
  }
}

/** Kafka setting name → field, for every numeric setting this broker acts on. */
export const NUMERIC: Record<string, keyof TopicConfig> = {
  'retention.ms': 'retentionMs',
  'retention.bytes': 'retentionBytes',
  'segment.bytes': 'segmentBytes',
  'segment.ms': 'segmentMs',
  'delete.retention.ms': 'deleteRetentionMs',
  'max.message.bytes': 'maxMessageBytes',
  'index.interval.bytes': 'indexIntervalBytes',
  'min.compaction.lag.ms': 'minCompactionLagMs',
};

/** Every setting this broker acts on, in the order DescribeConfigs lists them. */
export const TOPIC_SETTINGS = ['cleanup.policy', ...Object.keys(NUMERIC)].sort();

/** The effective value of a known setting, as Kafka prints it. */
export function settingValue(config: TopicConfig, name: string): string {
  if (name === 'cleanup.policy') return config.cleanupPolicy;
  return String(config[NUMERIC[name]]);
}

const MINIMUM: Partial<Record<keyof TopicConfig, number>> = {
  segmentBytes: 1024,
  segmentMs: 1,
  indexIntervalBytes: 0,
  maxMessageBytes: 0,
  deleteRetentionMs: 0,
  minCompactionLagMs: 0,
};

/** Index entries store file positions as int32, so a segment may not grow past 2 GiB. */
const MAXIMUM: Partial<Record<keyof TopicConfig, number>> = {
  segmentBytes: 0x7fffffff,
  maxMessageBytes: 0x7fffffff,
  indexIntervalBytes: 0x7fffffff,
};

/**
 * Builds a config from Kafka-named settings over `base` (the broker's topic defaults); throws
 * InvalidConfigError naming the key. `raw` holds only `settings`, so a topic keeps following the
 * broker defaults it did not override.
 */
export function parseTopicConfig(settings: Record<string, string | null>, base: TopicConfig = DEFAULT_TOPIC_CONFIG): TopicConfig {
  const out: TopicConfig = { ...base, raw: {} };
  for (const [name, value] of Object.entries(settings)) {
    if (value === null) continue;
    if (name === 'cleanup.policy') {
      const parts = value.split(',').map((p) => p.trim()).filter(Boolean).sort();
      const joined = parts.join(',');
      if (joined !== 'delete' && joined !== 'compact' && joined !== 'compact,delete') {
        throw new InvalidConfigError(`cleanup.policy must be delete, compact or compact,delete (got "${value}")`);
      }
      out.cleanupPolicy = joined as TopicConfig['cleanupPolicy'];
    } else if (name in NUMERIC) {
      const key = NUMERIC[name];
      const n = Number(value);
      const min = MINIMUM[key] ?? -1;
      const max = MAXIMUM[key] ?? Number.MAX_SAFE_INTEGER;
      if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
        throw new InvalidConfigError(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
      }
      (out[key] as number) = n;
    }
    out.raw[name] = value;
  }
  return out;
}

/** One IncrementalAlterConfigs operation (Kafka's `AlterConfigOp.OpType` ids: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT). */
export interface ConfigOp {
  name: string;
  op: number;
  value: string | null;
}

/** Settings whose value is a list, the only ones APPEND and SUBTRACT apply to. */
const LIST_SETTINGS = new Set(['cleanup.policy']);

/**
 * A topic's settings after incremental operations: SET and DELETE change one setting, APPEND and
 * SUBTRACT add or remove items of a list setting (starting from its effective value). Throws
 * InvalidConfigError for an operation Kafka refuses.
 */
export function applyConfigOps(current: TopicConfig, ops: ConfigOp[]): Record<string, string> {
  const out = { ...current.raw };
  for (const { name, op, value } of ops) {
    if (op === 1) {
      delete out[name];
      continue;
    }
    if (value === null) throw new InvalidConfigError(`${name}: a value is required`);
    if (op === 0) {
      out[name] = value;
      continue;
    }
    if (op !== 2 && op !== 3) throw new InvalidConfigError(`${name}: unknown operation ${op}`);
    if (!LIST_SETTINGS.has(name)) throw new InvalidConfigError(`${name} is not a list: only SET and DELETE apply to it`);
    const items = (out[name] ?? settingValue(current, name)).split(',').map((x) => x.trim()).filter(Boolean);
    const given = value.split(',').map((x) => x.trim()).filter(Boolean);
    const next = op === 2 ? [...items, ...given.filter((x) => !items.includes(x))] : items.filter((x) => !given.includes(x));
    out[name] = next.join(',');
  }
  return out;
}
