// The Quire dashboard's script: live updates from the server's events
// stream, and the actions (cancel, upload, rollout). Text from the server is
// only ever put into the page as text (textContent), never as markup.
'use strict';

(function () {
  // Every state-changing request carries this header; the server refuses
  // those that do not (a page of another site cannot add it).
  const HEADERS = { 'X-Quire-Dashboard': '1' };
  const ENDED = new Set(['completed', 'partially_completed', 'failed', 'cancelled']);

  function $(sel) { return document.querySelector(sel); }

  // el('td', {class: 'num'}, 'text', child, ...) makes an element.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function percent(p) { return Math.floor(p * 100 + 1e-9) + '%'; }
  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) || d.getTime() <= 0 ? '' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  function short(id) { return id.length > 8 ? id.slice(-8) : id; }

  async function problemText(res) {
    try {
      const p = await res.json();
      return p.detail || p.title || res.status + ' ' + res.statusText;
    } catch (e) {
      return res.status + ' ' + res.statusText;
    }
  }

  function setLive(text, down) {
    const live = $('#live');
    if (!live) return;
    live.textContent = text;
    live.classList.toggle('down', !!down);
  }

  async function cancelJob(id, button, out) {
    if (!window.confirm('Cancel job ' + id + '? Its pages not processed yet are refunded to its account.')) return;
    button.disabled = true;
    try {
      const res = await fetch('/dashboard/api/jobs/' + encodeURIComponent(id) + '/cancel',
        { method: 'POST', headers: HEADERS, credentials: 'same-origin' });
      const text = res.ok ? 'cancel requested' : 'cancel refused: ' + await problemText(res);
      if (out) out.textContent = text;
      button.title = text;
      if (!res.ok) button.disabled = false;
    } catch (e) {
      button.disabled = false;
      if (out) out.textContent = 'cancel failed: ' + e;
    }
  }

  // ---- the overview page

  function jobRow(j) {
    const chunks = j.chunks.done + '/' + j.chunks.total + (j.chunks.failed ? ' (' + j.chunks.failed + ' failed)' : '');
    const cancellable = !ENDED.has(j.status) && j.status !== 'cancelling';
    const progress = el('progress', { max: 1 });
    progress.value = j.progress;
    return el('tr', { 'data-job': j.id, 'data-status': j.status },
      el('td', {}, el('a', { href: '/dashboard/jobs/' + encodeURIComponent(j.id), title: j.id }, short(j.id))),
      el('td', { title: j.account_id }, '#' + j.account_number),
      el('td', { class: 'file' }, j.file_name || ''),
      el('td', { class: 'status status-' + j.status }, j.status),
      el('td', { class: 'progress' }, progress, ' ', el('span', { class: 'pct' }, percent(j.progress))),
      el('td', { class: 'chunks' }, chunks),
      el('td', { class: 'num' }, j.pages),
      el('td', {}, j.node),
      el('td', {}, el('time', { datetime: j.created_at }, clock(j.created_at))),
      el('td', {}, cancellable ? el('button', { type: 'button', class: 'cancel', 'data-job': j.id }, 'Cancel') : null));
  }

  function memberRow(m) {
    const name = el('td', {}, m.name,
      m.self ? el('span', { class: 'tag' }, 'this node') : null,
      m.ledger ? el('span', { class: 'tag' }, 'ledger') : null,
      m.draining ? el('span', { class: 'tag warn' }, 'draining') : null);
    const meter = el('meter', { min: 0, max: m.capacity });
    meter.value = m.load;
    return el('tr', { 'data-member': m.name }, name,
      el('td', { class: 'state-' + m.state }, m.state),
      el('td', {}, meter, ' ' + m.load + '/' + m.capacity),
      el('td', { class: 'num' }, m.queued),
      el('td', { class: 'num' }, m.capacity),
      el('td', {}, m.http_addr || ''));
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  // bars draws one bar per bucket: its height the bucket's total, the part
  // that errs (if any) in red on top.
  function bars(svg, buckets, total, errs) {
    const w = 600, h = 60;
    const max = Math.max(1, ...buckets.map(total));
    const bw = w / Math.max(1, buckets.length);
    const out = [];
    buckets.forEach((b, i) => {
      const t = total(b), e = errs ? errs(b) : 0;
      if (t <= 0) return;
      const th = (t / max) * (h - 4), eh = (e / max) * (h - 4);
      out.push(svgEl('rect', { class: 'bar-ok', x: i * bw + 1, y: h - th, width: Math.max(1, bw - 2), height: th - eh }));
      if (eh > 0) out.push(svgEl('rect', { class: 'bar-err', x: i * bw + 1, y: h - th, width: Math.max(1, bw - 2), height: eh }));
    });
    const title = svgEl('title', {});
    title.textContent = 'max ' + max + ' per bucket';
    svg.replaceChildren(title, ...out);
  }

  function renderOverview(ov) {
    const missing = $('#missing');
    if (missing) {
      missing.hidden = !(ov.missing && ov.missing.length);
      missing.textContent = ov.missing && ov.missing.length ? 'Not shown: the jobs of ' + ov.missing.join('; ') : '';
    }
    $('#k-alive').textContent = ov.alive + ' of ' + ov.members.length;
    $('#k-load').textContent = ov.load + ' / ' + ov.capacity;
    $('#k-queued').textContent = ov.queued;
    $('#k-unfinished').textContent = ov.unfinished.queued + ' queued, ' + ov.unfinished.running + ' running';
    replaceRows($('#members tbody'), ov.members.map(memberRow));

    const s = ov.stats;
    $('#k-finished').textContent = s.finished;
    $('#k-jpm').textContent = s.jobs_per_minute.toFixed(1);
    $('#k-pps').textContent = s.pages_per_second.toFixed(1);
    $('#k-errors').textContent = (s.error_rate * 100).toFixed(1) + '%';
    $('#k-breakdown').textContent = s.completed + ' completed, ' + s.partially_completed + ' partial, ' +
      s.failed + ' failed, ' + s.cancelled + ' cancelled';
    bars($('#spark-jobs'), s.buckets,
      b => b.completed + b.partially_completed + b.failed + b.cancelled,
      b => b.partially_completed + b.failed);
    bars($('#spark-pages'), s.buckets, b => b.pages, null);

    replaceRows($('#jobs tbody'), ov.jobs.map(jobRow));
    $('#no-jobs').hidden = ov.jobs.length > 0;

    const r = ov.rollout;
    const now = $('#rollout-now');
    now.replaceChildren('In force: async ',
      r.async_enabled ? 'on' : el('strong', {}, 'off (emergency switch)'),
      ', ' + r.percentage + '%, over ' + r.size_threshold_mb + ' MiB always async (version ' + r.version + ')');
    setLive('live · ' + clock(ov.at));
  }

  function startOverview() {
    // Before the first event, the server-rendered page stands.
    bars($('#spark-jobs'), [], () => 0, null);
    const es = new EventSource('/dashboard/api/events');
    es.addEventListener('overview', (e) => renderOverview(JSON.parse(e.data)));
    es.addEventListener('problem', (e) => setLive(JSON.parse(e.data).detail, true));
    es.addEventListener('end', () => {
      es.close();
      setLive('logged out: reload the page to log in', true);
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) setLive('disconnected: reload the page', true);
      else setLive('reconnecting…', true);
    };

    $('#jobs').addEventListener('click', (e) => {
      const b = e.target.closest('button.cancel');
      if (b) cancelJob(b.dataset.job, b, null);
    });

    const upload = $('#upload');
    upload.addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = $('#upload-result');
      const fd = new FormData(upload);
      const account = String(fd.get('account') || '').trim();
      fd.delete('account');
      for (const k of ['chunk_pages', 'prompt']) {
        if (!String(fd.get(k) || '').trim()) fd.delete(k);
      }
      const button = upload.querySelector('button[type=submit]');
      button.disabled = true;
      out.className = '';
      out.removeAttribute('data-job');
      out.textContent = 'uploading…';
      try {
        const res = await fetch('/dashboard/api/jobs?account=' + encodeURIComponent(account),
          { method: 'POST', body: fd, headers: HEADERS, credentials: 'same-origin' });
        if (!res.ok) {
          out.className = 'error';
          out.textContent = 'refused: ' + await problemText(res);
          return;
        }
        const j = await res.json();
        out.className = 'ok';
        out.dataset.job = j.id;
        out.replaceChildren('job ', el('a', { href: '/dashboard/jobs/' + encodeURIComponent(j.id) }, j.id),
          ' created: ' + j.pages + ' pages in ' + j.chunks.total + ' chunks, ' + j.credits.reserved + ' credits reserved');
      } catch (err) {
        out.className = 'error';
        out.textContent = 'upload failed: ' + err;
      } finally {
        button.disabled = false;
      }
    });

    const rollout = $('#rollout');
    rollout.addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = $('#rollout-result');
      const body = {
        async_enabled: rollout.elements.async_enabled.checked,
        percentage: Number(rollout.elements.percentage.value),
        size_threshold_mb: Number(rollout.elements.size_threshold_mb.value),
      };
      out.className = '';
      out.textContent = 'saving…';
      try {
        const res = await fetch('/dashboard/api/rollout', {
          method: 'PUT', body: JSON.stringify(body), credentials: 'same-origin',
          headers: Object.assign({ 'Content-Type': 'application/json' }, HEADERS),
        });
        if (!res.ok) {
          out.className = 'error';
          out.textContent = 'refused: ' + await problemText(res);
          return;
        }
        const p = await res.json();
        out.className = 'ok';
        out.textContent = 'saved (version ' + p.version + '); every node follows it within about a second';
      } catch (err) {
        out.className = 'error';
        out.textContent = 'failed: ' + err;
      }
    });
  }

  // ---- the job page

  function chunkRow(c) {
    return el('tr', { 'data-chunk': c.index },
      el('td', { class: 'num' }, c.index),
      el('td', {}, c.first_page + '–' + c.last_page),
      el('td', { class: 'status status-' + c.status }, c.status),
      el('td', {}, c.node || ''),
      el('td', { class: 'num' }, c.attempts),
      el('td', { class: 'num' }, c.duration_ms ? c.duration_ms + ' ms' : ''),
      el('td', { class: 'error' }, c.error || ''));
  }

  function renderJob(j) {
    const status = $('#j-status');
    status.textContent = j.status;
    status.className = 'status status-' + j.status;
    $('#j-progress').value = j.progress;
    $('#j-pct').textContent = percent(j.progress);
    const c = j.chunks;
    $('#j-chunks').textContent = c.done + ' done, ' + c.running + ' running, ' + c.queued + ' queued, ' +
      c.failed + ' failed, ' + c.cancelled + ' cancelled, of ' + c.total;
    $('#j-credits').textContent = 'reserved ' + j.credits.reserved + ', charged ' + j.credits.charged +
      ', refunded ' + j.credits.refunded;
    $('#j-retries').textContent = j.retries;
    $('#j-updated').textContent = clock(j.updated_at);
    $('#j-error').textContent = j.error || '';
    $('#cancel-job').hidden = ENDED.has(j.status) || j.status === 'cancelling';
    replaceRows($('#chunks tbody'), j.chunk_list.map(chunkRow));
  }

  function startJob(id) {
    $('#cancel-job').addEventListener('click', (e) => cancelJob(id, e.currentTarget, $('#cancel-result')));
    let timer = null;
    async function poll() {
      try {
        const res = await fetch('/dashboard/api/jobs/' + encodeURIComponent(id), { credentials: 'same-origin' });
        if (res.status === 401) {
          setLive('logged out: reload the page to log in', true);
          return;
        }
        if (!res.ok) {
          setLive(await problemText(res), true);
        } else {
          const j = await res.json();
          renderJob(j);
          setLive('live · ' + clock(new Date().toISOString()));
          if (ENDED.has(j.status)) {
            setLive('ended');
            return;
          }
        }
      } catch (e) {
        setLive('reconnecting…', true);
      }
      timer = setTimeout(poll, 1000);
    }
    poll();
    window.addEventListener('pagehide', () => clearTimeout(timer));
  }

  document.addEventListener('DOMContentLoaded', () => {
    const page = document.body.dataset.page;
    if (page === 'overview') startOverview();
    if (page === 'job') startJob(document.body.dataset.job);
  });
})();
