/**
 * The rig of the direct-delivery parts of `delivery.bench.ts` (shaping, dns, isolation): the fake
 * internet (DNS server and provider SMTP servers on 127.0.0.x), the broker as a process, and
 * several `postline dispatcher` processes in one consumer group, started with a routing file
 * (one mx route with MTA-STS, one without; source address 127.0.0.2) and a shaping file. The
 * bench produces `EmailReadyForDispatch` records straight to `email.dispatch.<priority>`, keyed
 * by site with `routing/site-keys.ts` (what the renderer will use), so one dispatcher owns a site.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import YAML from 'yaml';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { ensureTopics } from '../../shared/kafka/client.js';
import { Topics, topicSpecs } from '../../shared/topics.js';
import { DnsResolver } from '../../services/dispatcher/routing/dns-resolver.js';
import { SiteKeys } from '../../services/dispatcher/routing/site-keys.js';
import { loadShapingRules } from '../../services/dispatcher/shaping/shaping-rules.js';
import { spawnBrokerProcess, tempDir, type BrokerProcess } from '../helpers/broker.js';
import { startFakeInternet, type FakeInternet } from '../helpers/fake-internet/index.js';
import { spawnStage, type StageProcess } from '../helpers/stage-process.js';
import { TopicReader } from '../helpers/topic-reader.js';
import { EmailEventContract, type EventType } from '../../shared/contracts/email-event.js';

/** The pool source address and its EHLO name. */
export const SOURCE = { address: '127.0.0.2', ehlo: 'mta.bench.postline.test' };
/** Pools of the routing file: `default` honours MTA-STS, `nosts` does not (same source address). */
export const POOL_STS = 'default';
export const POOL_NO_STS = 'nosts';

export interface DeliveryRigOptions {
  dispatchers: number;
  partitions: number;
  /** `sites:` of the shaping file (`dispatcher.shapingFile`). */
  shapingSites: Record<string, Record<string, number | null>>;
  dir: string;
  progress(message: string): void;
}

export interface DeliveryRig {
  net: FakeInternet;
  broker: BrokerProcess;
  dispatchers: StageProcess[];
  /** Base URLs of the dispatchers' ops servers. */
  opsUrls: string[];
  partitions: number;
  /** The site key of each domain, from the bench's own resolver (its queries reach the fake DNS too). */
  keys: SiteKeys;
  /** The last outcome event type (sent, deferred, bounced, failed) of each message so far, from email.events. */
  outcomes(): Map<string, EventType>;
  /**
   * Produces records keyed by their domain's site key (`acks: -1`, batches of 500). `lane`
   * 'second' uses a producer of its own (another service's traffic), so a flood produced there
   * does not queue the main lane's records behind its round trips.
   */
  produce(records: EmailReadyForDispatch[], lane?: 'main' | 'second'): Promise<void>;
  /** The dispatch topic partition a key lands on (kafkajs's default partitioner, as the producers use). */
  partitionOf(key: string): number;
  /**
   * Whether the dispatchers run a real shaper: their /metrics carry `postline_shaping_rate_limit`
   * (registered only with a TrafficShaper). False while main.ts wires NoShaping.
   */
  shaperWired(): Promise<boolean>;
  close(): Promise<void>;
}

