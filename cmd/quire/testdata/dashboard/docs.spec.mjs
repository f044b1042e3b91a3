// Loads /docs of a running node in Debian's chromium (playwright-core), for
// TestDocsBrowser in cmd/quire/docs_e2e_test.go, which passes:
//
//   QUIRE_URL       the node
//   DOCS_CHROMIUM   the browser (default /usr/bin/chromium)
//   DOCS_OPERATION  an operation summary the page must show
//   DOCS_OPERATION_ID  its operationId
//
// It prints one JSON line on stdout: what it saw. A page that does not
// render throws: exit status 1.
import { chromium } from 'playwright-core';

const base = process.env.QUIRE_URL;
const operation = process.env.DOCS_OPERATION;
const operationId = process.env.DOCS_OPERATION_ID;
if (!base || !operation || !operationId) throw new Error('QUIRE_URL, DOCS_OPERATION and DOCS_OPERATION_ID must be set');
const origin = new URL(base).origin;

const browser = await chromium.launch({
  executablePath: process.env.DOCS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new', '--disable-background-networking', '--disable-component-update',
    '--disable-default-apps', '--disable-sync', '--no-first-run', '--disable-gpu'],
});
const out = { foreign_requests: [], page_errors: [], console_errors: [], requests: 0 };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.setDefaultTimeout(30_000);
  page.on('request', (r) => {
    out.requests++;
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) out.foreign_requests.push(u);
  });
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });

  // The overview names the API; an operation's page (Elements' hash
  // router) names the operation.
  const resp = await page.goto(base + '/docs', { waitUntil: 'load' });
  out.status = resp.status();
  try {
    await page.getByText('Quire', { exact: true }).first().waitFor({ state: 'visible' });
    out.title_shown = true;
    await page.goto(base + '/docs#/operations/' + operationId, { waitUntil: 'load' });
    await page.getByText(operation).first().waitFor({ state: 'visible' });
    out.operation_shown = true;
    await page.waitForLoadState('networkidle');
  } catch (e) {
    out.error = String(e);
    out.text = (await page.textContent('body')).slice(0, 2000);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
