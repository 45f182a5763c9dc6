/**
 * Best-effort message id and tenant of a record no stage could process, so its dead letter
 * and `failed` event can still name the message. Every Postline contract carries both at the
 * top level of its JSON value. Only plain, bounded strings without control characters are
 * trusted: these values end up in events, logs and analytics.
 */
const PLAUSIBLE = /^[^\u0000-\u001f\u007f]{1,128}$/;

export function recordIds(value: Buffer | null | undefined): { messageId?: string; tenant?: string } {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const { messageId, tenant } = parsed as Record<string, unknown>;
  return {
    ...(typeof messageId === 'string' && PLAUSIBLE.test(messageId) ? { messageId } : {}),
    ...(typeof tenant === 'string' && PLAUSIBLE.test(tenant) ? { tenant } : {}),
  };
}
