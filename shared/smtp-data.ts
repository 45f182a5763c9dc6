/** A DATA stream of smtp-server read into memory within a size limit: shared by the SMTP listeners (inbound, the submission gateway). */
import type { SMTPServerDataStream } from 'smtp-server';

/**
 * Reads the DATA stream keeping at most `max` bytes; the rest is read and dropped (smtp-server
 * answers 552). 'too-large' past the limit, 'broken' when the connection failed mid-message.
 */
export function collectMessage(stream: SMTPServerDataStream, max: number): Promise<Buffer | 'too-large' | 'broken'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let over = false;
    stream.on('data', (c: Buffer) => {
      if (over) return;
      bytes += c.length;
      if (bytes > max) {
        over = true;
        chunks.length = 0;
      } else chunks.push(c);
    });
    // The connection's own error is reported on the server; the message is given up.
    stream.on('error', () => resolve('broken'));
    stream.on('end', () => resolve(over || stream.sizeExceeded ? 'too-large' : Buffer.concat(chunks)));
  });
}
