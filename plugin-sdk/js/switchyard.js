// Switchyard plugin SDK for JavaScript: typed helpers over the bindings that `jco componentize`
// generates from plugin-sdk/wit/plugin.wit (world `plugin`).
//
// The WIT values in JavaScript (componentize-js 0.23): records are objects with camelCase fields,
// variants are `{ tag: 'kebab-name', val }`, options are `undefined` or the value, tuples are
// arrays. This module builds those values so that plugin code never spells them by hand, converts
// JavaScript string indices (UTF-16 code units) into the UTF-8 byte offsets that `text-edit`
// takes, and holds stream text back while it could still be the start of a placeholder.
//
// It imports nothing, so it runs (and is tested) under plain Node too; the host functions (log,
// counters, clock) are in host.js.

/** The bit that marks a stream event's `choice` as a tool call's arguments (see plugin.wit). */
export const TOOL_CALL_CHOICE = 0x80000000;

/** What to change before the request goes on; `build()` gives the WIT `changes` record. */
export class Changes {
  constructor() {
    this.value = {
      route: undefined,
      edits: [],
      cache: undefined,
      addHeaders: [],
      tags: [],
      watchResponse: false,
    };
  }
  /** Send the request to `upstream` (a name from the proxy config), optionally renaming the model. */
  route(upstream, model, fallbacks = []) {
    this.value.route = { upstream, model: model ?? undefined, fallbacks: [...fallbacks] };
    return this;
  }
  /** Add text edits (see `textEdit` and `editMatches`). */
  edit(...edits) {
    this.value.edits.push(...edits.flat());
    return this;
  }
  /** Neither read nor write the response cache. */
  noCache() {
    this.value.cache = { tag: 'no-cache' };
    return this;
  }
  /** Cache the answer under `key` for `ttlSeconds`. */
  cache(key, ttlSeconds) {
    this.value.cache = { tag: 'store', val: { key, ttlSeconds } };
    return this;
  }
  /** Add a header to the upstream request. */
  header(name, value) {
    this.value.addHeaders.push([name, value]);
    return this;
  }
  /** Set a tag for later plugins, metrics and traces. */
  tag(key, value) {
    this.value.tags.push([key, value]);
    return this;
  }
  /** Keep this instance alive and show it the response. */
  watchResponse() {
    this.value.watchResponse = true;
    return this;
  }
  build() {
    return this.value;
  }
}

/** Request-phase decisions: return these from `onRequest`. */
export const decide = {
  /** Proceed; `changes` is a `Changes` (or nothing: change nothing). */
  proceed(changes) {
    const val = changes instanceof Changes ? changes.build() : (changes ?? new Changes().build());
    return { tag: 'proceed', val };
  },
  /** Answer now with an OpenAI-shaped error (status 400..=599); nothing is forwarded. */
  error(status, kind, message) {
    return { tag: 'respond', val: { tag: 'error', val: errorReply(status, kind, message) } };
  },
  /** Answer now with a complete assistant message. */
  completion(text) {
    return { tag: 'respond', val: { tag: 'completion', val: text } };
  },
};

/** An `error-reply` record. */
export function errorReply(status, kind, message) {
  return { status, message, kind };
}

/** Whole-response actions: return these from `onResponse`. */
export const respond = {
  pass: () => ({ tag: 'pass' }),
  edit: (edits) => ({ tag: 'edit', val: edits }),
  abort: (status, kind, message) => ({ tag: 'abort', val: errorReply(status, kind, message) }),
  escalate: (upstream, reason, model) => ({ tag: 'escalate', val: { upstream, model, reason } }),
};

/** Stream-event actions: return these from `onEvent`. */
export const event = {
  pass: () => ({ tag: 'pass' }),
  /** Send these deltas (`{ choice, text }`) instead; an empty list sends nothing now. */
  replace: (deltas) => ({ tag: 'replace', val: deltas }),
  hold: () => ({ tag: 'hold' }),
  abort: (status, kind, message) => ({ tag: 'abort', val: errorReply(status, kind, message) }),
  escalate: (upstream, reason, model) => ({ tag: 'escalate', val: { upstream, model, reason } }),
};

/** Parse the config JSON that `init` receives; an error names the problem. */
export function parseConfig(configJson) {
  try {
    const value = JSON.parse(configJson);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('not a table');
    }
    return value;
  } catch (e) {
    throw `invalid plugin config: ${e.message}`;
  }
}

/** Whether a request entry is conversation text (not a `field:` or `binary:` entry). */
export function isTurn(role) {
  return !role.startsWith('field:') && !role.startsWith('binary:');
}

/** Whether this is the proxy's probe request, sent through every new plugin version. */
export function isProbe(req) {
  return req.tags.some(([k]) => k === 'switchyard.probe');
}

/**
 * The UTF-8 byte offset of JavaScript string index `index` (UTF-16 code units, as `indexOf`,
 * `match.index` and `length` count) in `text`. Throws on an index inside a surrogate pair or out
 * of range: such an edit would split a character.
 */
