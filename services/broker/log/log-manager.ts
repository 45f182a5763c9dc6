/**
 * Topics on disk: `<dataDir>/topics/<topic>/topic.json` holds the partition count and config,
 * `<dataDir>/topics/<topic>/<partition>/` the partition's segments. A topic exists once its
 * `topic.json` is written (atomically); a directory without one is a half-created topic and is
 * removed on start-up. Deletion first renames the directory into `<dataDir>/trash/` (outside
 * `topics/`, so no legal topic name can collide with a deleted one), so a crash never leaves a
 * half-deleted topic that still looks alive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PartitionLog, type Durability } from './partition-log.js';
import { syncDir } from './sync-dir.js';
import { parseTopicConfig, type TopicConfig } from './topic-config.js';
import type { GroupCommit } from './group-commit.js';

/** Kafka's rule: ASCII letters, digits, '.', '_' and '-', at most 249 characters, not '.' or '..'. */
const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

export function topicNameError(name: string): string | null {
  if (!LEGAL_TOPIC.test(name) || name === '.' || name === '..') {
    return `topic name "${name}" must be 1-249 characters of [a-zA-Z0-9._-] and not "." or ".."`;
  }
  return null;
}

export interface Topic {
  name: string;
  config: TopicConfig;
  partitions: PartitionLog[];
}

interface TopicFile {
  partitions: number;
  configs: Record<string, string>;
  createdAt: number;
}

export class TopicError extends Error {
  constructor(
    readonly errorName: 'TOPIC_ALREADY_EXISTS' | 'INVALID_TOPIC_EXCEPTION' | 'INVALID_PARTITIONS' | 'UNKNOWN_TOPIC_OR_PARTITION',
    message: string,
  ) {
    super(message);
    this.name = 'TopicError';
  }
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, data);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  syncDir(path.dirname(file));
}

export class LogManager {
  readonly topics = new Map<string, Topic>();
  private readonly root: string;
  private readonly trash: string;
  private trashed = 0;

  constructor(
    dataDir: string,
    /** The broker's topic defaults (what a topic follows for every setting it does not set). */
    readonly defaults: TopicConfig,
    private readonly durability: Durability,
    private readonly commit: GroupCommit,
  ) {
    this.root = path.join(dataDir, 'topics');
    this.trash = path.join(dataDir, 'trash');
    fs.mkdirSync(this.root, { recursive: true });
  }

  /** Loads every topic. `unclean` (no clean-shutdown marker) verifies each active segment. */
  load(unclean: boolean): void {
    fs.rmSync(this.trash, { recursive: true, force: true });
    for (const entry of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, entry);
      const meta = path.join(dir, 'topic.json');
      if (topicNameError(entry) || !fs.existsSync(meta)) {
        fs.rmSync(dir, { recursive: true, force: true });
        continue;
      }
      const file = JSON.parse(fs.readFileSync(meta, 'utf8')) as TopicFile;
      const config = parseTopicConfig(file.configs, this.defaults);
      const topic: Topic = { name: entry, config, partitions: [] };
      for (let p = 0; p < file.partitions; p++) topic.partitions.push(this.openPartition(entry, p, config, unclean));
      this.topics.set(entry, topic);
    }
  }

  private openPartition(topic: string, p: number, config: TopicConfig, unclean: boolean): PartitionLog {
    return PartitionLog.open(topic, p, path.join(this.root, topic, String(p)), config, this.durability, unclean);
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  partition(topic: string, p: number): PartitionLog | undefined {
    return this.topics.get(topic)?.partitions[p];
  }

  /** Validates without creating (CreateTopics validate_only, and before creating). */
  validate(name: string, partitions: number, configs: Record<string, string | null>): TopicConfig {
    const bad = topicNameError(name);
    if (bad) throw new TopicError('INVALID_TOPIC_EXCEPTION', bad);
    if (this.topics.has(name)) throw new TopicError('TOPIC_ALREADY_EXISTS', `topic "${name}" already exists`);
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new TopicError('INVALID_PARTITIONS', `partitions must be between 1 and 10000 (got ${partitions})`);
    }
    return parseTopicConfig(configs, this.defaults);
  }

  create(name: string, partitions: number, configs: Record<string, string | null> = {}): Topic {
    const config = this.validate(name, partitions, configs);
    const dir = path.join(this.root, name);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const topic: Topic = { name, config, partitions: [] };
    try {
      for (let p = 0; p < partitions; p++) topic.partitions.push(this.openPartition(name, p, config, false));
      this.writeMeta(topic);
    } catch (err) {
      // All or nothing: no half-created topic and no leaked file handles.
      for (const p of topic.partitions) p.close();
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    syncDir(this.root);
    this.topics.set(name, topic);
    return topic;
  }

  private writeMeta(topic: Topic): void {
    const file: TopicFile = { partitions: topic.partitions.length, configs: topic.config.raw, createdAt: Date.now() };
    writeAtomic(path.join(this.root, topic.name, 'topic.json'), JSON.stringify(file));
  }

  addPartitions(name: string, count: number, validateOnly = false): void {
    const topic = this.topics.get(name);
    if (!topic) throw new TopicError('UNKNOWN_TOPIC_OR_PARTITION', `topic "${name}" does not exist`);
    if (count <= topic.partitions.length) {
      throw new TopicError('INVALID_PARTITIONS', `topic "${name}" has ${topic.partitions.length} partitions; the new count must be larger (got ${count})`);
    }
    if (validateOnly) return;
    const before = topic.partitions.length;
    const added: PartitionLog[] = [];
    try {
      for (let p = before; p < count; p++) added.push(this.openPartition(name, p, topic.config, false));
      this.writeMeta({ ...topic, partitions: [...topic.partitions, ...added] });
    } catch (err) {
      for (const p of added) p.destroy();
      throw err;
    }
    topic.partitions.push(...added);
  }

  /**
   * Replaces a topic's settings (AlterConfigs: settings not given fall back to the broker
   * defaults), persisted before it takes effect. Throws TopicError or InvalidConfigError.
   */
  alterConfig(name: string, settings: Record<string, string | null>, validateOnly = false): void {
    const topic = this.topics.get(name);
    if (!topic) throw new TopicError('UNKNOWN_TOPIC_OR_PARTITION', `topic "${name}" does not exist`);
    const config = parseTopicConfig(settings, this.defaults);
    if (validateOnly) return;
    this.writeMeta({ ...topic, config });
    topic.config = config;
    for (const p of topic.partitions) p.setConfig(config);
  }

  delete(name: string): void {
    const topic = this.topics.get(name);
    if (!topic) throw new TopicError('UNKNOWN_TOPIC_OR_PARTITION', `topic "${name}" does not exist`);
    this.topics.delete(name);
    for (const p of topic.partitions) p.close();
    const dir = path.join(this.root, name);
    fs.mkdirSync(this.trash, { recursive: true });
    // A short name: a 249-character topic plus a suffix would exceed NAME_MAX (255).
    const gone = path.join(this.trash, `${Date.now()}-${this.trashed++}`);
    fs.renameSync(dir, gone);
    syncDir(this.root);
    fs.rm(gone, { recursive: true, force: true }, () => undefined);
  }

  /** Ensures every partition with unsynced appends is in the next group-commit pass. */
  markDirty(log: PartitionLog): void {
    this.commit.markDirty(log);
  }

  allPartitions(): PartitionLog[] {
    return [...this.topics.values()].flatMap((t) => t.partitions);
  }

  close(): void {
    for (const p of this.allPartitions()) p.close();
  }
}
