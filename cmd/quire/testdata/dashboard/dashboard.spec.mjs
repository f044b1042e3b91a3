// Drives the dashboard of a running node in Debian's chromium (playwright-core,
// no browser download), for cmd/quire/dashboard_e2e_test.go, which starts the
// node and passes everything in the environment:
//
//   QUIRE_URL, QUIRE_ADMIN_TOKEN   the node and its admin token
//   DASH_ACCOUNT                   the account the uploads are for
//   DASH_SMALL_PDF, DASH_LARGE_PDF the PDF watched to 100 %, the one cancelled
//   DASH_ARTIFACTS                 where the screenshots go
//   DASH_CHROMIUM                  the browser (default /usr/bin/chromium)
//
// It prints one JSON line on stdout: what it saw, for the Go test to check
// against the REST API. Any failed expectation throws: exit status 1.
import { chromium } from 'playwright-core';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('QUIRE_URL');
const token = env('QUIRE_ADMIN_TOKEN');
const account = env('DASH_ACCOUNT');
const smallPDF = env('DASH_SMALL_PDF');
const largePDF = env('DASH_LARGE_PDF');
const artifacts = env('DASH_ARTIFACTS');
const origin = new URL(base).origin;

function expect(cond, what) {
  if (!cond) throw new Error('expectation failed: ' + what);
}
const log = (...a) => console.error('[spec]', ...a);

const browser = await chromium.launch({
  executablePath: process.env.DASH_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new', '--disable-background-networking', '--disable-component-update',
    '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-gpu'],
});
const out = { foreign_requests: [], page_errors: [], console_errors: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  // Nothing may be loaded from anywhere but the node itself.
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) out.foreign_requests.push(u);
  });
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });

  // Without a session: the login form, answered 401.
  const first = await page.goto(base + '/dashboard');
  expect(first.status() === 401, `GET /dashboard without a session answered ${first.status()}, want 401`);
  await page.waitForSelector('body[data-page=login]');

  // A wrong token: refused, still the login form.
  await page.fill('input[name=token]', 'qa_not-the-token');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  expect((await page.textContent('.error')).includes('not the admin token'), 'a wrong token is refused with a message');

  // The admin token: the overview.
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForURL(base + '/dashboard'), page.click('button[type=submit]')]);
  await page.waitForSelector('body[data-page=overview]');
  const cookies = await context.cookies(base + '/dashboard');
  const session = cookies.find((c) => c.name === 'quire_dashboard');
  expect(session, 'a session cookie is set');
  out.cookie = { httpOnly: session.httpOnly, sameSite: session.sameSite, secure: session.secure, path: session.path };
  expect(session.httpOnly && session.sameSite === 'Strict' && session.path === '/dashboard' && !session.secure,
    'the cookie is HttpOnly, SameSite=Strict, Path=/dashboard, and not Secure over plain HTTP: ' + JSON.stringify(out.cookie));
  // The live stream is running.
  await page.waitForFunction(() => document.querySelector('#live').textContent.startsWith('live'));

  // Upload a PDF from the form and watch its row reach 100 %.
  async function upload(file, chunkPages) {
    await page.fill('#upload input[name=account]', account);
    await page.setInputFiles('#upload input[name=file]', file);
    await page.fill('#upload input[name=chunk_pages]', String(chunkPages));
    await page.click('#upload button[type=submit]');
    const result = await page.waitForSelector('#upload-result[data-job]');
    const id = await result.getAttribute('data-job');
    expect(/^[0-9a-f-]{36}$/.test(id), 'the upload answered a job id: ' + id);
    return id;
  }
  out.small_job = await upload(smallPDF, 5);
  log('uploaded', out.small_job);
  const row = `#jobs tr[data-job="${out.small_job}"]`;
  await page.waitForSelector(row);
  out.progress_seen = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pct = await page.textContent(`${row} .pct`).catch(() => null);
    if (pct !== null && out.progress_seen[out.progress_seen.length - 1] !== pct) out.progress_seen.push(pct);
    if (pct === '100%') break;
    expect(Date.now() < deadline, 'the job reached 100% within 60 s; seen ' + out.progress_seen.join(' '));
    await page.waitForTimeout(100);
  }
  await page.waitForSelector(`${row}[data-status=completed]`);
  out.small_status = await page.textContent(`${row} .status`);
  log('progress seen', out.progress_seen.join(' '));

  // A long job: its cancel button, then the row says cancelled.
  out.large_job = await upload(largePDF, 2);
  log('uploaded', out.large_job);
  const large = `#jobs tr[data-job="${out.large_job}"]`;
  await page.waitForSelector(`${large} button.cancel`);
  page.once('dialog', (d) => d.accept());
  await page.click(`${large} button.cancel`);
  await page.waitForSelector(`${large}[data-status=cancelled]`, { timeout: 45_000 });
  out.large_status = await page.textContent(`${large} .status`);
  out.large_progress = await page.textContent(`${large} .pct`);

  // The throughput counts the two jobs that ended.
  await page.waitForFunction(() => Number(document.querySelector('#k-finished').textContent) >= 2);
  out.finished_shown = Number(await page.textContent('#k-finished'));
  out.spark_bars = await page.locator('#spark-jobs rect').count();
  await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });

  // The cancelled job's page: per-chunk status and node.
  await Promise.all([page.waitForURL(`${base}/dashboard/jobs/${out.large_job}`), page.click(`${large} a`)]);
  await page.waitForSelector('body[data-page=job]');
  await page.waitForFunction(() => document.querySelector('#j-status').textContent === 'cancelled');
  out.chunk_rows = await page.locator('#chunks tbody tr').count();
  out.chunk_statuses = {};
  for (const s of await page.locator('#chunks tbody tr td.status').allTextContents()) {
    out.chunk_statuses[s] = (out.chunk_statuses[s] || 0) + 1;
  }
  out.chunk_nodes = [...new Set(await page.locator('#chunks tbody tr td:nth-child(4)').allTextContents())].filter(Boolean);
  expect(await page.isHidden('#cancel-job'), 'a cancelled job has no cancel button');
  await page.screenshot({ path: path.join(artifacts, 'dashboard-job.png'), fullPage: false });

  // Logging out ends the session.
  await Promise.all([page.waitForResponse((r) => r.url().endsWith('/dashboard/logout')), page.click('.logout button')]);
  await page.waitForSelector('body[data-page=login]');
  const after = await page.goto(base + '/dashboard/jobs/' + out.large_job);
  out.after_logout_status = after.status();
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
