/**
 * The console reads messages and timelines from the analytics read API (`ingest.readApiUrl`)
 * exactly as an API client would: the session's key as the bearer token, so analytics applies
 * its own tenant scoping and scope check. Its error body's message is shown to the user.
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

export async function readApi<T>(baseUrl: string, key: string, pathAndQuery: string, timeoutMs = 10_000): Promise<T> {
  if (!baseUrl) throw new ReadApiError(503, 'the analytics read API is not configured (ingest.readApiUrl)');
  let res: Response;
  try {
    res = await fetch(new URL(pathAndQuery, baseUrl), { headers: { authorization: `Bearer ${key}`, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
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
