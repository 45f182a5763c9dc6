/**
 * What a record becomes before any HTTP: the endpoint book's count of endpoints (by which the
 * events consumer skips decoding while there is none), tenants whose names are prefixes of each
 * other kept apart, and a payload whose body is built only when an endpoint wants it — the same
 * bytes `webhookBody` gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage } from 'kafkajs';
import { Topics } from '../../shared/topics.js';
import { EndpointBook } from '../../shared/webhooks/endpoint-book.js';
import { webhookBody } from '../../shared/webhooks/webhook-message.js';
import { EMAIL_EVENT_VERSION, EmailEventContract, type EmailEvent } from '../../shared/contracts/email-event.js';
import { MemoryTable } from '../../test/webhooks/memory-endpoint-table.js';
import { deliveriesFor, payloadOf } from './record-deliveries.js';

const event = (tenant: string, type: EmailEvent['type'] = 'sent'): EmailEvent => ({
  schemaVersion: EMAIL_EVENT_VERSION,
  eventId: `ev-${tenant}-${type}`,
  type,
  messageId: 'msg-1',
  tenant,
  at: new Date(Date.now() + 1000).toISOString(),
  stage: 'test',
  recipients: ['ann@example.org'],
});
const record = (e: EmailEvent): KafkaMessage => ({ key: null, value: EmailEventContract.encode(e) }) as KafkaMessage;

test('the book counts endpoints through creates, updates and deletes, per tenant, prefix tenants apart', async () => {
  const book = new EndpointBook(new MemoryTable());
  assert.equal(book.size, 0);
  const a = await book.create('acme', { url: 'https://a.example/hook' });
  const b = await book.create('acme/eu', { url: 'https://b.example/hook', eventTypes: ['email.bounced'] });
  assert.equal(book.size, 2);
  await book.update('acme', a.id, { description: 'changed' });
  await book.disable(b.id, 'failing');
  assert.equal(book.size, 2, 'an update or a disabled endpoint is still one endpoint');
  assert.deepEqual([...book.endpointsOf('acme')].map((e) => e.id), [a.id]);
  assert.deepEqual([...book.endpointsOf('acme/eu')].map((e) => e.id), [b.id]);
  assert.equal(await book.remove('acme', b.id), false, "a tenant cannot delete another's endpoint");
  assert.equal(await book.remove('acme/eu', b.id), true);
  assert.equal(book.size, 1);
  assert.deepEqual([...book.endpointsOf('acme/eu')], []);
  await book.remove('acme', a.id);
  assert.equal(book.size, 0);
  // A book opened over a table that already holds endpoints counts them.
  const table = new MemoryTable();
  await new EndpointBook(table).create('acme', { url: 'https://a.example/hook' });
  assert.equal(new EndpointBook(table).size, 1);
});

test('a payload builds its body only when an endpoint wants the record, as webhookBody would', async () => {
  const book = new EndpointBook(new MemoryTable());
  await book.create('acme/eu', { url: 'https://b.example/hook', eventTypes: ['email.bounced'] });
  const e = event('acme/eu');
  const p = payloadOf(Topics.events, record(e));
  assert.deepEqual(deliveriesFor(p, book.endpointsOf('acme/eu'), new Date()), [], 'a sent event is not wanted');
  assert.equal(Object.getOwnPropertyDescriptor(p, 'built')?.value, undefined, 'no body was built');

  await book.create('acme', { url: 'https://a.example/hook' });
  const q = payloadOf(Topics.events, record(event('acme')));
  const [d] = deliveriesFor(q, book.endpointsOf('acme'), new Date());
  assert.equal(d.body, webhookBody('email.sent', new Date(q.timestamp), q.data));
  assert.equal(q.body, d.body);
  assert.equal(deliveriesFor(q, book.endpointsOf('acme/eu'), new Date()).length, 0, "another tenant's endpoint never gets it");
});
