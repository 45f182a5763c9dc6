/**
 * librdkafka (through kcat) against the embedded broker: metadata, produce with keys, headers,
 * partitions and gzip, consume from beginning/end/an offset, offset queries by time, the
 * idempotent producer, CRC checking, and consumer groups that rebalance and resume from their
 * committed offsets. Cross-client checks produce with one client and consume with the other.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AssignerProtocol, CompressionTypes, type Admin, type Kafka, type Producer } from 'kafkajs';
import { uniqueName, waitFor, type TestBroker } from '../helpers/broker.js';
import { consumeAll, startBrokerWithClients } from './support/kafkajs-clients.js';
import { KCAT, assertKcatInstalled, kcatOk } from './support/kcat.js';

let broker: TestBroker;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;
const children: ChildProcess[] = [];

before(async () => {
  ({ broker, kafka, admin, producer } = await startBrokerWithClients());
});

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
  }
  await producer.disconnect();
  await admin.disconnect();
  await broker.destroy();
});

const b = (): string[] => ['-b', broker.bootstrap];

async function topic(partitions = 1): Promise<string> {
  const name = uniqueName('kcat');
  await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }] });
  return name;
}

/** kcat -C output with one `partition|offset|key|value|headers` line per record. */
async function kcatRead(t: string, extra: string[] = []): Promise<string[]> {
  const out = await kcatOk([...b(), '-C', '-t', t, '-e', '-q', '-f', '%p|%o|%k|%s|%h\n', ...extra]);
  return out.split('\n').filter(Boolean);
}

test('kcat is installed (apt-get install kcat)', () => {
  assertKcatInstalled();
});

describe('metadata', () => {
  test('-L lists the broker and every partition', async () => {
    assertKcatInstalled();
    const t = await topic(3);
    const out = await kcatOk([...b(), '-L', '-t', t]);
    assert.match(out, new RegExp(`broker 1 at ${broker.bootstrap.replace('.', '\\.')}`));
    assert.match(out, new RegExp(`topic "${t}" with 3 partitions`));
    for (const p of [0, 1, 2]) assert.match(out, new RegExp(`partition ${p}, leader 1, replicas: 1, isrs: 1`));
  });

  test('-L -J is JSON describing brokers and topics', async () => {
    assertKcatInstalled();
    const t = await topic(2);
    const meta = JSON.parse(await kcatOk([...b(), '-L', '-J'])) as {
      controllerid: number;
      brokers: Array<{ id: number; name: string }>;
      topics: Array<{ topic: string; partitions: Array<{ partition: number; leader: number; replicas: Array<{ id: number }>; isrs: Array<{ id: number }> }> }>;
    };
    assert.equal(meta.controllerid, 1);
    assert.deepEqual(meta.brokers, [{ id: 1, name: broker.bootstrap }]);
    const mine = meta.topics.find((x) => x.topic === t);
    assert.deepEqual(mine?.partitions, [
      { partition: 0, leader: 1, replicas: [{ id: 1 }], isrs: [{ id: 1 }] },
      { partition: 1, leader: 1, replicas: [{ id: 1 }], isrs: [{ id: 1 }] },
    ]);
  });
});

describe('produce with kcat', () => {
  test('-P -K: -H -p -z gzip: keys, headers, the chosen partition; kafkajs reads them back', async () => {
    assertKcatInstalled();
    const t = await topic(3);
    const lines = Array.from({ length: 25 }, (_, i) => `key-${i}:value ${i} with: colons`).join('\n');
    await kcatOk([...b(), '-P', '-t', t, '-K:', '-H', 'source=kcat', '-H', 'trace=abc', '-p', '2', '-z', 'gzip'], { input: `${lines}\n` });
    const got = await consumeAll(kafka, t, 25);
    assert.ok(got.every((m) => m.partition === 2));
    assert.deepEqual(
      got.map((m) => [m.offset, m.key, m.value, m.headers.source, m.headers.trace]),
      Array.from({ length: 25 }, (_, i) => [i, `key-${i}`, `value ${i} with: colons`, 'kcat', 'abc']),
    );
    assert.deepEqual(await kcatRead(t, ['-p', '2', '-o', '24']), ['2|24|key-24|value 24 with: colons|source=kcat,trace=abc']);
  });

  // snappy, lz4 and zstd (and whether gzip is really compressed): compression.test.ts.

  test('-X enable.idempotence=true: every line stored exactly once, in order', async () => {
    assertKcatInstalled();
    const t = await topic(1);
    const input = `${Array.from({ length: 200 }, (_, i) => `line-${i}`).join('\n')}\n`;
    const r = await kcatOk([...b(), '-P', '-t', t, '-X', 'enable.idempotence=true', '-X', 'linger.ms=5', '-X', 'batch.num.messages=20'], { input });
    assert.equal(r, '');
    const read = await kcatRead(t, ['-o', 'beginning']);
    assert.deepEqual(read, Array.from({ length: 200 }, (_, i) => `0|${i}||line-${i}|`));
    assert.equal((await admin.fetchTopicOffsets(t))[0].high, '200');
  });
});

