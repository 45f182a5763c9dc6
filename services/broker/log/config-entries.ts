/**
 * DescribeConfigs entries, as Kafka lists them: every topic setting with its effective value and
 * where that value comes from (set on the topic, a broker-wide topic default, or the built-in
 * default), with Kafka's synonym chain (`retention.ms` ← `log.retention.ms` ← default). Pure.
 */
import { DEFAULT_TOPIC_CONFIG, TOPIC_SETTINGS, settingValue, type TopicConfig } from './topic-config.js';

/** Kafka's `ConfigSource` ids. */
export const ConfigSource = {
  DYNAMIC_TOPIC_CONFIG: 1,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

/** The broker setting behind each topic setting (Kafka's names). */
export const BROKER_SYNONYM: Record<string, string> = {
  'cleanup.policy': 'log.cleanup.policy',
  'delete.retention.ms': 'log.cleaner.delete.retention.ms',
  'index.interval.bytes': 'log.index.interval.bytes',
  'max.message.bytes': 'message.max.bytes',
  'min.compaction.lag.ms': 'log.cleaner.min.compaction.lag.ms',
  'retention.bytes': 'log.retention.bytes',
  'retention.ms': 'log.retention.ms',
  'segment.bytes': 'log.segment.bytes',
  'segment.ms': 'log.roll.ms',
};

export interface ConfigSynonym {
  name: string;
  value: string | null;
  source: number;
}

export interface ConfigEntry {
  name: string;
  value: string | null;
  readOnly: boolean;
  /** v0's flag: the value is not set on the resource itself. */
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  synonyms: ConfigSynonym[];
}

/**
 * The entries of a topic whose config is `config` over the broker's topic `defaults`; `keys`
 * (null: all) selects which, and unknown names are left out as Kafka leaves them out.
 */
export function topicConfigEntries(config: TopicConfig, defaults: TopicConfig, keys: string[] | null, withSynonyms: boolean): ConfigEntry[] {
  const names = [...new Set([...TOPIC_SETTINGS, ...Object.keys(config.raw)])].filter((n) => keys === null || keys.includes(n));
  return names.map((name) => {
    const known = TOPIC_SETTINGS.includes(name);
    const chain: ConfigSynonym[] = [];
    if (name in config.raw) chain.push({ name, value: known ? settingValue(config, name) : config.raw[name], source: ConfigSource.DYNAMIC_TOPIC_CONFIG });
    if (known) {
      const broker = BROKER_SYNONYM[name];
      if (name in defaults.raw) chain.push({ name: broker, value: settingValue(defaults, name), source: ConfigSource.STATIC_BROKER_CONFIG });
      chain.push({ name: broker, value: settingValue(DEFAULT_TOPIC_CONFIG, name), source: ConfigSource.DEFAULT_CONFIG });
    }
    const [effective] = chain;
    return {
      name,
      value: effective.value,
      readOnly: false,
      isDefault: effective.source !== ConfigSource.DYNAMIC_TOPIC_CONFIG,
      configSource: effective.source,
      isSensitive: false,
      synonyms: withSynonyms ? chain : [],
    };
  });
}

/** Read-only broker entries from name → value pairs (the broker's start-up settings). */
export function brokerConfigEntries(settings: Record<string, string>, keys: string[] | null, withSynonyms: boolean): ConfigEntry[] {
  return Object.entries(settings)
    .filter(([name]) => keys === null || keys.includes(name))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({
      name,
      value,
      readOnly: true,
      isDefault: false,
      configSource: ConfigSource.STATIC_BROKER_CONFIG,
      isSensitive: false,
      synonyms: withSynonyms ? [{ name, value, source: ConfigSource.STATIC_BROKER_CONFIG }] : [],
    }));
}
