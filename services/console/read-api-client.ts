/**
 * The console reads messages and timelines from the analytics read API (`ingest.readApiUrl`)
 * exactly as an API client would: the session's key as the bearer token, so analytics applies
 * its own tenant scoping and scope check (an admin's tenant switch is the `Postline-Tenant`
 * header, which analytics accepts from admin keys only). Its error body's message is shown.
 */
import { PermanentError } from '../../shared/errors.js';

export class ReadApiError extends PermanentError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('READ_API', message);
  }
}

/**
 * GET `pathAndQuery` as `key`. `asTenant`: the tenant an admin switched to, sent as the read
 * API's `Postline-Tenant` override (analytics refuses it from a key without `admin`).
 */
export async function readApi<T>(baseUrl: string, key: string, pathAndQuery: string, o: { asTenant?: string; timeoutMs?: number } = {}): Promise<T> {
  if (!baseUrl) throw new ReadApiError(503, 'the analytics read API is not configured (ingest.readApiUrl)');
  let res: Response;
  try {
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: 'application/json', ...(o.asTenant !== undefined ? { 'postline-tenant': o.asTenant } : {}) };
    res = await fetch(new URL(pathAndQuery, baseUrl), { headers, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
  } catch (err) {
    throw new ReadApiError(503, `the analytics read API did not answer: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => undefined)) as (T & { error?: { message?: string; fields?: Array<{ field: string; message: string }> } }) | undefined;
  if (!res.ok || body === undefined) {
    const fields = body?.error?.fields?.map((f) => `${f.field}: ${f.message}`).join('; ');
    throw new ReadApiError(res.status, `${body?.error?.message ?? `the analytics read API answered ${res.status}`}${fields ? ` (${fields})` : ''}`);
  }
  return body;
}
