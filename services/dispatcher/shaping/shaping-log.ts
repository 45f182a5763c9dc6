/** Logs of traffic shaping, subscribed to the shaper's events (fixed field names). */
import type { Logger } from 'pino';
import type { TrafficShaper } from './shaper.js';

export function logShaping(logger: Logger, shaper: TrafficShaper): void {
  shaper.on('shaping-change', (e) =>
    logger.warn({ source: e.source, site: e.site, from: e.from, to: e.to, reason: e.reason }, e.reason === 'recovered' ? 'shaping limits recovering' : 'shaping limits lowered'),
  );
  shaper.on('source-paused', (e) =>
    logger.warn({ source: e.target, kind: e.kind, bounceRate: e.rate, sample: e.sample, until: new Date(e.until).toISOString() }, `${e.kind === 'pool' ? 'pool' : 'source address'} paused: recipient bounce rate too high`),
  );
  shaper.on('source-resumed', (e) => logger.info({ source: e.target, kind: e.kind, reason: e.reason }, `${e.kind === 'pool' ? 'pool' : 'source address'} resumed`));
  shaper.on('warmup-capped', (u) => logger.info({ source: u.source, day: u.day, cap: u.cap }, 'warm-up cap reached for today; traffic moves to the pool\'s other addresses'));
}
