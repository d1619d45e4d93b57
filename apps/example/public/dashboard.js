// The kiel dashboard page: renders each `state` event of /events (server-sent events). No build step, no framework:
// a few tables rebuilt from one state object, and a uPlot chart.
'use strict';

(function () {
  const PALETTE = ['#3b6fd4', '#e07b39', '#2e9d8f', '#b04fc4', '#c9a227', '#d2463c', '#5a8f29', '#7a5cff'];
  const colours = new Map();
  const colourOf = (member) => {
    if (!colours.has(member)) colours.set(member, PALETTE[colours.size % PALETTE.length]);
    return colours.get(member);
  };
  const $ = (selector) => document.querySelector(selector);
  const esc = (text) =>
    String(text).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
    );
  /** `host:pid:uuid` → `host:pid·abcd`: unique enough to read, the full id is in the title. */
  const short = (id) => {
    const parts = id.split(':');
    return parts.length >= 3 ? `${parts.slice(0, -1).join(':')}·${parts.at(-1).slice(0, 4)}` : id;
  };
  const ms = (v) =>
    v === null || v === undefined ? '–' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
  const time = (at) => new Date(at).toLocaleTimeString([], { hour12: false });

  /** Lag to colour: green at 0, through amber, to red at `max` and above. */
  function lagColour(lag, max) {
    if (lag === null) return '#9aa3b5';
    const x = Math.min(1, lag / Math.max(1, max));
    const hue = 140 * (1 - x);
    return `hsl(${hue}, 62%, ${42 + 6 * (1 - x)}%)`;
  }

  function renderSummary(state) {
    const s = state.snapshot;
    const a = s && s.allocation;
    $('#group').textContent = state.group;
    const items = [
      ['backend', state.backend],
      ['generation', a ? a.generation : '–'],
      ['leader', a ? short(a.leader) : '–'],
      ['strategy', a ? a.strategy : '–'],
      ['partitions', s ? s.partitions.length : '–'],
      ['total lag', s ? s.lag : '–'],
      ['allocation', !s ? '–' : s.control.frozen ? 'FROZEN' : s.throttled > 0 ? 'converging' : 'live'],
      ['updated', time(state.at)],
    ];
    $('#summary').innerHTML = items
      .map(([k, v]) => `<div><dt>${esc(k)}</dt><dd data-field="${esc(k)}">${esc(v)}</dd></div>`)
      .join('');
    // A freeze (kiel allocation freeze): the leader publishes nothing new until unfrozen.
    const frozen = $('#frozen');
    const control = s ? s.control : { frozen: false };
    frozen.hidden = !control.frozen;
    document.body.dataset.frozen = control.frozen ? 'true' : 'false';
    frozen.textContent = control.frozen
      ? `FROZEN${control.since !== undefined ? ` since ${time(control.since)}` : ''}` +
        `${control.reason !== undefined ? ` (${control.reason})` : ''}: ` +
        'no new allocation until `kiel allocation unfreeze`; joining members wait, partitions of members that go wait'
      : '';
    const converging = $('#converging');
    const waiting = s ? Object.entries(s.waiting) : [];
    const notes = waiting.map(
      ([id, left]) => `waiting for ${short(id)} to come back: its partitions are idle, and move in ${ms(left)}`,
    );
    if (s && s.throttled > 0) notes.push(`converging: ${s.throttled} moves held back (maxMovesPerRebalance)`);
    converging.hidden = notes.length === 0;
    converging.textContent = notes.join(' · ');
    const error = $('#error');
    error.hidden = !state.error && !!a;
    error.textContent = state.error || (a ? '' : 'no published allocation yet: waiting for the group');
  }

  function renderMembers(state) {
    const s = state.snapshot;
    const rows = (s ? s.members : []).map((m) => {
      const health = state.health[m.id] || 'ok';
      const how = state.departures[m.id];
      const rate = m.rate === null ? '' : latestRate(state, m.id);
      return (
        `<tr data-member="${esc(m.id)}" data-health="${esc(health)}" class="${health === 'gone' ? 'gone' : ''}">` +
        `<td title="${esc(m.id)}"><span class="swatch" style="background:${colourOf(m.id)}"></span>${esc(short(m.id))}</td>` +
        `<td><span class="badge ${health.replace(' ', '-')}">${esc(health)}${how && health === 'gone' ? ` (${how})` : ''}` +
        `${health === 'waiting' && m.waitingMs !== null ? ` ${esc(ms(m.waitingMs))}` : ''}</span></td>` +
        `<td>${m.partitions.length}</td><td>${m.claimed}</td><td>${m.lag}</td><td>${esc(rate)}</td>` +
        `<td>${m.live ? (m.lastCommitMsAgo === null ? 'session alive' : `${ms(m.lastCommitMsAgo)} ago`) : 'gone'}</td></tr>`
      );
    });
    $('#members tbody').innerHTML = rows.join('');
  }

  function latestRate(state, member) {
    const series = state.throughput.members[member];
    const v = series && series.at(-1);
    return v === null || v === undefined ? '' : Math.round(v).toLocaleString();
  }

  function renderGrid(state) {
    const s = state.snapshot;
    if (!s || s.partitions.length === 0) {
      $('#grid').innerHTML = '<p>no partitions yet</p>';
      return;
    }
    const members = s.members.map((m) => m.id);
    const max = Math.max(100, ...s.partitions.map((p) => p.lag || 0));
    const head =
      '<tr><th>partition</th>' +
      members.map((m) => `<th class="member" title="${esc(m)}">${esc(short(m))}</th>`).join('') +
      '<th>lag</th></tr>';
    const body = s.partitions.map((p) => {
      const claim = p.claim && p.claim.member;
      const cells = members.map((m) => {
        if (m === p.owner) {
          const elsewhere = claim !== null && claim !== m;
          return (
            `<td class="cell own${elsewhere ? ' claim-elsewhere' : ''}" data-partition="${esc(p.id)}" data-owner="${esc(m)}"` +
            ` title="${esc(`${p.id} owned by ${m}, lag ${p.lag === null ? '-' : p.lag}`)}"` +
            ` style="background:${lagColour(p.lag, max)}">${p.lag === null ? '' : p.lag}</td>`
          );
        }
        if (m === claim)
          return `<td class="cell holds" data-partition="${esc(p.id)}" data-holder="${esc(m)}" title="claim still held"></td>`;
        return '<td class="cell"></td>';
      });
      return `<tr><td class="pid" title="${esc(p.id)}">${esc(p.id)}</td>${cells.join('')}<td>${p.lag === null ? '–' : p.lag}</td></tr>`;
    });
    $('#grid').innerHTML = `<table><thead>${head}</thead><tbody>${body.join('')}</tbody></table>`;
  }

  function renderTimeline(state) {
    const rows = [...state.timeline].reverse().map((e) => {
      const pending = e.handoffMs === null && !e.superseded && e.moved !== null;
      const handoff = e.superseded ? 'superseded' : pending ? 'handing off…' : ms(e.handoffMs);
      return (
        `<tr data-generation="${e.generation}" data-cause="${esc(e.cause)}" class="${pending ? 'pending' : ''}">` +
        `<td>${e.generation}</td><td>${time(e.publishedAt)}</td>` +
        `<td class="cause">${esc(e.cause.replace(/[^\s,]+:\d+:[0-9a-f-]{8,}/g, (id) => short(id)))}</td>` +
        `<td>${e.members.length}</td><td>${e.moved === null ? '–' : `${e.moved}/${e.partitions}`}</td>` +
        `<td class="handoff">${esc(handoff)}</td></tr>`
      );
    });
    $('#timeline tbody').innerHTML = rows.join('');
  }

  let chart = null;
  let chartMembers = '';
  function renderChart(state) {
    const t = state.throughput;
    const members = Object.keys(t.members);
    const data = [t.at.map((x) => x / 1000), ...members.map((m) => t.members[m])];
    const key = members.join('|');
    const el = $('#chart');
    if (!chart || key !== chartMembers) {
      if (chart) chart.destroy();
      chartMembers = key;
      chart = new uPlot(
        {
          width: Math.max(300, el.clientWidth),
          height: 220,
          legend: { show: true },
          scales: { y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
          series: [{}, ...members.map((m) => ({ label: short(m), stroke: colourOf(m), width: 2, spanGaps: false }))],
          axes: [{}, { size: 60 }],
        },
        data,
        el,
      );
    } else {
      chart.setData(data);
    }
  }

  function render(state) {
    renderSummary(state);
    renderMembers(state);
    renderGrid(state);
    renderTimeline(state);
    renderChart(state);
    document.body.dataset.generation =
      state.snapshot && state.snapshot.allocation ? state.snapshot.allocation.generation : '';
  }

  const status = $('#status');
  const events = new EventSource('/events');
  events.addEventListener('open', () => {
    status.dataset.state = 'live';
    status.textContent = 'live';
  });
  events.addEventListener('error', () => {
    status.dataset.state = 'lost';
    status.textContent = 'reconnecting…';
  });
  events.addEventListener('state', (event) => render(JSON.parse(event.data)));
  window.addEventListener('resize', () => chart && chart.setSize({ width: $('#chart').clientWidth, height: 220 }));
})();
