//! wrk, as the HTTP benchmarks drive it: a request script, one run parsed into latency
//! percentiles, throughput and failures, targets measured in interleaved rounds, and the table of
//! added latency that the overhead benchmarks print for BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::procs::{cpu_ns, median};

/// One wrk run, parsed.
pub struct Run {
    pub p50_us: f64,
    pub p99_us: f64,
    pub rps: f64,
    /// Completed requests.
    pub requests: u64,
    /// Answers with a status outside 2xx/3xx: a benchmark that must not be refused counts them.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors together.
    pub socket_errors: u64,
}

/// Runs wrk with `script` against `url`.
pub fn run(script: &Path, url: &str, threads: u32, conns: u32, seconds: u64) -> Result<Run> {
    let output = Command::new("wrk")
        .args(["--latency", "-t", &threads.to_string(), "-c", &conns.to_string()])
        .args(["-d", &format!("{seconds}s"), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let percentile = |label: &str| -> Result<f64> {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(label)).context("percentile")?;
        parse_duration_us(line.split_whitespace().nth(1).context("value")?)
    };
    let after = |prefix: &str| text.lines().find_map(|l| l.trim_start().strip_prefix(prefix));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .context("request count")?
        .parse()?;
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = after("Socket errors:")
        .map(|s| s.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Ok(Run {
        p50_us: percentile("50%")?,
        p99_us: percentile("99%")?,
        rps: after("Requests/sec:").context("requests/sec")?.trim().parse()?,
        requests,
        non_2xx: after("Non-2xx or 3xx responses:").map_or(Ok(0), |n| n.trim().parse())?,
        socket_errors,
    })
}

fn parse_duration_us(value: &str) -> Result<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic()).context("unit")?;
    let number: f64 = value[..split].parse()?;
    Ok(match &value[split..] {
        "us" => number,
        "ms" => number * 1_000.0,
        "s" => number * 1_000_000.0,
        unit => bail!("unknown unit {unit}"),
    })
}

/// A chat request of about 2 KB (the body every proxy benchmark sends).
pub fn chat_body_2kb(temperature: f64) -> String {
    let sentence = "Please summarise the quarterly report for the operations team and list risks. ";
    let text: String = sentence.repeat(2048 / sentence.len());
    serde_json::json!({
        "model": "bench", "temperature": temperature,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}],
    })
    .to_string()
}

/// A wrk script that POSTs `body` as JSON with `headers` added.
pub fn script(body: &str, headers: &[(&str, &str)]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = format!(
        "wrk.method = \"POST\"\nwrk.body = \"{}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        quote(body)
    );
    for (name, value) in headers {
        text.push_str(&format!("wrk.headers[\"{}\"] = \"{}\"\n", quote(name), quote(value)));
    }
    text
}

/// What a benchmark measures: a name in the table, a URL and the wrk script to send it.
pub struct Target {
    pub name: String,
    pub url: String,
    pub script: PathBuf,
    /// The process whose CPU time is charged to each request (the proxy), if any.
    pub pid: Option<u32>,
}

/// A target's cells: medians over rounds, failures summed over every run.
pub struct Measured {
    pub p50_us: f64,
    pub p99_us: f64,
    pub rps_64: f64,
    /// req/s at 64 connections in each round, in order: a ratio of two targets taken round by
    /// round compares cells measured seconds apart, not minutes.
    pub rps_rounds: Vec<f64>,
    /// p50 µs at 1 connection in each round, in order (for [`paired_difference`]).
    pub p50_rounds: Vec<f64>,
    /// CPU µs per request at 1 and at 64 connections in each round, in order, when the target
    /// names its process.
    pub cpu_1_rounds: Option<Vec<f64>>,
    pub cpu_64_rounds: Option<Vec<f64>>,
    /// CPU µs that the target's process spent per request at 1 and at 64 connections (medians
    /// over rounds), when the target names its process.
    pub cpu_us_1: Option<f64>,
    pub cpu_us_64: Option<f64>,
    /// Requests completed in the measured runs (both connection counts, every round).
    pub requests: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// Warms every target up (2 s at 1 connection: pools, caches, page faults), then measures each
/// for `seconds` at 1 connection (latency) and at 64 (2 wrk threads: throughput), in `rounds`
/// that interleave the targets so background load hits all of them alike. `between` runs after
/// the warm-up (to reset counters that should cover only the measured runs).
pub fn measure(
    targets: &[Target],
    rounds: u64,
    seconds: u64,
    between: impl FnOnce() -> Result<()>,
) -> Result<Vec<Measured>> {
    for target in targets {
        run(&target.script, &target.url, 1, 1, 2)?;
    }
    between()?;
    let mut runs: Vec<Vec<(Charged, Charged)>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (target, cells) in targets.iter().zip(&mut runs) {
            let one = charged(target.pid, || run(&target.script, &target.url, 1, 1, seconds))?;
            let many = charged(target.pid, || run(&target.script, &target.url, 2, 64, seconds))?;
            cells.push((one, many));
        }
    }
    Ok(runs
        .iter()
        .map(|cells| {
            let sum = |f: fn(&Run) -> u64| cells.iter().map(|(a, b)| f(&a.0) + f(&b.0)).sum();
            let rounds = |f: fn(&(Charged, Charged)) -> &Charged| -> Option<Vec<f64>> {
                cells.iter().map(|c| f(c).1).collect()
            };
            let cpu = |f| rounds(f).map(|each| median(each.into_iter()));
            Measured {
                p50_us: median(cells.iter().map(|c| c.0.0.p50_us)),
                p99_us: median(cells.iter().map(|c| c.0.0.p99_us)),
                rps_64: median(cells.iter().map(|c| c.1.0.rps)),
                rps_rounds: cells.iter().map(|c| c.1.0.rps).collect(),
                p50_rounds: cells.iter().map(|c| c.0.0.p50_us).collect(),
                cpu_1_rounds: rounds(|c| &c.0),
                cpu_64_rounds: rounds(|c| &c.1),
                cpu_us_1: cpu(|c| &c.0),
                cpu_us_64: cpu(|c| &c.1),
                requests: sum(|r| r.requests),
                non_2xx: sum(|r| r.non_2xx),
                socket_errors: sum(|r| r.socket_errors),
            }
        })
        .collect())
}

