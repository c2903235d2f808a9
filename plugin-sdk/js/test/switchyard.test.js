// Unit tests of the JavaScript SDK under plain Node: `node --test plugin-sdk/js/test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Changes, decide, editMatches, applyEdits, textEdit, utf8Offset, utf8Length, PlaceholderStream,
  parseConfig,
} from '../switchyard.js';

test('utf8Offset counts UTF-8 bytes of 1, 2, 3 and 4-byte characters', () => {
  const s = 'aé€😀b';
  assert.deepEqual([0, 1, 2, 3, 5, 6].map((i) => utf8Offset(s, i)), [0, 1, 3, 6, 10, 11]);
  assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'));
});

test('utf8Offset refuses an index inside a surrogate pair or out of range', () => {
  assert.throws(() => utf8Offset('😀', 1), /surrogate/);
  assert.throws(() => utf8Offset('ab', 3), /outside/);
  assert.throws(() => utf8Offset('ab', -1), /outside/);
});

test('editMatches gives byte offsets that the host applies to the right characters', () => {
  const text = 'Zürich 8001, 🚀 42 𝔘 7';
  const edits = editMatches(1, text, /[0-9]+/, (m) => '#'.repeat(m[0].length));
  assert.equal(edits[0].message, 1);
  assert.equal(applyEdits(text, edits), 'Zürich ####, 🚀 ## 𝔘 #');
  for (const e of edits) assert.ok(e.start < e.end);
});

test('textEdit converts both ends and refuses a reversed range', () => {
  assert.deepEqual(textEdit(0, '€€x', 2, 3, 'y'), { message: 0, start: 6, end: 7, replacement: 'y' });
  assert.throws(() => textEdit(0, 'abc', 2, 1, ''));
});

test('decisions have the shape of the WIT variants', () => {
  const d = decide.proceed(new Changes().route('hosted', 'gpt', ['local']).noCache().tag('a', 'b').watchResponse());
  assert.equal(d.tag, 'proceed');
  assert.deepEqual(d.val.route, { upstream: 'hosted', model: 'gpt', fallbacks: ['local'] });
  assert.deepEqual(d.val.cache, { tag: 'no-cache' });
  assert.deepEqual(d.val.tags, [['a', 'b']]);
  assert.equal(d.val.watchResponse, true);
  assert.deepEqual(decide.error(400, 'policy_violation', 'no'), {
    tag: 'respond', val: { tag: 'error', val: { status: 400, message: 'no', kind: 'policy_violation' } },
  });
  assert.deepEqual(decide.proceed().val.edits, []);
});

test('parseConfig refuses what is not a JSON table', () => {
  assert.deepEqual(parseConfig('{"a":1}'), { a: 1 });
  assert.throws(() => parseConfig('[1]'), /invalid plugin config/);
  assert.throws(() => parseConfig('{'), /invalid plugin config/);
});

test('PlaceholderStream restores a placeholder split at every position', () => {
  const whole = 'Hi <EMP_1>, see <PROJ_2>. a < b <';
  const want = 'Hi EMP-123456, see Bluebird. a < b <';
  for (let i = 0; i <= whole.length; i++) {
    for (let j = i; j <= whole.length; j++) {
      const s = new PlaceholderStream({ '<EMP_1>': 'EMP-123456', '<PROJ_2>': 'Bluebird' });
      const parts = [whole.slice(0, i), whole.slice(i, j), whole.slice(j)].map((p) => s.push(0, p));
      const emitted = parts.join('') + s.end().map((d) => d.text).join('');
      assert.equal(emitted, want, `split at ${i}, ${j}`);
      // No chunk ever carries a half placeholder.
      for (const p of parts) assert.ok(!/<[EP]/.test(p), `a half placeholder was released: ${p}`);
    }
  }
});

test('PlaceholderStream holds only what could still become a placeholder', () => {
  const s = new PlaceholderStream({ '<EMP_1>': 'EMP-1' });
  assert.equal(s.push(0, 'a <'), 'a ');
  assert.equal(s.push(0, 'b'), '<b');
  assert.equal(s.push(0, '<EM'), '');
  assert.equal(s.push(0, 'P_1> and 😀', false), 'EMP-1 and 😀');
  assert.equal(s.push(1, '<EMP', true), '<EMP'); // finished: released as it is
});

test('PlaceholderStream.onEvent passes untouched events and replaces the rest', () => {
  const s = new PlaceholderStream({ '<X_1>': 'secret' });
  assert.deepEqual(s.onEvent({ choice: 0, text: 'plain', finishReason: undefined }), { tag: 'pass' });
  assert.deepEqual(s.onEvent({ choice: 0, text: 'a <X', finishReason: undefined }), {
    tag: 'replace', val: [{ choice: 0, text: 'a ' }],
  });
  assert.deepEqual(s.onEvent({ choice: 0, text: '_1>', finishReason: undefined }), {
    tag: 'replace', val: [{ choice: 0, text: 'secret' }],
  });
  s.push(2, '<X_');
  assert.deepEqual(s.end(), [{ choice: 2, text: '<X_' }]);
});
