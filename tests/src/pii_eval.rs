//! The PII evaluation's corpus and scoring (the program is `src/bin/pii-eval`): labelled JSON-lines
//! records from `scripts/pii-corpus/generate.py`, checked on load; redacted text mapped back onto
//! the input through the plugin's own restore; and the matching rule that scores it.
//!
//! **Matching rule.** A redaction is a span of the input that the plugin replaced by a
//! placeholder. A labelled entity is *caught* when every letter and digit of its span lies inside
//! redactions (spaces and punctuation may stay), *partial* when some but not all do, *missed* when
//! none do. A redaction is a true positive when it covers a letter or digit of any labelled entity
//! (incidental ones included), else a false positive. An entity is *typed right* when one of the
//! redactions over it has the entity's type.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use switchyard::plugin::{
    LlmRequest, LlmResponse, Message, PluginRegistry, RequestOutcome, ResponseOutcome,
};

/// One message of the corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: String,
    /// `labelled` (planted entities) or `natural` (real text: false positives per 10k words).
    pub kind: String,
    /// The message's form (`ticket`, `csv`, ...) or the natural text's source.
    pub carrier: String,
    pub text: String,
    /// Whitespace-separated words (the unit of false positives per 10,000 words).
    pub words: u64,
    pub entities: Vec<Entity>,
}

/// A labelled span of a record's text.
#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    /// UTF-8 byte offsets into the text, end exclusive.
    pub start: usize,
    pub end: usize,
    /// The text at the span: checked on load, so wrong offsets fail loudly.
    pub value: String,
    /// Phones: region (ISO 3166 alpha-2); cards: brand; IBANs: country.
    #[serde(default)]
    pub region: Option<String>,
    /// Phones: rank of the region among the 40 most populous countries (0: not one of them).
    #[serde(default)]
    pub rank: u32,
    #[serde(default)]
    pub format: Option<String>,
    /// Real PII found in natural text (a license's email): not scored, not a false positive.
    #[serde(default)]
    pub incidental: bool,
}

/// Reads and checks a corpus file: every entity's offsets are in the text, on char boundaries,
/// in order, and hold its value.
pub fn load(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let r: Record = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a corpus record", path.display(), i + 1))?;
        check(&r).with_context(|| format!("{}:{}: record {}", path.display(), i + 1, r.id))?;
        out.push(r);
    }
    Ok(out)
}

/// The offsets of a record's entities are consistent with its text.
pub fn check(r: &Record) -> anyhow::Result<()> {
    let mut last = 0;
    for e in &r.entities {
        if e.start >= e.end || e.end > r.text.len() || e.start < last {
            bail!("entity {:?} at {}..{} is out of order or range", e.value, e.start, e.end);
        }
        match r.text.get(e.start..e.end) {
            Some(v) if v == e.value => {}
            other => {
                bail!("entity at {}..{} holds {other:?}, labelled {:?}", e.start, e.end, e.value)
            }
        }
        last = e.end;
    }
    Ok(())
}

/// A span of the input that the plugin replaced with a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub start: usize,
    pub end: usize,
    /// The placeholder's type in lower case (`<PHONE_3>` -> `phone`).
    pub kind: String,
}