describe('consume with kcat', () => {
  let t: string;
  before(async () => {
    t = await topic(1);
    await producer.send({
      topic: t,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, headers: { n: String(i), src: 'kafkajs' } })),
    });
    await producer.send({ topic: t, acks: -1, messages: [{ key: 'k6', value: 'v6' }, { key: null, value: 'v7' }] });
  });

  test('-o beginning -e reads kafkajs records (gzip batch and plain) with keys and headers', async () => {
    assertKcatInstalled();
    assert.deepEqual(await kcatRead(t, ['-o', 'beginning']), [
      ...Array.from({ length: 6 }, (_, i) => `0|${i}|k${i}|v${i}|n=${i},src=kafkajs`),
      '0|6|k6|v6|',
      '0|7||v7|',
    ]);
  });

  test('-o <offset>, -o -<n> (relative to the end) and -o end', async () => {
    assertKcatInstalled();
    assert.deepEqual((await kcatRead(t, ['-o', '3'])).map((l) => l.split('|')[1]), ['3', '4', '5', '6', '7'], 'offset 3 is inside the gzip batch');
    assert.deepEqual((await kcatRead(t, ['-o', '-2'])).map((l) => l.split('|')[1]), ['6', '7']);
    assert.deepEqual(await kcatRead(t, ['-o', 'end']), []);
  });

  test('-X check.crcs=true accepts every stored batch', async () => {
    assertKcatInstalled();
    const r = await kcatOk([...b(), '-C', '-t', t, '-o', 'beginning', '-e', '-X', 'check.crcs=true', '-f', '%o\n']);
    assert.deepEqual(r.split('\n').filter(Boolean), ['0', '1', '2', '3', '4', '5', '6', '7']);
  });
});

test('-Q finds offsets by timestamp (plain and gzip batches)', async () => {
  assertKcatInstalled();
  const t = await topic(2);
  const base = Date.now() - 100_000;
  for (const [partition, compression] of [[0, CompressionTypes.None], [1, CompressionTypes.GZIP]] as const) {
    await producer.send({ topic: t, acks: -1, compression, messages: Array.from({ length: 10 }, (_, i) => ({ partition, value: `r${i}`, timestamp: String(base + i * 1000) })) });
  }
  const query = async (partition: number, ts: number): Promise<string> => {
    const out = await kcatOk([...b(), '-Q', '-t', `${t}:${partition}:${ts}`]);
    const m = new RegExp(`${t} \\[${partition}\\] offset (-?\\d+)`).exec(out);
    assert.ok(m, out);
    return m[1];
  };
  for (const p of [0, 1]) {
    assert.equal(await query(p, base), '0');
    assert.equal(await query(p, base + 4_500), '5');
    assert.equal(await query(p, base + 9_000), '9');
    assert.equal(await query(p, base + 50_000), '-1', 'later than every record: -1 (end)');
  }
});

