//! The evaluation's Markdown tables: recall per type, precision and false positives per 10,000
//! words per placeholder type, phones per region (the 40 most populous countries, then the rest),
//! cards per brand, the formats that are not all caught, and examples when asked.

use switchyard_tests::pii_eval::{Counts, Scores};

fn ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.3}"))
}

fn row(name: &str, c: &Counts) {
    let typed = (c.caught > 0).then(|| c.typed as f64 / c.caught as f64);
    println!(
        "| {name} | {} | {} | {} | {} | **{}** | {} |",
        c.support,
        c.caught,
        c.partial,
        c.support - c.caught - c.partial,
        ratio(c.recall()),
        ratio(typed)
    );
}

fn sum<'a>(it: impl Iterator<Item = &'a Counts>) -> Counts {
    it.fold(Counts::default(), |mut a, c| {
        a.support += c.support;
        a.caught += c.caught;
        a.partial += c.partial;
        a.typed += c.typed;
        a
    })
}

const HEAD: &str = "| support | caught | partial | missed | recall | typed right |\n";
const RULE: &str = "|---|---|---|---|---|---|---|";

pub fn print(s: &Scores, show: usize) {
    println!("Recall per type (labelled messages; caught = every letter and digit redacted):\n");
    print!("| type {HEAD}");
    println!("{RULE}");
    for (t, c) in &s.by_type {
        row(t, c);
    }
    let structured = sum(s
        .by_type
        .iter()
        .filter(|(t, _)| !matches!(t.as_str(), "name" | "address" | "dob"))
        .map(|(_, c)| c));
    row("**structured** (all but name, address, dob)", &structured);
    let clean =
        (s.messages_with_pii > 0).then(|| s.messages_clean as f64 / s.messages_with_pii as f64);
    println!(
        "\nMessages with PII that reach the upstream with none left: {} / {} ({})",
        s.messages_clean,
        s.messages_with_pii,
        ratio(clean)
    );
    if s.unaligned > 0 {
        println!("\n{} records could not be aligned (scored by value presence)", s.unaligned);
    }
    println!(
        "\nPrecision per placeholder type (labelled: {} words; natural text without planted PII: {} words):\n",
        s.labelled_words, s.natural_words
    );
    println!(
        "| placeholder type | labelled: redactions | TP | FP | precision | natural text: FP | FP per 10k words | real emails/IPs redacted |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let per10k = |n: u64| {
        if s.natural_words == 0 {
            "n/a".to_string()
        } else {
            format!("{:.2}", n as f64 * 10_000.0 / s.natural_words as f64)
        }
    };
    let mut total_fp = 0;
    for (t, f) in &s.flags {
        total_fp += f.natural_fp;
        println!(
            "| {t} | {} | {} | {} | **{}** | {} | **{}** | {} |",
            f.tp + f.fp,
            f.tp,
            f.fp,
            ratio(f.precision()),
            f.natural_fp,
            per10k(f.natural_fp),
            f.natural_incidental
        );
    }
    println!("| **all** | | | | | {total_fp} | **{}** | |", per10k(total_fp));
    println!(
        "\nNatural text by source:\n\n| source | words | FP | FP per 10k words |\n|---|---|---|---|"
    );
    for (src, (words, fp)) in &s.natural_by_source {
        let r = if *words == 0 { 0.0 } else { *fp as f64 * 10_000.0 / *words as f64 };
        println!("| {src} | {words} | {fp} | {r:.2} |");
    }
    println!(
        "\nPhones per region (the 40 most populous countries by population, then the rest):\n"
    );
    print!("| # | region {HEAD}");
    println!("|---{RULE}");
    for ((rank, region), c) in s.phone_regions.iter().filter(|((r, _), _)| *r > 0) {
        print!("| {rank} ");
        row(region, c);
    }
    let rest: Vec<&Counts> =
        s.phone_regions.iter().filter(|((r, _), _)| *r == 0).map(|(_, c)| c).collect();
    print!("| ");
    row(&format!("other {} regions", rest.len()), &sum(rest.into_iter()));
    print!("| ");
    row("all", &sum(s.phone_regions.values()));
    println!("\nCards per brand:\n");
    print!("| brand {HEAD}");
    println!("{RULE}");
    for (b, c) in &s.card_brands {
        row(b, c);
    }
    println!("\nFormats not all caught (type, format):\n");
    print!("| type / format {HEAD}");
    println!("{RULE}");
    for ((t, f), c) in s.by_format.iter().filter(|(_, c)| c.caught < c.support) {
        row(&format!("{t} / {f}"), c);
    }
    println!();
    if show > 0 {
        println!("First {show} misses (type format: value — context):\n");
        for e in s.misses.iter().take(show) {
            println!("- {} {}: `{}` — `{}`", e.id, e.what, e.text.replace('\n', "⏎"), e.context);
        }
        println!("\nFirst {show} false positives (placeholder type: redacted text — context):\n");
        for e in s.false_positives.iter().take(show) {
            println!("- {} {}: `{}` — `{}`", e.id, e.what, e.text.replace('\n', "⏎"), e.context);
        }
        println!();
    }
}
