// typed.ts makes the same calls as client.ts through openapi-fetch and the
// types openapi-typescript generates from /openapi.json (./schema.d.ts).
// TestOpenAPIClients type-checks it with tsc --noEmit: the multipart file
// field must be typed as a file, the result formats and the cursor as the
// document says.
import createClient from 'openapi-fetch';
import type { paths } from './schema.d.ts';

export async function run(baseUrl: string, apiKey: string, file: File): Promise<string[]> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });
  const seen: string[] = [];

  const created = await api.POST('/v1/jobs', {
    body: { file, chunk_pages: 2 },
    bodySerializer: (body) => {
      const form = new FormData();
      form.append('file', body.file);
      if (body.chunk_pages !== undefined) form.append('chunk_pages', String(body.chunk_pages));
      return form;
    },
  });
  if (!created.data) throw new Error(created.error?.detail ?? 'create failed');
  const id: string = created.data.id;

  const events = await api.GET('/v1/jobs/{id}/events', { params: { path: { id } }, parseAs: 'stream' });
  seen.push(String(events.response.status));

  for (const format of ['json', 'text', 'markdown', 'pages'] as const) {
    const r = await api.GET('/v1/jobs/{id}/result', { params: { path: { id }, query: { format } } });
    if (r.error) throw new Error(r.error.detail);
  }

  const credits = await api.GET('/v1/credits');
  const balance: number | undefined = credits.data?.balance;
  seen.push(String(balance));

  let cursor: string | undefined;
  do {
    const page = await api.GET('/v1/jobs', { params: { query: { limit: 10, cursor } } });
    for (const job of page.data?.jobs ?? []) seen.push(job.id);
    cursor = page.data?.next_cursor || undefined;
  } while (cursor);

  const cancelled = await api.POST('/v1/jobs/{id}/cancel', { params: { path: { id } } });
  if (cancelled.error?.status === 409) seen.push('already ended');
  return seen;
}
