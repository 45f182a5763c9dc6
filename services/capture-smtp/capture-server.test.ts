import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import nodemailer from 'nodemailer';
import { resetMidDataUntil } from '../../test/embedded/smtp-reset.js';
import { startCaptureServer } from './capture-server.js';

test('capture server: a client reset mid-DATA is logged and counted, and the next message is captured', { timeout: 30_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-'));
  const server = await startCaptureServer({ dir, smtpHost: '127.0.0.1', smtpPort: 0, httpHost: '127.0.0.1', httpPort: 0, logger: pino({ level: 'silent' }) });
  t.after(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // Before the fix the server's 'error' event had no listener: this threw in the process.
  await resetMidDataUntil(server.smtpPort, () => server.stats().connectionErrors > 0);
  assert.equal(server.stats().connectionErrors, 1);

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, secure: false, ignoreTLS: true });
  t.after(() => transport.close());
  const info = await transport.sendMail({ from: 'a@example.com', to: 'c@example.net', subject: 'after the reset', text: 'still here' });
  assert.match(info.response, /^250 /);
  assert.deepEqual(
    server.list().map((m) => m.subject),
    ['after the reset'],
    'only the complete message is listed',
  );
  assert.deepEqual(server.stats(), { captured: 1, connectionErrors: 1, storeErrors: 0 });
  const health = (await (await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).json()) as Record<string, unknown>;
  assert.equal(health.connectionErrors, 1);
});