/// Byte spans of placeholder-shaped tokens (`<TYPE_N>`: upper-case letters, digits and `_`,
/// then `_` and digits) in `s`.
pub fn placeholders(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len()
                && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_')
            {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' && is_placeholder(&s[i + 1..j]) {
                out.push((i, j + 1));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn is_placeholder(inner: &str) -> bool {
    match inner.rsplit_once('_') {
        Some((t, n)) => {
            t.starts_with(|c: char| c.is_ascii_uppercase())
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// The type of a placeholder token, lower case.
fn kind_of(token: &str) -> String {
    let inner = token.trim_start_matches('<').trim_end_matches('>');
    inner.rsplit_once('_').map_or(inner, |(t, _)| t).to_ascii_lowercase()
}

/// The redactions that turned `input` into `output`, given what each placeholder stands for
/// (`restore`; a token absent from it, or restored to itself, is text the plugin did not issue).
/// Fails when putting the values back does not give `input` exactly.
pub fn align(
    input: &str,
    output: &str,
    restore: &HashMap<String, String>,
) -> Result<Vec<Redaction>, String> {
    let mut rebuilt = String::with_capacity(input.len());
    let mut reds = Vec::new();
    let mut last = 0;
    for (s, e) in placeholders(output) {
        let token = &output[s..e];
        let Some(value) = restore.get(token).filter(|v| *v != token) else { continue };
        rebuilt.push_str(&output[last..s]);
        let start = rebuilt.len();
        rebuilt.push_str(value);
        reds.push(Redaction { start, end: rebuilt.len(), kind: kind_of(token) });
        last = e;
    }
    rebuilt.push_str(&output[last..]);
    if rebuilt == input {
        Ok(reds)
    } else {
        let at = rebuilt.bytes().zip(input.bytes()).take_while(|(a, b)| a == b).count();
        Err(format!("the restored text differs from the input at byte {at}"))
    }
}

/// Counts for one group of entities (a type, a format, a region).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub support: u64,
    pub caught: u64,
    pub partial: u64,
    /// Caught, and a redaction over it has the entity's type.
    pub typed: u64,
}

impl Counts {
    pub fn recall(&self) -> Option<f64> {
        (self.support > 0).then(|| self.caught as f64 / self.support as f64)
    }
}

/// Redactions of one type: on labelled text (true/false positives) and on natural text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub tp: u64,
    pub fp: u64,
    /// On natural text, redactions that do not cover an incidental entity.
    pub natural_fp: u64,
    /// On natural text, redactions of real (incidental) emails and IPs.
    pub natural_incidental: u64,
}

impl Flags {
    pub fn precision(&self) -> Option<f64> {
        (self.tp + self.fp > 0).then(|| self.tp as f64 / (self.tp + self.fp) as f64)
    }
}

/// One example for the detector authors: a miss or a false positive, with context.
#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub what: String,
    pub text: String,
    pub context: String,
}

/// Everything scored so far.
#[derive(Debug, Default)]
pub struct Scores {
    pub by_type: BTreeMap<String, Counts>,
    pub by_format: BTreeMap<(String, String), Counts>,
    /// Phones by region: (rank, region) so the 40 most populous sort first, by population.
    pub phone_regions: BTreeMap<(u32, String), Counts>,
    pub card_brands: BTreeMap<String, Counts>,
    pub flags: BTreeMap<String, Flags>,
    pub labelled_words: u64,
    pub natural_words: u64,
    pub natural_by_source: BTreeMap<String, (u64, u64)>,
    /// Records whose redacted text could not be mapped back (scored by value presence).
    pub unaligned: u64,
    /// Labelled messages holding at least one entity, and those of them with every entity
    /// caught: the share of messages that reach the upstream without any PII left.
    pub messages_with_pii: u64,
    pub messages_clean: u64,
    pub misses: Vec<Example>,
    pub false_positives: Vec<Example>,
}

/// Whether every / any letter or digit of `text[start..end]` is covered by `reds`.
fn coverage(text: &str, start: usize, end: usize, reds: &[Redaction]) -> (bool, bool) {
    let (mut all, mut any) = (true, false);
    for (i, c) in text[start..end].char_indices() {
        if !c.is_alphanumeric() {
            continue;
        }
        let at = start + i;
        if reds.iter().any(|r| r.start <= at && at < r.end) {
            any = true;
        } else {
            all = false;
        }
    }
    (all && any, any)
}

fn context(text: &str, start: usize, end: usize) -> String {
    let mut a = start.saturating_sub(30);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (end + 30).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    text[a..b].replace('\n', "⏎")
}

impl Scores {
    /// Scores one record given its redactions (`Err`: the output could not be aligned, so an
    /// entity counts as caught when its value is gone from `output`).
    pub fn add(&mut self, r: &Record, reds: Result<&[Redaction], &str>) {
        let reds = match reds {
            Ok(reds) => reds,
            Err(output) => {
                self.unaligned += 1;
                for e in r.entities.iter().filter(|e| !e.incidental) {
                    let caught = !output.contains(e.value.as_str());
                    self.count(r, e, caught, false, false);
                }
                return;
            }
        };
        if r.kind == "natural" {
            self.natural_words += r.words;
            let src = self.natural_by_source.entry(r.carrier.clone()).or_default();
            src.0 += r.words;
        } else {
            self.labelled_words += r.words;
        }
        let mut clean = true;
        for e in r.entities.iter().filter(|e| !e.incidental) {
            let (all, any) = coverage(&r.text, e.start, e.end, reds);
            let typed =
                all && reds.iter().any(|d| d.kind == e.kind && d.start < e.end && e.start < d.end);
            self.count(r, e, all, any && !all, typed);
            clean &= all;
        }
        if r.entities.iter().any(|e| !e.incidental) {
            self.messages_with_pii += 1;
            self.messages_clean += u64::from(clean);
        }
        for d in reds {
            let overlaps = |e: &&Entity| {
                let (a, b) = (e.start.max(d.start), e.end.min(d.end));
                a < b && r.text[a..b].chars().any(char::is_alphanumeric)
            };
            let hit = r.entities.iter().any(|e| overlaps(&e));
            let incidental = r.entities.iter().filter(|e| e.incidental).any(|e| overlaps(&e));
            let f = self.flags.entry(d.kind.clone()).or_default();
            if r.kind == "natural" {
                if incidental {
                    f.natural_incidental += 1;
                } else {
                    f.natural_fp += 1;
                    self.natural_by_source.entry(r.carrier.clone()).or_default().1 += 1;
                    self.false_positives.push(Example {
                        id: r.id.clone(),
                        what: d.kind.clone(),
                        text: r.text[d.start..d.end].to_string(),
                        context: context(&r.text, d.start, d.end),
                    });
                }
            } else if hit {
                f.tp += 1;
            } else {
                f.fp += 1;
                self.false_positives.push(Example {
                    id: r.id.clone(),
                    what: d.kind.clone(),
                    text: r.text[d.start..d.end].to_string(),
                    context: context(&r.text, d.start, d.end),
                });
            }
        }
    }

    fn count(&mut self, r: &Record, e: &Entity, caught: bool, partial: bool, typed: bool) {
        let bump = |c: &mut Counts| {
            c.support += 1;
            c.caught += u64::from(caught);
            c.partial += u64::from(partial);
            c.typed += u64::from(typed);
        };
        bump(self.by_type.entry(e.kind.clone()).or_default());
        let format = e.format.clone().unwrap_or_default();
        bump(self.by_format.entry((e.kind.clone(), format.clone())).or_default());
        let region = e.region.clone().unwrap_or_default();
        match e.kind.as_str() {
            "phone" => bump(self.phone_regions.entry((e.rank, region)).or_default()),
            "card" => bump(self.card_brands.entry(region).or_default()),
            _ => {}
        }
        if !caught {
            self.misses.push(Example {
                id: r.id.clone(),
                what: format!("{} {format}{}", e.kind, if partial { " (partial)" } else { "" }),
                text: e.value.clone(),
                context: context(&r.text, e.start, e.end),
            });
        }
    }
}

/// The pii-redact entry's `config` table in `switchyard.toml` (the default chain as shipped), as
/// JSON for a `PluginEntry`.
pub fn shipped_config(
    switchyard_toml: &Path,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(switchyard_toml)
        .with_context(|| format!("read {}", switchyard_toml.display()))?;
    let doc: toml::Value = toml::from_str(&text)?;
    let entry = doc
        .get("plugin")
        .and_then(toml::Value::as_array)
        .and_then(|ps| {
            ps.iter().find(|p| p.get("name").and_then(toml::Value::as_str) == Some("pii-redact"))
        })
        .context("switchyard.toml has no [[plugin]] named pii-redact")?;
    let config = entry.get("config").cloned().unwrap_or(toml::Value::Table(Default::default()));
    match serde_json::to_value(config)? {
        serde_json::Value::Object(m) => Ok(m),
        _ => bail!("pii-redact's config is not a table"),
    }
}

/// A chat request with these user messages.
pub fn request(texts: &[&str]) -> LlmRequest {
    LlmRequest {
        endpoint: "/v1/chat/completions".into(),
        model: Some("m".into()),
        stream: false,
        messages: texts
            .iter()
            .map(|t| Message { role: "user".into(), content: t.to_string() })
            .collect(),
        params_json: "{}".into(),
        tenant: None,
        headers: vec![],
        tags: vec![],
    }
}

/// Sends `texts` as the user messages of one request through the registry (pii-redact in
/// pseudonymize mode), then asks its restore what each issued placeholder stands for: a
/// non-streamed answer whose choices are the placeholders, one each. Returns, per message, the
/// redacted text and its redactions (or why they could not be aligned).
pub async fn redact(
    reg: &PluginRegistry,
    texts: &[&str],
) -> anyhow::Result<Vec<(String, Result<Vec<Redaction>, String>)>> {
    let mut p = match reg.current().on_request(request(texts)).await {
        RequestOutcome::Proceed(p) => p,
        other => bail!("the plugin did not let the request proceed: {other:?}"),
    };
    let outputs: Vec<String> = p.request.messages.iter().map(|m| m.content.clone()).collect();
    let mut tokens: Vec<String> = outputs
        .iter()
        .flat_map(|o| placeholders(o).into_iter().map(|(s, e)| o[s..e].to_string()))
        .collect();
    tokens.sort();
    tokens.dedup();
    let mut restore = HashMap::new();
    if !tokens.is_empty() && !p.watch.is_empty() {
        let resp = LlmResponse {
            upstream: "eval".into(),
            model: None,
            status: 200,
            choices: tokens.clone(),
            finish_reasons: vec![Some("stop".into()); tokens.len()],
        };
        match p.watch.on_response(resp).await {
            ResponseOutcome::Send { choices, .. } if choices.len() == tokens.len() => {
                restore.extend(tokens.into_iter().zip(choices));
            }
            ResponseOutcome::Send { .. } => bail!("the restore changed the number of choices"),
            other => bail!("the restore did not send the answer: {other:?}"),
        }
    }
    if outputs.len() != texts.len() {
        bail!("{} messages in, {} out", texts.len(), outputs.len());
    }
    Ok(outputs
        .into_iter()
        .zip(texts)
        .map(|(out, input)| {
            let reds = align(input, &out, &restore);
            (out, reds)
        })
        .collect())
}
