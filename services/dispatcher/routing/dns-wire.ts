/**
 * One DNS query on the wire, over UDP or TCP, each bounded by a timeout. Messages are encoded and
 * decoded by dns2's Packet; the sockets are handled here because dns2's client has no timeout over
 * TCP and its parser reads a hostile reply's claimed 65,535 records for seconds of CPU.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import DNS from 'dns2';

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME';

/** A resource record as dns2 decodes it (fields by type). */
export interface ResourceRecord {
  name: string;
  type: number;
  ttl: number;
  address?: string;
  exchange?: string;
  priority?: number;
  domain?: string;
  data?: string | string[];
}

export const TYPE_CODE: Record<RecordType, number> = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };

// dns2's typings do not describe decoded packets; this is the part read here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Packet = DNS.Packet as any;

export interface WireReply {
  header: { tc: number; rcode: number };
  answers?: ResourceRecord[];
}

export const NOERROR = 0;
export const NXDOMAIN = 3;

function queryPacket(name: string, type: RecordType): { id: number; body: Buffer } {
  const query = new Packet();
  query.header.id = randomInt(0x10000);
  query.header.rd = 1;
  query.questions.push({ name, type: TYPE_CODE[type], class: 1 });
  return { id: query.header.id as number, body: query.toBuffer() as Buffer };
}

/**
 * Parses a reply, refusing one whose counts cannot fit its size: dns2's parser would otherwise
 * read 65,535 records past the end of a 40-byte datagram — seconds of CPU per hostile reply.
 */
export function parseReply(data: Buffer): WireReply {
  const malformed = (why: string) => Object.assign(new Error(`malformed DNS reply: ${why}`), { code: 'EMALFORMED' });
  if (data.length < 12) throw malformed('shorter than a header');
  const qd = data.readUInt16BE(4);
  const rrs = data.readUInt16BE(6) + data.readUInt16BE(8) + data.readUInt16BE(10);
  // A question takes at least 5 bytes (root name, type, class), a record at least 11.
  if (12 + qd * 5 + rrs * 11 > data.length) throw malformed(`${qd} questions and ${rrs} records in ${data.length} bytes`);
  let reply: WireReply;
  try {
    reply = Packet.parse(data) as WireReply;
  } catch (err) {
    throw malformed((err as Error).message);
  }
  // dns2 stops quietly at a record it cannot read (e.g. a bad compression pointer): a reply with
  // fewer answers than its header promises is garbage, not an empty answer (which would bounce).
  const promised = data.readUInt16BE(6);
  if (!reply.header.tc && (reply.answers?.length ?? 0) !== promised) throw malformed(`${promised} answers promised, ${reply.answers?.length ?? 0} readable`);
  return reply;
}

function timedOut(ms: number): Error {
  return Object.assign(new Error(`DNS query timed out after ${ms}ms`), { code: 'ETIMEDOUT' });
}

/** One query over UDP; replies from elsewhere or with another id are ignored until the timeout. */
export function udpQuery(host: string, port: number, name: string, type: RecordType, timeoutMs: number): Promise<WireReply> {
  const { id, body } = queryPacket(name, type);
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise<WireReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(timedOut(timeoutMs)), timeoutMs);
    socket.on('message', (msg, rinfo) => {
      if (rinfo.port !== port || msg.length < 2 || msg.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      try {
        resolve(parseReply(msg));
      } catch (err) {
        reject(err);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.send(body, port, host);
  }).finally(() => socket.close());
}

/** One query over TCP (after a truncated UDP reply), bounded by `timeoutMs`. */
export function tcpQuery(host: string, port: number, name: string, type: RecordType, timeoutMs: number): Promise<WireReply> {
  const { body } = queryPacket(name, type);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  const socket = net.connect({ host, port });
  return new Promise<WireReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(timedOut(timeoutMs)), timeoutMs);
    let buf = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.on('error', fail);
    socket.on('end', () => fail(Object.assign(new Error('DNS server closed the TCP connection before a full reply'), { code: 'EMALFORMED' })));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      clearTimeout(timer);
      try {
        resolve(parseReply(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(Buffer.concat([len, body]));
  }).finally(() => socket.destroy());
}
