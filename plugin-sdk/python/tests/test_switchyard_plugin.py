"""Unit tests of the Python SDK under plain CPython, against the types componentize-py generates:
`scripts/test-plugin-sdks.sh` runs them (it generates the bindings first)."""

import re
import unittest

from wit_world.imports import types as t

import switchyard_plugin as sy


class Offsets(unittest.TestCase):
    def test_utf8_offsets_of_1_to_4_byte_characters(self):
        s = "aé€😀b"
        self.assertEqual([sy.utf8_offset(s, i) for i in range(6)], [0, 1, 3, 6, 10, 11])
        with self.assertRaises(IndexError):
            sy.utf8_offset(s, 6)

    def test_edit_matches_hit_the_right_characters(self):
        text = "Zürich 8001, 🚀 42 𝔘 7"
        edits = sy.edit_matches(1, text, re.compile("[0-9]+"), lambda m: "#" * len(m.group()))
        self.assertEqual(sy.apply_edits(text, edits), "Zürich ####, 🚀 ## 𝔘 #")
        self.assertTrue(all(e.message == 1 and e.start < e.end for e in edits))

    def test_text_edit_converts_both_ends(self):
        self.assertEqual(sy.text_edit(0, "€€x", 2, 3, "y"), t.TextEdit(0, 6, 7, "y"))
        with self.assertRaises(IndexError):
            sy.text_edit(0, "abc", 2, 1, "")


class Decisions(unittest.TestCase):
    def test_builders_make_the_wit_values(self):
        d = sy.proceed(sy.Changes().route("hosted", "gpt", ["local"]).no_cache().tag("a", "b").watch_response())
        self.assertIsInstance(d, t.Decision_Proceed)
        self.assertEqual(d.value.route, t.Route("hosted", "gpt", ["local"]))
        self.assertIsInstance(d.value.cache, t.CacheDirective_NoCache)
        self.assertEqual(d.value.tags, [("a", "b")])
        self.assertTrue(d.value.watch_response)
        e = sy.error(400, "policy_violation", "no")
        self.assertEqual(e, t.Decision_Respond(t.Reply_Error(t.ErrorReply(400, "no", "policy_violation"))))

    def test_parse_config_refuses_unknown_keys_and_bad_json(self):
        self.assertEqual(sy.parse_config('{"a": 2}', {"a": 1, "b": 0}), {"a": 2, "b": 0})
        for bad in ['{"c": 1}', "[1]", "{"]:
            with self.assertRaises(Exception) as caught:
                sy.parse_config(bad, {"a": 1})
            self.assertIn("invalid plugin config", str(caught.exception.value))


class Stream(unittest.TestCase):
    PLACEHOLDERS = {"<EMP_1>": "EMP-123456", "<PROJ_2>": "Bluebird"}

    def test_placeholders_split_anywhere_are_restored_and_never_half_released(self):
        whole = "Hi <EMP_1>, see <PROJ_2>. a < b <"
        want = "Hi EMP-123456, see Bluebird. a < b <"
        for i in range(len(whole) + 1):
            for j in range(i, len(whole) + 1):
                s = sy.PlaceholderStream(self.PLACEHOLDERS)
                parts = [s.push(0, p) for p in (whole[:i], whole[i:j], whole[j:])]
                self.assertEqual("".join(parts) + "".join(d.text for d in s.end()), want)
                for p in parts:
                    self.assertNotRegex(p, "<[EP]")

    def test_on_event_passes_untouched_events(self):
        s = sy.PlaceholderStream({"<X_1>": "secret"})
        ev = lambda text: t.StreamEvent(seq=0, committed=False, choice=0, text=text, finish_reason=None)
        self.assertIsInstance(s.on_event(ev("plain")), t.EventAction_Pass)
        self.assertEqual(s.on_event(ev("a <X")), t.EventAction_Replace([t.Delta(0, "a ")]))
        self.assertEqual(s.on_event(ev("_1>")), t.EventAction_Replace([t.Delta(0, "secret")]))


if __name__ == "__main__":
    unittest.main()
