/**
 * `postline <command>`: one entry point for every service, so one image and one binary run
 * any stage (`postline broker`, later `postline ingest`, `postline renderer`, ...).
 */
const commands: Record<string, { describe: string; load: () => Promise<{ main(argv: string[]): Promise<void> }> }> = {
  broker: { describe: 'run the embedded Kafka-compatible broker', load: () => import('./broker/main.js') },
  start: { describe: 'run the whole pipeline on the embedded default (npm start)', load: () => import('./embedded/main.js') },
  stages: { describe: 'run several stages in one process: stages renderer,dispatcher,... (what start does)', load: () => import('./embedded/stage-host.js') },
  renderer: { describe: 'render templates and MIME, one dispatch record per recipient domain', load: () => import('./renderer/main.js') },
  dispatcher: { describe: 'send dispatch records to the SMTP relay over pooled connections', load: () => import('./dispatcher/main.js') },
  ingest: { describe: 'run the send API (POST /v1/emails)', load: () => import('./ingest/main.js') },
  inbound: { describe: 'receive bounces, complaints (ARF) and mailto unsubscribes for the bounce domain over SMTP', load: () => import('./inbound/main.js') },
  tracker: { describe: 'serve the open pixel and signed click redirects; publish opened and clicked events', load: () => import('./tracker/main.js') },
  'smtp-gateway': { describe: 'SMTP submission (587 STARTTLS, 465 TLS) with an API key as the password, into the send path', load: () => import('./smtp-gateway/main.js') },
  analytics: { describe: 'run the ClickHouse sink for email.events and the read API', load: () => import('./analytics/main.js') },
  migrate: { describe: 'apply pending ClickHouse migrations, then exit', load: () => import('./migrate-command.js') },
  topics: { describe: 'create or print Postline topics (create | list | strimzi)', load: () => import('./topics-command.js') },
  config: { describe: 'print the configuration reference (markdown | env | configmap)', load: () => import('./config-command.js') },
  webhooks: { describe: 'deliver events and inbound mail to the tenants\' webhook endpoints, signed (Standard Webhooks), with retries', load: () => import('./webhooks/main.js') },
  scheduler: { describe: 'move retry records back to dispatch when due', load: () => import('./scheduler/main.js') },
  dkim: { describe: 'DKIM keys: dkim keygen --domain D --selector S [--type rsa|ed25519] | dkim list', load: () => import('./dkim-command.js') },
  domains: { describe: 'sender domains: domains add|list|remove (over the API) | domains check D [--selector S] [--address IP] (SPF, DKIM, DMARC, PTR)', load: () => import('./domains-command.js') },
  tenants: { describe: 'tenants over the API (admin key): tenants create NAME | tenants list', load: () => import('./admin/tenants-command.js') },
  keys: { describe: 'API keys over the API (admin key): keys create --tenant T --name N [--scope S] | keys list | keys revoke ID', load: () => import('./admin/keys-command.js') },
  suppressions: { describe: 'the tenant\'s suppression list over the API: suppressions list | add A | remove A | import FILE', load: () => import('./suppressions/command.js') },
  dead: { describe: 'list and replay dead letters (email.dead): dead list | dead replay --id … | --since …', load: () => import('./dead-letters/command.js') },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(12)} ${c.describe}`);
  return `usage: postline <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'postline <command> --help' for a command's options.`;
}

const [name, ...rest] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  process.stderr.write(`${name && name !== '--help' && name !== '-h' ? `unknown command "${name}"\n\n` : ''}${usage()}\n`);
  process.exit(name === '--help' || name === '-h' ? 0 : 2);
}
const mod = await command.load();
await mod.main(rest);
