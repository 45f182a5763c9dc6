/**
 * The embedded default's SMTP "relay" when none is configured: accepts every message, keeps it
 * as an `.eml` file (the exact bytes received) with its envelope, and lists them over HTTP, so
 * `npm start` exercises the whole path for real without sending mail anywhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { SMTPServer } from 'smtp-server';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

export interface CapturedMessage {
  id: string;
  receivedAt: string;
  envelope: { from: string; to: string[] };
  size: number;
  subject: string;
  messageId: string;
}

export interface CaptureOptions {
  dir: string;
  smtpHost: string;
  smtpPort: number;
  httpHost: string;
  httpPort: number;
  logger: Logger;
  /** Largest message accepted (default 50 MiB). */
  maxMessageBytes?: number;
}

export interface CaptureStats {
  /** Messages captured since start (the listing also holds earlier runs'). */
  captured: number;
  /**
   * SMTP connections that ended in an error (a client reset mid-transaction, a socket
   * timeout): each is logged and counted, and the server serves on.
   */
  connectionErrors: number;
  /** Messages refused because they could not be stored (answered 451: the sender retries). */
  storeErrors: number;
}

export interface CaptureServer {
  smtpPort: number;
  httpPort: number;
  list(): CapturedMessage[];
  stats(): CaptureStats;
  close(): Promise<void>;
}

const INDEX = 'index.jsonl';

function headerValue(raw: Buffer, name: string): string {
  const head = raw.subarray(0, Math.min(raw.length, 64 * 1024)).toString('latin1').split(/\r?\n\r?\n/, 1)[0];
  const m = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return m ? m[1].replace(/\r?\n[ \t]+/g, ' ').trim() : '';
}

export function buildOutboxApp(list: () => CapturedMessage[], dir: string, stats?: () => CaptureStats): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/v1/dev/outbox', async () => ({ messages: list().slice().reverse() }));
  app.get<{ Params: { id: string } }>('/v1/dev/outbox/:id', async (req, reply) => {
    const id = req.params.id.replace(/\.eml$/, '');
    if (!/^[0-9a-f-]{36}$/.test(id)) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such message' } });
    const file = path.join(dir, `${id}.eml`);
    if (!fs.existsSync(file)) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such message' } });
    reply.header('content-type', 'message/rfc822');
    return fs.readFileSync(file);
  });
  app.get('/healthz', async () => ({ status: 'ok', ...stats?.() }));
  return app;
}

export async function startCaptureServer(opts: CaptureOptions): Promise<CaptureServer> {
  fs.mkdirSync(opts.dir, { recursive: true });
  const indexFile = path.join(opts.dir, INDEX);
  const messages: CapturedMessage[] = fs.existsSync(indexFile)
    ? fs.readFileSync(indexFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CapturedMessage)
    : [];
  const maxBytes = opts.maxMessageBytes ?? 50 * 1024 * 1024;
  const counts: CaptureStats = { captured: 0, connectionErrors: 0, storeErrors: 0 };

  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    size: maxBytes,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      // The connection's own error is reported on the server (below); the message is dropped.
      stream.on('error', () => undefined);
      stream.on('end', () => {
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          callback(Object.assign(new Error('552 message exceeds fixed maximum message size'), { responseCode: 552 }));
          return;
        }
        const raw = Buffer.concat(chunks);
        const entry: CapturedMessage = {
          id: randomUUID(),
          receivedAt: new Date().toISOString(),
          envelope: {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          size: raw.length,
          subject: headerValue(raw, 'Subject'),
          messageId: headerValue(raw, 'Message-ID'),
        };
        try {
          // The .eml first, then the index line: a crash never lists a message without its file.
          fs.writeFileSync(path.join(opts.dir, `${entry.id}.eml`), raw);
          fs.appendFileSync(indexFile, `${JSON.stringify(entry)}\n`);
        } catch (err) {
          // A full disk must not crash the launcher: refuse with a transient reply, the sender retries.
          counts.storeErrors++;
          opts.logger.error({ err, storeErrors: counts.storeErrors }, 'could not store a captured message; answered 451');
          callback(Object.assign(new Error('451 could not store the message, try again later'), { responseCode: 451 }));
          return;
        }
        messages.push(entry);
        counts.captured++;
        opts.logger.info({ captureId: entry.id, messageId: entry.messageId, to: entry.envelope.to.length, size: raw.length }, 'captured message');
        callback(null, `Message queued as ${entry.id}`);
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(opts.smtpPort, opts.smtpHost, () => {
      smtp.off('error', reject);
      resolve();
    });
  });
  // smtp-server reports every connection's socket error (a client killed mid-DATA resets the
  // connection: ECONNRESET) as an 'error' on the server; without a listener it would throw and
  // take the launcher, and with it every stage, down. Only that connection is affected.
  smtp.on('error', (err: Error & { code?: string; remoteAddress?: string }) => {
    counts.connectionErrors++;
    opts.logger.warn({ code: err.code, remote: err.remoteAddress, err: err.message, connectionErrors: counts.connectionErrors }, 'SMTP connection error; the server serves on');
  });
  const smtpPort = (smtp.server.address() as { port: number }).port;
  const app = buildOutboxApp(() => messages, opts.dir, () => ({ ...counts }));
  await app.listen({ host: opts.httpHost, port: opts.httpPort });
  const httpPort = (app.server.address() as { port: number }).port;
  opts.logger.info({ smtp: `${opts.smtpHost}:${smtpPort}`, outbox: `http://${opts.httpHost}:${httpPort}/v1/dev/outbox` }, 'capture SMTP server ready');

  return {
    smtpPort,
    httpPort,
    list: () => messages.slice(),
    stats: () => ({ ...counts }),
    async close() {
      await app.close();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    },
  };
}
