/** The sender-domain policy lives in shared/ (the renderer checks it too, for records produced straight to Kafka). */
export { ANY_SENDER_DOMAIN, configuredSenderDomains, senderDomainProblem, type SenderDomainPolicy } from '../../shared/sender-domains.js';
