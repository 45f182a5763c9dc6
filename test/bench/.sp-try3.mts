import Handlebars from 'handlebars';
import MailComposer from 'nodemailer/lib/mail-composer';
import { HTML_SOURCE, TEXT_SOURCE, templateData } from './send-path-workload.ts';
const html = Handlebars.compile(HTML_SOURCE); const text = Handlebars.compile(TEXT_SOURCE);
const h = html(templateData(1)), x = text(templateData(1));
for (let k = 0; k < 4; k++) {
  const c0 = process.cpuUsage(); let t = performance.now(); const M = 3000;
  for (let i = 0; i < M; i++) await new MailComposer({ from: 'a@b.c', to: 'd@e.f', subject: 's', html: h, text: x }).compile().build();
  const c = process.cpuUsage(c0); const wall = (performance.now() - t) / 1000;
  console.log('mc', (M / wall).toFixed(0), '/s wall;', (M / ((c.user + c.system) / 1e6)).toFixed(0), '/cpu-s');
}
