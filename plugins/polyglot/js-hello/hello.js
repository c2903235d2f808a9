// A minimal JavaScript plugin written against plugin-sdk/wit/plugin.wit with only the bindings
// componentize-js generates (no SDK): the host's end-to-end tests use it to prove that a JS
// component loads, sees the request and that its decision takes effect.
//
// on-request: a message that contains the configured `refuse` word is answered with a 403 and
// nothing goes upstream; any other request goes on with two headers that say what the plugin saw.
import { log } from 'switchyard:plugin/host@0.1.1';

let refuse = 'forbidden';

export function init(configJson) {
  const config = JSON.parse(configJson);
  if (typeof config.refuse === 'string') {
    refuse = config.refuse;
  }
}

export function onRequest(req) {
  if (req.messages.some((m) => m.content.includes(refuse))) {
    log('info', 'refusing a request');
    return {
      tag: 'respond',
      val: { tag: 'error', val: { status: 403, message: 'refused by js-hello', kind: 'policy_violation' } },
    };
  }
  const saw = `${req.messages.length} messages, model ${req.model ?? '-'}`;
  return {
    tag: 'proceed',
    val: {
      route: undefined,
      edits: [],
      cache: undefined,
      addHeaders: [['x-plugin-lang', 'js'], ['x-plugin-saw', saw]],
      tags: [],
      watchResponse: false,
    },
  };
}

export function onResponse(_resp) {
  return { tag: 'pass' };
}

export function onEvent(_ev) {
  return { tag: 'pass' };
}

export function onStreamEnd() {
  return [];
}
