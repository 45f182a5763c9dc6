/**
 * A line-by-line SMTP client over a raw socket, for the protocol edges nodemailer will not
 * produce (MAIL before AUTH, AUTH before STARTTLS, a SIZE over the limit, a message after a
 * refused one on the same connection). Each command resolves with the complete reply.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  code: number;
  text: string;
}

export class SmtpClient {
  private buffer = '';
  private waiting: Array<(r: Reply) => void> = [];
  private replies: Reply[] = [];
  private lines: string[] = [];
  closed = false;

  private constructor(private socket: net.Socket) {
    this.attach(socket);
  }

  /** Connects (implicit TLS when `tls`) and resolves with the greeting. */
  static async connect(port: number, opts: { tls?: boolean; localAddress?: string } = {}): Promise<{ client: SmtpClient; greeting: Reply }> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const plain = net.connect({ host: '127.0.0.1', port, localAddress: opts.localAddress }, () => {
        if (!opts.tls) return resolve(plain);
        const secure = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(secure));
        secure.once('error', reject);
      });
      const s = plain;
      s.once('error', reject);
    });
    const client = new SmtpClient(socket);
    return { client, greeting: await client.next() };
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => this.onData(d.toString('latin1')));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w({ code: 0, text: 'connection closed' });
    });
    socket.on('error', () => undefined);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let i: number;
    while ((i = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, i);
      this.buffer = this.buffer.slice(i + 2);
      this.lines.push(line.slice(4));
      // "250-..." continues; "250 ..." ends the reply.
      if (line[3] !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
        this.lines = [];
        const w = this.waiting.shift();
        if (w) w(reply);
        else this.replies.push(reply);
      }
    }
  }

  /** The next complete reply. */
  next(): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve({ code: 0, text: 'connection closed' });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Sends one command line and resolves with its reply. */
  cmd(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** Writes bytes without waiting for a reply (a message body). */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** STARTTLS and the upgrade; resolves with the STARTTLS reply. */
  async starttls(): Promise<Reply> {
    const reply = await this.cmd('STARTTLS');
    if (reply.code !== 220) return reply;
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: this.socket, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return reply;
  }

  /** AUTH PLAIN with `key` as the password. */
  authPlain(key: string, user = 'apikey'): Promise<Reply> {
    return this.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${key}`).toString('base64')}`);
  }

  /** DATA, the message (dot-stuffed, CRLF), and the final dot; resolves with the reply to the message. */
  async data(message: string | Buffer): Promise<Reply> {
    const go = await this.cmd('DATA');
    if (go.code !== 354) return go;
    const text = Buffer.isBuffer(message) ? message.toString('latin1') : message;
    const body = text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(Buffer.from(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}
