/**
 * Structured logs (pino) with the fixed field names used across Postline: messageId, tenant,
 * route, host, attempt, topic, partition, offset. Secrets are redacted at the logger, so a
 * careless `logger.info({ config })` still never prints a password or API key.
 */
import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

const REDACT = [
  'password',
  '*.password',
  '*.*.password',
  'pass',
  '*.pass',
  '*.*.pass',
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
  '*.secret',
  'secret',
  '*.signingSecret',
];

export interface LoggerConfig {
  level: string;
  /** Pretty single-line output for humans (npm start); JSON otherwise. */
  pretty?: boolean;
}

export function createLogger(service: string, config: LoggerConfig, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    name: service,
    level: config.level,
    base: { service },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(options, destination ?? defaultDestination());
}

/**
 * Under `postline start` stdout is a pipe to the launcher. Should the launcher die, writes fail
 * with EPIPE, and pino's file-descriptor writer retries a failed flush forever at exit (so the
 * stage could never finish shutting down). Node's own stdout stream reports the error instead,
 * which is ignored: with the launcher gone there is nobody to read the logs.
 */
export function defaultDestination(env: NodeJS.ProcessEnv = process.env): pino.DestinationStream {
  if (env.POSTLINE_SUPERVISED !== '1') return pino.destination({ fd: 1, sync: true });
  process.stdout.on('error', () => undefined);
  return process.stdout;
}