describe('consumer groups with kcat -G', () => {
  interface Member {
    memberId: string;
    partitions: number[];
  }
  async function members(groupId: string, t: string): Promise<{ state: string; members: Member[] }> {
    const { groups } = await admin.describeGroups([groupId]);
    return {
      state: groups[0].state,
      members: groups[0].members.map((m) => ({
        memberId: m.memberId,
        partitions: [...(AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[t] ?? [])].sort(),
      })),
    };
  }
  async function committedTotal(groupId: string, t: string): Promise<number> {
    const [res] = await admin.fetchOffsets({ groupId, topics: [t] });
    return res.partitions.reduce((n, p) => n + Math.max(Number(p.offset), 0), 0);
  }
  interface KcatMember {
    child: ChildProcess;
    /** Values this member printed (kcat -u: unbuffered, so they arrive as it consumes). */
    values: string[];
  }
  function startMember(groupId: string, t: string): KcatMember {
    const child = spawn(
      KCAT,
      [...b(), '-G', groupId, t, '-q', '-u', '-f', '%s\n', '-X', 'auto.offset.reset=earliest', '-X', 'session.timeout.ms=6000', '-X', 'heartbeat.interval.ms=200', '-X', 'max.poll.interval.ms=10000'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    const member: KcatMember = { child, values: [] };
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const lines = (pending + d).split('\n');
      pending = lines.pop() ?? '';
      member.values.push(...lines.filter(Boolean));
    });
    child.stderr!.resume();
    return member;
  }
  async function stopMember(m: KcatMember): Promise<void> {
    const exited = new Promise((r) => m.child.once('exit', r));
    m.child.kill('SIGTERM'); // kcat commits what it consumed and leaves the group on SIGTERM
    await exited;
  }
  const consumedAll = (ms: KcatMember[], from: number, to: number): boolean => {
    const seen = new Set(ms.flatMap((m) => m.values));
    for (let i = from; i < to; i++) if (!seen.has(`m${i}`)) return false;
    return true;
  };
  const produceRange = async (t: string, from: number, n: number): Promise<void> => {
    await producer.send({ topic: t, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ partition: (from + i) % 4, value: `m${from + i}` })) });
  };

  test('two members share the partitions, rebalance when one leaves, and a new member resumes from the commits', async () => {
    assertKcatInstalled();
    const t = await topic(4);
    const groupId = uniqueName('kcat-group');
    await produceRange(t, 0, 40);

    const a = startMember(groupId, t);
    await waitFor(async () => {
      const g = await members(groupId, t);
      return g.state === 'Stable' && g.members.length === 1 && g.members[0].partitions.length === 4;
    }, 20_000, 'member a owns all 4 partitions');
    await waitFor(() => consumedAll([a], 0, 40), 20_000, 'a consumes all 40');

    const bMember = startMember(groupId, t);
    await waitFor(async () => {
      const g = await members(groupId, t);
      return g.state === 'Stable' && g.members.length === 2 && g.members.every((m) => m.partitions.length === 2);
    }, 20_000, 'a and b own two partitions each');
    const split = (await members(groupId, t)).members.flatMap((m) => m.partitions).sort();
    assert.deepEqual(split, [0, 1, 2, 3]);
    const aBefore = a.values.length;
    await produceRange(t, 40, 40);
    await waitFor(() => consumedAll([a, bMember], 40, 80), 20_000, 'a and b consume the next 40 between them');
    assert.ok(a.values.length > aBefore && bMember.values.some((v) => Number(v.slice(1)) >= 40), 'both members took part');

    await stopMember(a);
    await waitFor(async () => {
      const g = await members(groupId, t);
      return g.state === 'Stable' && g.members.length === 1 && g.members[0].partitions.length === 4;
    }, 20_000, 'b takes over all 4 after a leaves');
    await produceRange(t, 80, 20);
    await waitFor(() => consumedAll([bMember], 80, 100), 20_000, 'b consumes the last 20');
    await stopMember(bMember);
    assert.equal((await members(groupId, t)).state, 'Empty');
    assert.equal(await committedTotal(groupId, t), 100, 'members commit what they consumed when they stop');

    // A new member starts from the committed offsets: it sees only what came after.
    await produceRange(t, 100, 8);
    const out = await kcatOk([...b(), '-G', groupId, t, '-e', '-q', '-X', 'auto.offset.reset=earliest', '-f', '%s\n'], { timeoutMs: 30_000 });
    assert.deepEqual(out.split('\n').filter(Boolean).sort(), Array.from({ length: 8 }, (_, i) => `m${100 + i}`).sort());
  });
});
