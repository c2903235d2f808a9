// internal-ids: a redactor a security team writes for its own identifiers. Employee ids
// (EMP- and six digits) and the project code names listed in the config are replaced by numbered
// placeholders (<EMPLOYEE_1>, <PROJECT_1>, ...) before the request leaves the proxy, and restored
// in the answer, whole or streamed (a placeholder split over events is restored whole and never
// sent in halves). The Rust (plugins/internal-ids) and Python versions pass the same fixtures.
import { Changes, decide, respond, textEdit, parseConfig, PlaceholderStream } from './sdk/switchyard.js';
import { counterAdd } from './sdk/host.js';

let projects = [];
let stream = new PlaceholderStream({});

export function init(configJson) {
  const config = parseConfig(configJson);
  for (const key of Object.keys(config)) {
    if (key !== 'projects') throw `invalid plugin config: unknown key ${key}`;
  }
  projects = config.projects ?? [];
  if (!Array.isArray(projects) || projects.some((p) => typeof p !== 'string' || p === '')) {
    throw 'invalid plugin config: projects must be a list of non-empty strings';
  }
}

// A word character in the ASCII sense: ids and names glued to one are not matches.
const WORD = /[A-Za-z0-9_]/;

function bounded(text, start, end) {
  return !(start > 0 && WORD.test(text[start - 1])) && !(end < text.length && WORD.test(text[end]));
}

// Every employee id and project name in `text`, sorted, without overlaps: [start, end, kind].
function findAll(text) {
  const hits = [];
  for (const m of text.matchAll(/EMP-[0-9]{6}/g)) {
    if (bounded(text, m.index, m.index + m[0].length)) hits.push([m.index, m.index + m[0].length, 'EMPLOYEE']);
  }
  for (const name of projects) {
    for (let i = text.indexOf(name); i >= 0; i = text.indexOf(name, i + 1)) {
      if (bounded(text, i, i + name.length)) hits.push([i, i + name.length, 'PROJECT']);
    }
  }
  hits.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const out = [];
  for (const h of hits) if (out.length === 0 || h[0] >= out[out.length - 1][1]) out.push(h);
  return out;
}

export function onRequest(req) {
  const issued = new Map(); // value -> placeholder
  const counts = { EMPLOYEE: 0, PROJECT: 0 };
  const changes = new Changes();
  let redacted = 0;
  req.messages.forEach((m, i) => {
    if (m.role.startsWith('binary:')) return; // parts without text
    for (const [start, end, kind] of findAll(m.content)) {
      const value = m.content.slice(start, end);
      if (!issued.has(value)) issued.set(value, `<${kind}_${++counts[kind]}>`);
      changes.edit(textEdit(i, m.content, start, end, issued.get(value)));
      redacted++;
    }
  });
  if (redacted === 0) return decide.proceed(changes);
  counterAdd('redacted', redacted);
  stream = new PlaceholderStream(new Map([...issued].map(([v, p]) => [p, v])));
  return decide.proceed(changes.tag('internal-ids.redacted', String(redacted)).watchResponse());
}

export function onResponse(resp) {
  const edits = [];
  resp.choices.forEach((text, i) => {
    const restored = stream.restore(text);
    if (restored !== text) edits.push(textEdit(i, text, 0, text.length, restored));
  });
  return edits.length ? respond.edit(edits) : respond.pass();
}

export function onEvent(ev) {
  return stream.onEvent(ev);
}

export function onStreamEnd() {
  return stream.end();
}
