// {{name}}: a Switchyard plugin in JavaScript, made from the template. It refuses requests with a
// blocked word, masks digits in user messages and tags what it saw. Change it to your needs; the
// fixtures in fixtures/ say what it must do (`switchyard plugin test`).
import { Changes, decide, editMatches, parseConfig } from './sdk/switchyard.js';
import { counterAdd, log } from './sdk/host.js';

let config = { blocked_words: [], mask_digits: false };

// Called on every fresh instance (and once at load, so a bad config never goes live).
export function init(configJson) {
  const c = parseConfig(configJson);
  for (const key of Object.keys(c)) {
    if (!['blocked_words', 'mask_digits'].includes(key)) throw `unknown config key ${key}`;
  }
  config = { ...config, ...c };
}

// The request phase: answer now, or proceed with changes.
export function onRequest(req) {
  const blocked = req.messages.some((m) => config.blocked_words.some((w) => m.content.includes(w)));
  if (blocked) {
    counterAdd('blocked', 1);
    log('info', 'request refused: blocked word'); // never log prompt text
    return decide.error(400, 'policy_violation', 'this request is not allowed');
  }
  const changes = new Changes().tag('template', 'seen');
  if (config.mask_digits) {
    req.messages.forEach((m, i) => {
      // JavaScript indices; the SDK turns them into the UTF-8 byte offsets the host wants.
      if (m.role === 'user') changes.edit(editMatches(i, m.content, /[0-9]/, () => '#'));
    });
  }
  return decide.proceed(changes);
}

// Response hooks: only called when a decision set watchResponse(); this template does not.
export function onResponse(_resp) {
  return { tag: 'pass' };
}
export function onEvent(_ev) {
  return { tag: 'pass' };
}
export function onStreamEnd() {
  return [];
}
