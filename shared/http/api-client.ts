/**
 * The client the CLI commands (`postline suppressions`, `tenants`, `keys`, `domains add|list|remove`)
 * use to call the send API: Bearer key, JSON bodies, and an Error naming the route, status, code,
 * message and every bad field for any answer of 400 or more.
 */
export interface ApiClient {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
}

export function apiClient(url: string, key: string, doFetch: typeof fetch = fetch): ApiClient {
  return {
    async call(method, path, body) {
      const res = await doFetch(new URL(path, url), {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      const json = text ? JSON.parse(text) : undefined;
      if (res.status >= 400) {
        const fields = (json?.error?.fields ?? []).map((f: { field: string; message: string }) => `${f.field}: ${f.message}`).join('; ');
        throw new Error(`${method} ${path}: ${res.status} ${json?.error?.code ?? ''} ${json?.error?.message ?? text}${fields ? ` (${fields})` : ''}`);
      }
      return { status: res.status, json };
    },
  };
}
