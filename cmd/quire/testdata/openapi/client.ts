// client.ts drives a Quire node through the client that @hey-api/openapi-ts
// generates from its /openapi.json, and only through it (TestOpenAPIClients
// generates it into ./hey beside a copy of this file). It prints a JSON
// summary of what it saw on stdout; the Go test checks it.
//
// Environment: QUIRE_URL, QUIRE_API_KEY, PDF (a small PDF), CANCEL_PDF (a
// large one, cancelled before it ends).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { client } from './hey/client.gen.ts';
import { cancelJob, createJob, getCredits, getJobResult, jobEvents, listJobs } from './hey/sdk.gen.ts';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

client.setConfig({ baseUrl: env('QUIRE_URL'), auth: () => env('QUIRE_API_KEY') });

const pdf = (path: string): File => new File([readFileSync(path)], basename(path), { type: 'application/pdf' });

const summary: Record<string, unknown> = {};

// 1. A job from a real PDF, as multipart/form-data.
const created = await createJob({ body: { file: pdf(env('PDF')), chunk_pages: 2 }, throwOnError: true });
const job = created.data;
summary.job = job.id;
summary.created_status = created.response.status;

// 2. Its events over SSE until the end event.
const events: string[] = [];
let endStatus = '';
const sse = await jobEvents({
  path: { id: job.id },
  sseMaxRetryAttempts: 3,
  onSseEvent: (ev: { event?: string }) => {
    events.push(String(ev.event ?? 'message'));
  },
});
for await (const data of sse.stream) {
  if (events[events.length - 1] === 'end') {
    // huma declares the stream as an array of its events; each item is one data.
    endStatus = (data as unknown as { status: string }).status;
    break;
  }
}
summary.events = events;
summary.end_status = endStatus;

// 3. The result in every format.
const json = await getJobResult({ path: { id: job.id }, query: { format: 'json' }, throwOnError: true });
summary.json_keys = Object.keys(json.data as object).sort();
const pages = await getJobResult({ path: { id: job.id }, query: { format: 'pages' }, throwOnError: true });
summary.pages = (pages.data as { pages?: Array<{ page: number }> }).pages?.map((p) => p.page) ?? [];
for (const format of ['text', 'markdown'] as const) {
  const r = await getJobResult({ path: { id: job.id }, query: { format }, parseAs: 'text', throwOnError: true });
  summary[`${format}_type`] = r.response.headers.get('content-type');
  summary[`${format}_length`] = String(r.data).length;
}

// 4. Credits.
const credits = await getCredits({ throwOnError: true });
summary.credits = { balance: credits.data.balance, charged: credits.data.charged };

// 5. A second job, cancelled.
const second = await createJob({ body: { file: pdf(env('CANCEL_PDF')) }, throwOnError: true });
const cancelled = await cancelJob({ path: { id: second.data.id }, throwOnError: true });
summary.cancelled = { id: second.data.id, status: cancelled.data.status };

// 6. Every job, a page of one at a time, following next_cursor.
const listed: string[] = [];
let cursor: string | undefined;
for (let page = 0; page < 10; page++) {
  const r = await listJobs({ query: { limit: 1, ...(cursor ? { cursor } : {}) }, throwOnError: true });
  for (const j of r.data.jobs ?? []) listed.push(j.id);
  cursor = r.data.next_cursor || undefined;
  if (!cursor) break;
}
summary.listed = listed;

process.stdout.write(JSON.stringify(summary) + '\n');
