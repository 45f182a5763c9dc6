/**
 * Opens the administration directory over `email.admin`: a CompactedTable (every replica reads
 * the whole topic and stays subscribed) feeding an AdminDirectory, resolved once the table has
 * read the topic to its end — so a freshly started replica already knows every key, revocation
 * and sender domain. Used by ingest (API keys, `/v1/admin`, sender domains), analytics (read-API
 * keys), the SMTP gateway (AUTH keys, sender domains) and the renderer (sender domains).
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CompactedTable } from '../kafka/compacted-table.js';
import type { BatchingProducer } from '../kafka/batching-producer.js';
import { Topics } from '../topics.js';
import { AdminRecordContract, type AdminRecord } from '../contracts/admin-record.js';
import { AdminDirectory, type AdminDirectoryOptions } from './admin-directory.js';
import { ApiKeyStore, type ApiKey } from '../http/api-keys.js';
import type { Runtime } from '../service-runtime.js';

export interface OpenAdminDirectoryOptions extends AdminDirectoryOptions {
  kafka: Kafka;
  producer: BatchingProducer;
  logger: Logger;
  /** Defaults to `email.admin`. */
  topic?: string;
  /** Longest wait for the topic to be read to its end (default 30 s). */
  loadTimeoutMs?: number;
}

export interface OpenedAdminDirectory {
  directory: AdminDirectory;
  stop(): Promise<void>;
}

export async function openAdminDirectory(opts: OpenAdminDirectoryOptions): Promise<OpenedAdminDirectory> {
  let directory: AdminDirectory | undefined;
  const table = new CompactedTable<AdminRecord>({
    kafka: opts.kafka,
    producer: opts.producer,
    topic: opts.topic ?? Topics.admin,
    logger: opts.logger,
    decode: (value) => AdminRecordContract.decode(value),
    encode: (value) => AdminRecordContract.encode(value),
    onChange: (key, value) => directory?.apply(key, value),
  });
  directory = new AdminDirectory(table, opts);
  // Never the key or its digest: the id says which key.
  directory.onUsedWriteError = (err, keyId) => opts.logger.warn({ err, keyId }, 'could not record an API key\'s last use; trying again on its next use');
  try {
    await table.start(opts.loadTimeoutMs);
  } catch (err) {
    await table.stop().catch(() => undefined);
    throw err;
  }
  return { directory, stop: () => table.stop() };
}

/**
 * A stage's API keys: the bootstrap keys of its configuration plus the administered ones of
 * `email.admin` (read to its end first; revocations seen live). The directory's table stops with
 * the stage; when it cannot be read, the stage's runtime is shut down and the error rethrown.
 */
export async function openStageApiKeys(rt: Pick<Runtime, 'kafka' | 'producer' | 'logger' | 'shutdown' | 'config'>, bootstrapKeys: ApiKey[]): Promise<{ admin: OpenedAdminDirectory; apiKeys: ApiKeyStore }> {
  const { admin: settings } = rt.config;
  let admin: OpenedAdminDirectory;
  try {
    admin = await openAdminDirectory({ kafka: rt.kafka, producer: rt.producer, logger: rt.logger, lastUsedIntervalMs: settings.lastUsedIntervalMs, loadTimeoutMs: settings.loadTimeoutMs });
  } catch (err) {
    await rt.shutdown.run();
    throw err;
  }
  rt.shutdown.add('stop admin table', () => admin.stop());
  return { admin, apiKeys: new ApiKeyStore(bootstrapKeys, admin.directory) };
}
