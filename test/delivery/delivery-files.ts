/**
 * The routing and shaping files of a dispatcher test on the fake internet: one mx route (MTA-STS
 * off) through the fake DNS and mail port, a `default` pool sending from 127.0.0.2, plus the
 * test's own pools and site rules. Returns the config overrides that name the files.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { FakeInternet } from '../helpers/fake-internet/index.js';

export type DeliveryFiles = {
  'dispatcher.routesFile': string;
  'dispatcher.shapingFile': string;
};

export function writeDeliveryFiles(dir: string, net: FakeInternet, opts: { pools?: Record<string, unknown>; sites?: Record<string, unknown> } = {}): DeliveryFiles {
  const routes = path.join(dir, 'routes.yaml');
  fs.writeFileSync(
    routes,
    YAML.stringify({
      dns: { servers: net.dns.servers, timeoutMs: 1000, blockLocalAddresses: false, smtpPort: net.smtpPort },
      routes: { direct: { kind: 'mx', mtaSts: false } },
      pools: { default: { route: 'direct', addresses: [{ address: '127.0.0.2', ehlo: 'mta2.postline.test' }] }, ...opts.pools },
    }),
  );
  const shaping = path.join(dir, 'shaping.yaml');
  fs.writeFileSync(shaping, YAML.stringify({ sites: opts.sites ?? {} }));
  return { 'dispatcher.routesFile': routes, 'dispatcher.shapingFile': shaping };
}
