/**
 * The send-path benchmark's workload: one realistic transactional template (an order
 * confirmation: HTML with inline styles, a table of items, a plain-text part, a few variables),
 * the data for message i, and the same email in every form the pipeline takes it — an ingest
 * request body, an `EmailRequested` record, a templates directory for the renderer — plus the
 * raw-library rendering (Handlebars + nodemailer's MailComposer, no Postline code) that the
 * render stage is compared against. Rendered, a message is about 3 KB of MIME.
 */
import fs from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { EmailRequested } from '../../shared/contracts/email-requested.js';
import { EMAIL_REQUESTED_VERSION } from '../../shared/contracts/email-requested.js';

export const TEMPLATE_NAME = 'order-confirmation';
export const TENANT = 'bench';
export const FROM = { email: 'orders@shop.example', name: 'Example Shop' };
/** Recipients spread over this many domains, so dispatch records spread over partitions. */
export const RECIPIENT_DOMAINS = 50;

export const SUBJECT_SOURCE = 'Your order {{orderId}} is confirmed, {{firstName}}';

export const HTML_SOURCE = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Order {{orderId}}</title></head>
<body style="margin:0;padding:0;background:#f4f4f7;font-family:Helvetica,Arial,sans-serif;color:#333">
  <table role="presentation" width="100%" style="background:#f4f4f7"><tr><td align="center" style="padding:24px">
      <table role="presentation" width="600" style="background:#fff">
        <tr><td style="padding:24px 32px;border-bottom:1px solid #eaeaec">
          <h1 style="font-size:20px;margin:0">Thanks for your order, {{firstName}}!</h1>
          <p style="font-size:14px;line-height:20px;margin:8px 0 0">Order <strong>{{orderId}}</strong> was placed on {{placedAt}} and will ship to:</p>
          <p style="font-size:14px;line-height:20px;margin:8px 0 0">{{shipping.name}}<br>{{shipping.street}}<br>{{shipping.postcode}} {{shipping.city}}<br>{{shipping.country}}</p>
        </td></tr>
        <tr><td style="padding:16px 32px">
          <table role="presentation" width="100%" style="font-size:14px">
            <tr><th align="left">Item</th><th align="right">Qty</th><th align="right">Price</th></tr>
            {{#each items}}
            <tr><td>{{name}}</td><td align="right">{{qty}}</td><td align="right">{{price}}</td></tr>
            {{/each}}
            <tr><td colspan="2" align="right"><b>Total</b></td><td align="right"><b>{{total}}</b></td></tr>
          </table>
        </td></tr>
        <tr><td style="padding:16px 32px">
          <a href="https://shop.example/orders/{{orderId}}?utm_source=email&amp;utm_campaign=order-confirmation" style="background:#3869d4;color:#fff;padding:10px 18px">Track your order</a>
          {{#if loyaltyPoints}}<p style="font-size:13px;color:#51545e;margin:16px 0 0">You earned {{loyaltyPoints}} loyalty points with this order.</p>{{/if}}
        </td></tr>
        <tr><td style="padding:16px 32px;font-size:12px;color:#8e8e96;border-top:1px solid #eaeaec">
          Questions? Reply to this email or visit https://shop.example/help. Example Shop, 1 Market Street, Springfield.
        </td></tr>
      </table>
  </td></tr></table>
</body>
</html>
`;

export const TEXT_SOURCE = `Thanks for your order, {{firstName}}!

Order {{orderId}} was placed on {{placedAt}} and will ship to:
{{shipping.name}}, {{shipping.street}}, {{shipping.postcode}} {{shipping.city}}, {{shipping.country}}

{{#each items}}
- {{name}} x{{qty}}: {{price}}
{{/each}}
Total: {{total}}

Track your order: https://shop.example/orders/{{orderId}}
{{#if loyaltyPoints}}You earned {{loyaltyPoints}} loyalty points with this order.{{/if}}

Questions? Reply to this email or visit https://shop.example/help.
Example Shop, 1 Market Street, Springfield.
`;

const FIRST_NAMES = ['Ann', 'Bob', 'Chloé', 'Dmitri', 'Eve', 'Farah', 'Gus', 'Hana'];
const PRODUCTS = ['Espresso beans 1 kg', 'Ceramic pour-over dripper', 'Paper filters (100)', 'Burr grinder', 'Milk jug 600 ml', 'Travel mug'];

/** The template data of message `i` (varied, so no two renders are identical). */
export function templateData(i: number): Record<string, unknown> {
  const n = 2 + (i % 3);
  const items = Array.from({ length: n }, (_, k) => ({ name: PRODUCTS[(i + k) % PRODUCTS.length], qty: 1 + ((i + k) % 3), price: `€${(9.5 + ((i * 7 + k * 13) % 90)).toFixed(2)}` }));
  return {
    firstName: FIRST_NAMES[i % FIRST_NAMES.length],
    orderId: `SO-${String(100000 + i)}`,
    placedAt: '12 March 2026',
    shipping: { name: `${FIRST_NAMES[i % FIRST_NAMES.length]} Example`, street: `${1 + (i % 200)} High Street`, postcode: String(10000 + (i % 89999)), city: 'Springfield', country: 'Freedonia' },
    items,
    total: `€${(30 + (i % 400)).toFixed(2)}`,
    loyaltyPoints: i % 2 === 0 ? 10 + (i % 50) : 0,
  };
}

/** Recipient of message `i` in a run tagged `tag` (unique, so no record is mistaken for a repeat). */
export function recipient(tag: string, i: number): string {
  return `customer.${tag}.${i}@d${i % RECIPIENT_DOMAINS}.example`;
}

/** `POST /v1/emails` body of message `i`. */
export function ingestBody(tag: string, i: number): Record<string, unknown> {
  return { from: `${FROM.name} <${FROM.email}>`, to: [recipient(tag, i)], template: { name: TEMPLATE_NAME, data: templateData(i) }, tags: ['order'] };
}

/** The `EmailRequested` record ingest would produce for message `i`. */
export function emailRequested(tag: string, i: number, acceptedAt: string): EmailRequested {
  return {
    schemaVersion: EMAIL_REQUESTED_VERSION,
    messageId: `bench-${tag}-${i}`,
    tenant: TENANT,
    acceptedAt,
    priority: 'transactional',
    from: FROM,
    to: [{ email: recipient(tag, i) }],
    template: { name: TEMPLATE_NAME, data: templateData(i) },
    tags: ['order'],
  };
}

/** Writes the template as the renderer's templates directory expects it; returns the directory. */
export function writeTemplatesDir(root: string): string {
  const dir = path.join(root, 'templates');
  fs.mkdirSync(path.join(dir, TEMPLATE_NAME), { recursive: true });
  fs.writeFileSync(path.join(dir, TEMPLATE_NAME, 'subject.hbs'), SUBJECT_SOURCE);
  fs.writeFileSync(path.join(dir, TEMPLATE_NAME, 'html.hbs'), HTML_SOURCE);
  fs.writeFileSync(path.join(dir, TEMPLATE_NAME, 'text.hbs'), TEXT_SOURCE);
  return dir;
}

/** What the raw renderers take from a request: its id, its recipient and its template data. */
export type RawRenderInput = Pick<EmailRequested, 'messageId' | 'to'> & { template: { data?: Record<string, unknown> } };

/**
 * Handlebars + MailComposer as a developer would use them directly: templates compiled once,
 * then per message render the three parts and build the MIME. No Postline code. Renders from a
 * request's fields (the plain kafkajs renderer renders what it consumed).
 */
export function rawRequestRenderer(): (req: RawRenderInput) => Promise<Buffer> {
  const subject = Handlebars.compile(SUBJECT_SOURCE, { noEscape: true });
  const html = Handlebars.compile(HTML_SOURCE);
  const text = Handlebars.compile(TEXT_SOURCE, { noEscape: true });
  const date = new Date();
  return (req) => {
    const data = req.template.data ?? {};
    const composer = new MailComposer({
      from: FROM,
      to: req.to[0].email,
      subject: subject(data),
      html: html(data),
      text: text(data),
      messageId: `<${req.messageId}@shop.example>`,
      date,
    });
    return composer.compile().build();
  };
}

/** The raw renderer for message `i` of a run tagged `tag` (the data of `emailRequested(tag, i)`). */
export function rawRenderer(): (tag: string, i: number) => Promise<Buffer> {
  const render = rawRequestRenderer();
  return (tag, i) => render({ messageId: `bench-${tag}-${i}`, to: [{ email: recipient(tag, i) }], template: { data: templateData(i) } });
}
