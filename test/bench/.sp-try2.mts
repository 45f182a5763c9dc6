import Handlebars from 'handlebars';
import MailComposer from 'nodemailer/lib/mail-composer';
import { HTML_SOURCE, TEXT_SOURCE, templateData } from './send-path-workload.ts';
const html = Handlebars.compile(HTML_SOURCE); const text = Handlebars.compile(TEXT_SOURCE);
for (let k = 0; k < 3; k++) {
  let t = performance.now(); const N = 20000;
  for (let i = 0; i < N; i++) { html(templateData(i)); text(templateData(i)); }
  console.log('hbs', N / ((performance.now() - t) / 1000));
  const h = html(templateData(1)), x = text(templateData(1));
  t = performance.now(); const M = 5000;
  for (let i = 0; i < M; i++) await new MailComposer({ from: 'a@b.c', to: 'd@e.f', subject: 's', html: h, text: x }).compile().build();
  console.log('mc', M / ((performance.now() - t) / 1000));
  t = performance.now();
  for (let i = 0; i < M; i++) await new MailComposer({ from: 'a@b.c', to: 'd@e.f', subject: 's', text: 'hello world' }).compile().build();
  console.log('mc tiny', M / ((performance.now() - t) / 1000));
}