/// A run with the CPU µs per request its target's process spent during it (None without a
/// process, or when its time cannot be read).
type Charged = (Run, Option<f64>);

fn charged(pid: Option<u32>, run: impl FnOnce() -> Result<Run>) -> Result<Charged> {
    let before = pid.and_then(cpu_ns);
    let done = run()?;
    let after = pid.and_then(cpu_ns);
    let per_request = match (before, after) {
        (Some(b), Some(a)) if done.requests > 0 => {
            Some(a.saturating_sub(b) as f64 / 1_000.0 / done.requests as f64)
        }
        _ => None,
    };
    Ok((done, per_request))
}

/// The table of an overhead benchmark: every row against the first (the baseline).
pub fn print_overhead_table(targets: &[Target], results: &[Measured]) {
    let Some(base) = results.first() else { return };
    println!(
        "| configuration | p50 (1 conn) | p99 (1 conn) | added p50 | req/s (64 conns) | \
         vs first row | requests | non-2xx | socket errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (target, r) in targets.iter().zip(results) {
        println!(
            "| {} | {:.1} µs | {:.0} µs | {:+.1} µs | {:.0} | {:.2}× | {} | {} | {} |",
            target.name,
            r.p50_us,
            r.p99_us,
            r.p50_us - base.p50_us,
            r.rps_64,
            r.rps_64 / base.rps_64,
            r.requests,
            r.non_2xx,
            r.socket_errors
        );
    }
}

/// The mean of the per-round differences `new[i] - old[i]` and the half-width of its 95 %
/// confidence interval (Student's t, n − 1 degrees of freedom): two targets measured in the same
/// round saw the same machine, so differences taken round by round cancel most of the drift that
/// makes two medians of a shared VM disagree from one run to the next. None under two rounds.
pub fn paired_difference(new: &[f64], old: &[f64]) -> Option<(f64, f64)> {
    let d: Vec<f64> = new.iter().zip(old).map(|(n, o)| n - o).collect();
    let n = d.len();
    if n < 2 {
        return None;
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((mean, t95(n - 1) * (var / n as f64).sqrt()))
}

/// Two-sided 95 % critical value of Student's t with `df` degrees of freedom (standard tables;
/// 2.0 from 31 to 60, the normal 1.96 beyond).
fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        31..=60 => 2.0,
        _ => 1.96,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_difference_has_a_narrow_interval_and_noise_a_wide_one() {
        let old = [100.0, 120.0, 90.0, 110.0];
        let steady = [110.0, 130.0, 100.0, 120.0];
        let (mean, half) = paired_difference(&steady, &old).expect("four rounds");
        assert!((mean - 10.0).abs() < 1e-9 && half.abs() < 1e-9, "{mean} ± {half}");

        let noisy = [90.0, 140.0, 80.0, 130.0];
        let (mean, half) = paired_difference(&noisy, &old).expect("four rounds");
        assert!((mean - 5.0).abs() < 1e-9, "{mean}");
        // Differences -10, 20, -10, 20: sd 17.32, se 8.66, t(3) 3.182.
        assert!((half - 3.182 * 8.660_254).abs() < 1e-3, "{half}");
        assert!(mean - half < 0.0 && mean + half > 0.0, "noise straddles zero");
    }

    #[test]
    fn one_round_gives_no_interval() {
        assert_eq!(paired_difference(&[1.0], &[2.0]), None);
        assert_eq!(paired_difference(&[], &[]), None);
    }
}
