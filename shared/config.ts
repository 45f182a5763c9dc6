/**
 * Every Postline option, in one schema composed from the sections in `config/`: type, default
 * and meaning. Services receive the validated object from their `main.ts`; nothing else reads
 * the environment. The README's configuration reference and the Kubernetes ConfigMap are
 * generated from this schema.
 */
import { Type, type Static } from '@sinclair/typebox';
import { loadConfig, type LoadOptions } from './config-loader.js';
import { KafkaSection, LogSection, OpsSection } from './config/base.js';
import { IngestSection } from './config/ingest.js';
import { RendererSection } from './config/renderer.js';
import { DispatcherSection } from './config/dispatcher.js';
import { RetrySection } from './config/retry.js';
import { AnalyticsSection } from './config/analytics.js';
import { TracingSection } from './config/tracing.js';
import { FeedbackSection } from './config/feedback.js';
import { SuppressionsSection } from './config/suppressions.js';
import { ProviderFeedbackSection } from './config/provider-feedback.js';
import { AdminSection } from './config/admin.js';
import { InboundSection, InboundRoutesSection } from './config/inbound.js';
import { TrackingSection } from './config/tracking.js';
import { ScheduleSection } from './config/schedule.js';
import { SmtpGatewaySection } from './config/smtp-gateway.js';
import { WebhooksSection } from './config/webhooks.js';
import { ConsoleSection } from './config/console.js';

export { Priority, PRIORITIES } from './config/priority.js';

export const PostlineConfigSchema = Type.Object(
  {
    log: LogSection,
    kafka: KafkaSection,
    ops: OpsSection,
    ingest: IngestSection,
    renderer: RendererSection,
    dispatcher: DispatcherSection,
    retry: RetrySection,
    analytics: AnalyticsSection,
    tracing: TracingSection,
    feedback: FeedbackSection,
    suppressions: SuppressionsSection,
    providerFeedback: ProviderFeedbackSection,
    inbound: InboundSection,
    admin: AdminSection,
    inboundRoutes: InboundRoutesSection,
    tracking: TrackingSection,
    schedule: ScheduleSection,
    smtpGateway: SmtpGatewaySection,
    webhooks: WebhooksSection,
    console: ConsoleSection,
  },
  { additionalProperties: false },
);

export type PostlineConfig = Static<typeof PostlineConfigSchema>;

export function loadPostlineConfig(opts: LoadOptions = {}): PostlineConfig {
  return loadConfig(PostlineConfigSchema, opts);
}