/** A dispatch record for one recipient; the raw message is small (the bench measures delivery, not MIME). */
export function dispatchRecord(to: string, pool: string, priority: EmailReadyForDispatch['priority'] = 'transactional'): EmailReadyForDispatch {
  const messageId = randomUUID();
  return {
    schemaVersion: 1,
    messageId,
    tenant: 'bench',
    priority,
    domain: to.split('@')[1],
    pool,
    envelope: { from: 'bounces@bench.postline.test', to: [to] },
    raw: [`Message-ID: <${messageId}@bench.postline.test>`, 'From: Bench <news@bench.postline.test>', `To: ${to}`, 'Subject: delivery bench', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', `Hello ${to}.`, ''].join('\r\n'),
    acceptedAt: new Date().toISOString(),
    attempt: 1,
  };
}

export async function startDeliveryRig(o: DeliveryRigOptions): Promise<DeliveryRig> {
  const closers: Array<() => Promise<unknown>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    closers.length = 0;
  };
  try {
    const net = await startFakeInternet();
    closers.push(() => net.close());
    const routesFile = path.join(o.dir, 'routes.yaml');
    fs.writeFileSync(
      routesFile,
      YAML.stringify({
        dns: { servers: net.dns.servers, timeoutMs: 1000, blockLocalAddresses: false, smtpPort: net.smtpPort },
        routes: { direct: { kind: 'mx', mtaSts: true }, plain: { kind: 'mx', mtaSts: false } },
        pools: { [POOL_STS]: { route: 'direct', addresses: [SOURCE] }, [POOL_NO_STS]: { route: 'plain', addresses: [SOURCE] } },
      }),
    );
    const shapingFile = path.join(o.dir, 'shaping.yaml');
    fs.writeFileSync(shapingFile, YAML.stringify({ sites: o.shapingSites }));
    loadShapingRules(shapingFile); // a bad file fails here, not later in three processes
    const broker = await spawnBrokerProcess({ dataDir: tempDir('postline-bench-delivery-') });
    closers.push(async () => {
      await broker.kill('SIGTERM');
      fs.rmSync(broker.dataDir, { recursive: true, force: true });
    });
    const kafka = new Kafka({ brokers: [broker.bootstrap], clientId: 'bench-delivery', logLevel: logLevel.NOTHING, retry: { retries: 20, maxRetryTime: 2000 } });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, topicSpecs(o.partitions), 1);
    await admin.disconnect();
    const env: Record<string, string> = {
      POSTLINE_KAFKA_BROKERS: broker.bootstrap,
      POSTLINE_KAFKA_PARTITIONS: String(o.partitions),
      POSTLINE_KAFKA_CREATE_TOPICS: 'false',
      POSTLINE_LOG_LEVEL: 'info',
      POSTLINE_OPS_HOST: '127.0.0.1',
      POSTLINE_OPS_PORT: '0',
      POSTLINE_OPS_SHUTDOWN_GRACE_MS: '5000',
      POSTLINE_DISPATCHER_FETCH_MAX_WAIT_MS: '100',
      POSTLINE_DISPATCHER_ROUTES_FILE: routesFile,
      POSTLINE_DISPATCHER_SHAPING_FILE: shapingFile,
      ...net.childEnv(),
    };
    const dispatchers: StageProcess[] = [];
    closers.push(() => Promise.all(dispatchers.map((d) => d.kill('SIGTERM'))));
    // One after the other: each join rebalances the group, and parallel start-ups overload 2 cores.
    for (let i = 0; i < o.dispatchers; i++) {
      o.progress(`starting dispatcher ${i + 1} of ${o.dispatchers}`);
      dispatchers.push(await spawnStage('dispatcher', ['dispatcher'], env, { logFile: path.join(o.dir, `dispatcher-${i}.log`), timeoutMs: 120_000 }));
    }
    const opsUrls = await Promise.all(
      dispatchers.map(async (d) => (await d.waitForLine((l) => l.msg === 'ops server listening', 30_000, 'ops address')).ops as string),
    );
    const producers: Record<'main' | 'second', Producer> = {
      main: kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }),
      second: kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }),
    };
    for (const p of Object.values(producers)) {
      await p.connect();
      closers.push(() => p.disconnect());
    }
    const reader = await new TopicReader(broker.bootstrap, [Topics.events]).start();
    closers.push(() => reader.stop());
    const outcomes = new Map<string, EventType>();
    let cursor = 0;
    const keys = new SiteKeys({ resolver: new DnsResolver({ servers: net.dns.servers, timeoutMs: 1000, ttlFloorSeconds: 60, ttlCeilingSeconds: 86_400 }) });
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = Array.from({ length: o.partitions }, (_, i) => ({ partitionId: i, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    return {
      net,
      broker,
      dispatchers,
      opsUrls,
      partitions: o.partitions,
      keys,
      outcomes() {
        // Decoded once, incrementally: this is polled while messages flow.
        for (; cursor < reader.records.length; cursor++) {
          const e = EmailEventContract.decode(reader.records[cursor].message.value!);
          if (e.type !== 'accepted' && e.type !== 'rendered') outcomes.set(e.messageId, e.type);
        }
        return outcomes;
      },
      partitionOf: (key) => partitioner({ topic: Topics.dispatch('transactional'), partitionMetadata, message: { key, value: null } }),
      async produce(records, lane = 'main') {
        for (let i = 0; i < records.length; i += 500) {
          const chunk = records.slice(i, i + 500);
          const byTopic = new Map<string, Array<{ key: string; value: Buffer }>>();
          for (const r of chunk) {
            const key = (await keys.keysFor([r.domain], r.messageId)).get(r.domain)!;
            const topic = Topics.dispatch(r.priority);
            byTopic.set(topic, [...(byTopic.get(topic) ?? []), { key, value: EmailReadyForDispatchContract.encode(r) }]);
          }
          await producers[lane].sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
        }
      },
      async shaperWired() {
        const texts = await Promise.all(opsUrls.map(async (u) => (await fetch(`${u}/metrics`)).text()));
        return texts.every((t) => t.includes('postline_shaping_rate_limit'));
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
