/**
 * A dispatcher under test: a fresh embedded broker, a scripted SMTP sink as the relay, the
 * dispatcher started in-process against both, and a reader on events, retry and dead topics.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import pino from 'pino';
import { loadPostlineConfig, type PostlineConfig } from '../../shared/config.js';
import { EmailEventContract, type EmailEvent, type EventType } from '../../shared/contracts/email-event.js';
import { EmailReadyForDispatchContract, type EmailReadyForDispatch } from '../../shared/contracts/email-ready-for-dispatch.js';
import { RETRY_TIERS, Topics, type RetryTier } from '../../shared/topics.js';
import { startDispatcher, type RunningDispatcher } from '../../services/dispatcher/main.js';
import { startTestBroker, uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../helpers/smtp-sink.js';
import { TopicReader } from '../helpers/topic-reader.js';

export interface Harness {
  broker: TestBroker;
  sink: SmtpSink;
  config: PostlineConfig;
  dispatcher: RunningDispatcher;
  reader: TopicReader;
  producer: Producer;
  /** Produces records to their priority's dispatch topic, keyed by domain. */
  produce(records: EmailReadyForDispatch[]): Promise<void>;
  events(type?: EventType): EmailEvent[];
  waitForEvents(n: number, type: EventType, timeoutMs?: number): Promise<EmailEvent[]>;
  /** Records on email.retry.<tier> (default 1m). */
  retries(tier?: RetryTier): EmailReadyForDispatch[];
  /** Stops the dispatcher and starts a new one with the same configuration (same groups). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(sinkOpts: SmtpSinkOptions = {}, overrides: Record<string, unknown> = {}): Promise<Harness> {
  const broker = await startTestBroker();
  const sink = await startSmtpSink({ greetingDelay: false, ...sinkOpts });
  const config = loadPostlineConfig({
    env: {},
    overrides: {
      'kafka.brokers': [broker.bootstrap],
      'kafka.partitions': 2,
      'log.level': 'silent',
      'dispatcher.groupId': uniqueName('dispatcher'),
      'dispatcher.relay.host': sink.host,
      'dispatcher.relay.port': sink.port,
      'dispatcher.relay.ignoreTLS': true,
      'dispatcher.fleet.warmConnections': 1,
      'dispatcher.connectionTimeoutMs': 2000,
      'dispatcher.greetingTimeoutMs': 2000,
      'dispatcher.socketTimeoutMs': 5000,
      'dispatcher.fetchMaxWaitMs': 100,
      ...overrides,
    },
  });
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  let dispatcher = await startDispatcher(config, { logger, ops: false });
  const reader = await new TopicReader(broker.bootstrap, [Topics.events, ...RETRY_TIERS.map((t) => Topics.retry(t)), Topics.dead]).start();
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();

  const events = (type?: EventType): EmailEvent[] =>
    reader.records
      .filter((r) => r.topic === Topics.events)
      .map((r) => EmailEventContract.decode(r.message.value))
      .filter((e) => !type || e.type === type);

  return {
    broker,
    sink,
    config,
    get dispatcher() {
      return dispatcher;
    },
    reader,
    producer,
    async produce(records) {
      const byTopic = new Map<string, EmailReadyForDispatch[]>();
      for (const r of records) byTopic.set(Topics.dispatch(r.priority), [...(byTopic.get(Topics.dispatch(r.priority)) ?? []), r]);
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, rs]) => ({ topic, messages: rs.map((r) => ({ key: r.domain, value: EmailReadyForDispatchContract.encode(r) })) })),
      });
    },
    events,
    async waitForEvents(n, type, timeoutMs = 15_000) {
      return waitFor(() => (events(type).length >= n ? events(type) : undefined), timeoutMs, `${n} ${type} events (have ${events(type).length})`);
    },
    retries: (tier = '1m') => reader.records.filter((r) => r.topic === Topics.retry(tier)).map((r) => EmailReadyForDispatchContract.decode(r.message.value)),
    async restart() {
      await dispatcher.close();
      dispatcher = await startDispatcher(config, { logger, ops: false });
    },
    async close() {
      await dispatcher.close();
      await reader.stop();
      await producer.disconnect();
      await sink.close();
      await broker.destroy();
    },
  };
}