export function utf8Offset(text, index) {
  if (!Number.isInteger(index) || index < 0 || index > text.length) {
    throw new RangeError(`index ${index} is outside the text (length ${text.length})`);
  }
  let bytes = 0;
  for (let i = 0; i < index; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && isLow(text.charCodeAt(i + 1))) {
      if (i + 1 === index) {
        throw new RangeError(`index ${index} splits a surrogate pair`);
      }
      bytes += 4;
      i++;
    } else bytes += 3; // BMP, and lone surrogates (which the host would see as U+FFFD)
  }
  return bytes;
}

function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The UTF-8 length of `text` in bytes. */
export function utf8Length(text) {
  return utf8Offset(text, text.length);
}

/**
 * A `text-edit` that replaces `text.slice(start, end)` of message (or choice) `message` with
 * `replacement`; `start`/`end` are JavaScript string indices, converted to UTF-8 bytes.
 */
export function textEdit(message, text, start, end, replacement) {
  if (end < start) throw new RangeError(`edit end ${end} is before its start ${start}`);
  return { message, start: utf8Offset(text, start), end: utf8Offset(text, end), replacement };
}

/**
 * Edits for every match of `pattern` (a RegExp; the `g` flag is added) in `text`:
 * `replace(match)` returns the replacement, or `null`/`undefined` to leave that match alone.
 * Edits come out sorted and disjoint, as the host wants them.
 */
export function editMatches(message, text, pattern, replace) {
  const flags = pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g';
  const re = new RegExp(pattern.source, flags);
  const edits = [];
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) continue;
    const r = replace(m);
    if (r === null || r === undefined) continue;
    edits.push(textEdit(message, text, m.index, m.index + m[0].length, r));
  }
  return edits;
}

/** Apply edits (UTF-8 offsets) to `text`, as the host does: for tests and for previews. */
export function applyEdits(text, edits) {
  const bytes = new TextEncoder().encode(text);
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  const parts = [];
  let last = 0;
  for (const e of sorted) {
    parts.push(bytes.subarray(last, e.start), new TextEncoder().encode(e.replacement));
    last = e.end;
  }
  parts.push(bytes.subarray(last));
  const dec = new TextDecoder('utf-8', { fatal: true });
  return parts.map((p) => dec.decode(p, { stream: true })).join('') + dec.decode();
}

/**
 * Stream text held back per choice until it can no longer be the start of a placeholder, with
 * every complete placeholder replaced by its original. A placeholder split over events
 * (`"<EM"`, `"P_1> ok"`) is restored whole; text that merely looks like one starts (`"a < b"`)
 * is released as soon as the next character rules it out.
 *
 * `placeholders`: a Map (or object) from placeholder text to what it stands for.
 */
export class PlaceholderStream {
  constructor(placeholders) {
    this.map = placeholders instanceof Map ? placeholders : new Map(Object.entries(placeholders));
    this.pending = new Map();
  }

  /** Map placeholder -> original, as the request phase issued them. */
  get placeholders() {
    return this.map;
  }

  /**
   * Take one event's text for `choice`; returns the text that is safe to send now (restored).
   * `finished`: no more text comes for this choice (its finish reason arrived): release all.
   */
  push(choice, text, finished = false) {
    const pending = (this.pending.get(choice) ?? '') + text;
    const cut = finished ? pending.length : this.safeLength(pending);
    this.pending.set(choice, pending.slice(cut));
    return this.restore(pending.slice(0, cut));
  }

  /** The event action for `ev` (an `onEvent` argument): pass when nothing changed. */
  onEvent(ev) {
    const untouched = !this.pending.get(ev.choice);
    const out = this.push(ev.choice, ev.text, ev.finishReason !== undefined && ev.finishReason !== null);
    if (untouched && !this.pending.get(ev.choice) && out === ev.text) return event.pass();
    return event.replace(out === '' ? [] : [{ choice: ev.choice, text: out }]);
  }

  /** The stream ended: every choice's held text, restored, as deltas for `onStreamEnd`. */
  end() {
    const out = [];
    for (const [choice, text] of [...this.pending.entries()].sort((a, b) => a[0] - b[0])) {
      if (text !== '') out.push({ choice, text: this.restore(text) });
    }
    this.pending.clear();
    return out;
  }

  /** Replace every complete placeholder in `text` with its original. */
  restore(text) {
    if (this.map.size === 0) return text;
    let out = '';
    let i = 0;
    while (i < text.length) {
      const hit = this.longestAt(text, i);
      if (hit) {
        out += this.map.get(hit);
        i += hit.length;
      } else {
        out += text[i];
        i += 1;
      }
    }
    return out;
  }

  longestAt(text, i) {
    let best;
    for (const p of this.map.keys()) {
      if (p.length > 0 && text.startsWith(p, i) && (!best || p.length > best.length)) best = p;
    }
    return best;
  }

  /** The length of the prefix of `pending` that no later text can turn into a placeholder. */
  safeLength(pending) {
    let longest = 0;
    for (const p of this.map.keys()) longest = Math.max(longest, p.length);
    for (let i = Math.max(0, pending.length - longest + 1); i < pending.length; i++) {
      const tail = pending.slice(i);
      for (const p of this.map.keys()) {
        if (p.length > tail.length && p.startsWith(tail)) return i;
      }
    }
    return pending.length;
  }
}
