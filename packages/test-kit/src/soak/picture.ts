// The soak's picture: an SVG written as text (no dependency needed for rectangles and labels).
//   - top: one row per partition, coloured by the member that owned it (as the member applied it: from its ASSIGNED
//     report until the next, its exit, its SIGSTOP or its lost session); white where nobody did;
//   - below: one row per member, its processes (incarnations) as bars, SIGSTOP spans dark, fenced spans hatched in
//     amber, SIGKILL as a red cross;
//   - every fault as a translucent band over both, numbered; the legend under the picture names each number.
import type { CheckResult } from './check';

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#e15759'];
const FAULT_COLOURS: Record<string, string> = {
  'graceful-restart': '#8ecae6',
  'kill-restart': '#e63946',
  'stop-member': '#6d597a',
  'store-leader-kill': '#ff7f11',
  'store-freeze': '#219ebc',
  'store-quorum-loss': '#d00000',
  'broker-kill': '#9d4edd',
  'leadership-move': '#2a9d8f',
  'member-cut-off': '#fb8500',
  'partitions-added': '#06d6a0',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The SVG text of the run's timeline. */
export function timelineSvg(result: CheckResult): string {
  const { settings, timeline, faults } = result;
  const start = settings.startedAt;
  const lastEvent = Math.max(
    ...result.events.map((e) => ('at' in e ? e.at : e.end)),
    ...[...timeline.incarnations.values()].flatMap((v) => v.assigned.map((a) => a.at)),
  );
  const end = Math.max(lastEvent, start + 1_000);
  const partitions = Math.max(settings.partitions, ...timeline.partitionCounts.map((p) => p.count));
  const members = settings.members;
  const colour = new Map(members.map((m, i) => [m, PALETTE[i % PALETTE.length]!]));

  const left = 70;
  const width = 1500;
  const plot = width - left - 20;
  const rowH = partitions > 36 ? 9 : 12;
  const top = 60;
  const partTop = top;
  const partH = partitions * rowH;
  const memberTop = partTop + partH + 30;
  const memberRow = 22;
  const memberH = members.length * memberRow;
  const axisY = memberTop + memberH + 8;
  const legendTop = axisY + 40;
  const legendCols = 3;
  const legendRows = Math.ceil(faults.length / legendCols);
  const height = legendTop + Math.ceil(members.length / 3) * 15 + 22 + legendRows * 15 + 20;
  const x = (t: number) => left + ((t - start) / (end - start)) * plot;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">`,
    '<defs><pattern id="fenced" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
      '<rect width="3" height="6" fill="#ffb703" fill-opacity="0.85"/></pattern></defs>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
  );
  const verdict = result.failures.length === 0 ? 'PASS' : `FAIL (${result.failures.length})`;
  out.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">kiel soak: ${settings.backend === 'zk' ? 'ZooKeeper' : 'etcd'}, seed ${settings.seed}, ${settings.minutes} min, ${members.length} members, session ${settings.sessionTimeout / 1000} s, ${esc(settings.stack)} stack: ${verdict}</text>`,
    `<text x="${left}" y="40" fill="#444">${result.faults.length} faults, ${result.handled} messages handled, ${result.duplicates.length} duplicates, ${result.overlaps.length} overlaps, ${result.lost.length} lost ranges</text>`,
  );

  // Partition ownership.
  out.push(
    `<text x="8" y="${partTop - 6}" font-weight="bold">partition</text>`,
    `<rect x="${left}" y="${partTop}" width="${plot}" height="${partH}" fill="#f4f4f4" stroke="#ccc"/>`,
  );
  for (let p = 0; p < partitions; p++) {
    if (p % (rowH < 12 ? 4 : 2) === 0) {
      out.push(
        `<text x="${left - 6}" y="${partTop + p * rowH + rowH - 2}" text-anchor="end" font-size="9">${p}</text>`,
      );
    }
  }
  for (const v of timeline.incarnations.values()) {
    const stopsAt = v.stops.filter((s) => s.stopped).map((s) => s.at);
    const lostAt = v.events.filter((e) => e.event === 'lost').map((e) => e.at);
    v.assigned.forEach((a, i) => {
      const next = v.assigned[i + 1]?.at ?? Infinity;
      const cut = [next, v.exitedAt ?? end, end, ...stopsAt.filter((t) => t > a.at), ...lostAt.filter((t) => t > a.at)];
      const until = Math.min(...cut);
      if (until <= a.at) return;
      for (const id of a.partitions) {
        const p = Number(id.split(':').pop());
        out.push(
          `<rect x="${x(a.at).toFixed(1)}" y="${partTop + p * rowH}" width="${Math.max(0.5, x(until) - x(a.at)).toFixed(1)}" height="${rowH - 1}" fill="${colour.get(v.member)}"><title>${esc(v.name)} owns ${esc(id)} (generation ${a.generation})</title></rect>`,
        );
      }
    });
  }
  // Partitions that did not exist yet.
  for (const pc of timeline.partitionCounts) {
    if (pc.count >= partitions) continue;
    const next = timeline.partitionCounts.find((q) => q.at > pc.at)?.at ?? end;
    out.push(
      `<rect x="${x(pc.at).toFixed(1)}" y="${partTop + pc.count * rowH}" width="${(x(next) - x(pc.at)).toFixed(1)}" height="${(partitions - pc.count) * rowH}" fill="#ddd"/>`,
    );
  }

  // Members.
  out.push(`<text x="8" y="${memberTop - 6}" font-weight="bold">member</text>`);
  members.forEach((m, i) => {
    const y = memberTop + i * memberRow;
    out.push(
      `<text x="${left - 6}" y="${y + 14}" text-anchor="end">${esc(m)}</text>`,
      `<rect x="${left}" y="${y}" width="${plot}" height="${memberRow - 4}" fill="#f4f4f4"/>`,
    );
    for (const v of [...timeline.incarnations.values()].filter((w) => w.member === m)) {
      const until = v.exitedAt ?? end;
      out.push(
        `<rect x="${x(v.spawnedAt).toFixed(1)}" y="${y}" width="${Math.max(1, x(until) - x(v.spawnedAt)).toFixed(1)}" height="${memberRow - 4}" fill="${colour.get(m)}" fill-opacity="0.55"><title>${esc(v.name)}</title></rect>`,
        `<text x="${(x(v.spawnedAt) + 2).toFixed(1)}" y="${y + 12}" font-size="9" fill="#222">${esc(v.name.slice(m.length + 1))}</text>`,
      );
      let stoppedFrom: number | undefined;
      for (const s of v.stops) {
        if (s.stopped) stoppedFrom = s.at;
        else if (stoppedFrom !== undefined) {
          out.push(
            `<rect x="${x(stoppedFrom).toFixed(1)}" y="${y}" width="${(x(s.at) - x(stoppedFrom)).toFixed(1)}" height="${memberRow - 4}" fill="#222"><title>${esc(v.name)} stopped (SIGSTOP)</title></rect>`,
          );
          stoppedFrom = undefined;
        }
      }
      let fencedFrom: number | undefined;
      for (const e of [...v.events, { at: until, event: 'end' }]) {
        if (e.event === 'fenced' && fencedFrom === undefined) fencedFrom = e.at;
        else if (e.event !== 'fenced' && fencedFrom !== undefined && e.event !== 'lost') {
          out.push(
            `<rect x="${x(fencedFrom).toFixed(1)}" y="${y + 3}" width="${Math.max(1, x(e.at) - x(fencedFrom)).toFixed(1)}" height="${memberRow - 10}" fill="url(#fenced)" stroke="#fb8500" stroke-width="0.5"><title>${esc(v.name)} fenced</title></rect>`,
          );
          fencedFrom = undefined;
        }
        if (e.event === 'lost') {
          out.push(
            `<circle cx="${x(e.at).toFixed(1)}" cy="${y + (memberRow - 4) / 2}" r="3.5" fill="#d00000"><title>${esc(v.name)} lost its session</title></circle>`,
          );
        }
      }
      const exit = result.events.find((e) => e.type === 'exit' && e.incarnation === v.name);
      if (exit && exit.type === 'exit' && exit.signal === 'SIGKILL') {
        const cx = x(exit.at);
        const cy = y + (memberRow - 4) / 2;
        out.push(
          `<path d="M${cx - 4} ${cy - 4} L${cx + 4} ${cy + 4} M${cx - 4} ${cy + 4} L${cx + 4} ${cy - 4}" stroke="#d00000" stroke-width="2"/>`,
        );
      }
    }
  });

  // Faults: bands over both panels, numbered.
  for (const { fault } of faults) {
    const x0 = x(fault.start);
    const w = Math.max(1.5, x(fault.end) - x0);
    const c = FAULT_COLOURS[fault.kind] ?? '#888';
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${partTop - 8}" width="${w.toFixed(1)}" height="${axisY - partTop + 8}" fill="${c}" fill-opacity="0.12" stroke="${c}" stroke-width="1"><title>#${fault.id} ${fault.kind}: ${esc(fault.detail)}</title></rect>`,
      `<rect x="${x0.toFixed(1)}" y="${partTop - 8}" width="${w.toFixed(1)}" height="6" fill="${c}"/>`,
      `<text x="${(x0 + w / 2).toFixed(1)}" y="${partTop - 11}" text-anchor="middle" font-size="9" fill="#333" font-weight="bold">${fault.id}</text>`,
    );
  }

  // Time axis.
  const span = end - start;
  const step = [10_000, 30_000, 60_000, 120_000, 300_000].find((s) => span / s <= 16) ?? 600_000;
  out.push(`<line x1="${left}" y1="${axisY}" x2="${left + plot}" y2="${axisY}" stroke="#333"/>`);
  for (let t = 0; t <= span; t += step) {
    const tx = x(start + t);
    const label = `${Math.floor(t / 60_000)}:${String(Math.round((t % 60_000) / 1000)).padStart(2, '0')}`;
    out.push(
      `<line x1="${tx.toFixed(1)}" y1="${axisY}" x2="${tx.toFixed(1)}" y2="${axisY + 5}" stroke="#333"/>`,
      `<text x="${tx.toFixed(1)}" y="${axisY + 17}" text-anchor="middle" font-size="10">${label}</text>`,
    );
  }
  out.push(
    `<text x="${left + plot}" y="${axisY + 30}" text-anchor="end" fill="#444">minutes:seconds since start</text>`,
  );

  // Legend: members, marks, then the faults by number.
  out.push(`<text x="8" y="${legendTop}" font-weight="bold">legend</text>`);
  members.forEach((m, i) => {
    const lx = left + (i % 3) * (plot / 3);
    const ly = legendTop + Math.floor(i / 3) * 15;
    out.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colour.get(m)}"/>`,
      `<text x="${lx + 14}" y="${ly}">${esc(m)}: ${esc(handlerOf(result, m))}</text>`,
    );
  });
  const marksY = legendTop + Math.ceil(members.length / 3) * 15;
  out.push(
    `<rect x="${left}" y="${marksY - 9}" width="14" height="10" fill="#222"/>`,
    `<text x="${left + 18}" y="${marksY}">stopped (SIGSTOP)</text>`,
    `<rect x="${left + 150}" y="${marksY - 9}" width="14" height="10" fill="url(#fenced)" stroke="#fb8500" stroke-width="0.5"/>`,
    `<text x="${left + 168}" y="${marksY}">fenced (cut off from the store by its own clock)</text>`,
    `<circle cx="${left + 480}" cy="${marksY - 4}" r="3.5" fill="#d00000"/>`,
    `<text x="${left + 488}" y="${marksY}">session lost</text>`,
    `<path d="M${left + 586} ${marksY - 8} L${left + 594} ${marksY} M${left + 586} ${marksY} L${left + 594} ${marksY - 8}" stroke="#d00000" stroke-width="2"/>`,
    `<text x="${left + 600}" y="${marksY}">SIGKILL</text>`,
    `<rect x="${left + 670}" y="${marksY - 9}" width="14" height="10" fill="#ddd"/>`,
    `<text x="${left + 688}" y="${marksY}">partition not created yet</text>`,
    `<text x="${left + 860}" y="${marksY}">number in a member's bar: its process (1 = first, 2 = after one restart, ...)</text>`,
  );
  faults.forEach(({ fault, convergedAfterMs }, i) => {
    const col = i % legendCols;
    const row = Math.floor(i / legendCols);
    const fx = left + col * (plot / legendCols);
    const fy = marksY + 22 + row * 15;
    const c = FAULT_COLOURS[fault.kind] ?? '#888';
    const conv =
      convergedAfterMs === undefined ? 'did not converge' : `converged +${(convergedAfterMs / 1000).toFixed(1)} s`;
    out.push(
      `<rect x="${fx}" y="${fy - 9}" width="10" height="10" fill="${c}" fill-opacity="0.6"/>`,
      `<text x="${fx + 14}" y="${fy}" font-size="10">#${fault.id} +${Math.round((fault.start - start) / 1000)} s ${esc(fault.kind)} ${esc(fault.target)}: ${conv}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function handlerOf(result: CheckResult, member: string): string {
  const spawn = result.events.find((e) => e.type === 'spawn' && e.member === member);
  return spawn && spawn.type === 'spawn' ? spawn.handler : '?';
}
