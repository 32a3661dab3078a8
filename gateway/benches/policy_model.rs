//! Cost of judging one message's content: the rules alone, the model alone, and both as the send pipeline runs them
//! (`policy::assess_with`). Messages are the corpus and held-out files (English and Arabic, 20–300 characters).
//! Run with `cargo bench -p gateway --bench policy_model`; BENCHMARKS.md records the figures.
use std::time::{Duration, Instant};

use gateway::policy::{self, model, ModelMode, ModelUse};

fn messages() -> Vec<&'static str> {
    [
        include_str!("../tests/corpus/marketing.txt"),
        include_str!("../tests/corpus/transactional.txt"),
        include_str!("../tests/corpus/heldout_marketing.txt"),
        include_str!("../tests/corpus/heldout_transactional.txt"),
    ]
    .iter()
    .flat_map(|f| f.lines())
    .map(str::trim)
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .map(|l| l.strip_prefix('[').and_then(|r| r.split_once(']')).map_or(l, |(_, text)| text.trim()))
    .collect()
}

/// Per-message timings over `rounds` passes through `texts`, after one warm-up pass.
fn measure(texts: &[&str], rounds: usize, mut judge: impl FnMut(&str)) -> Vec<Duration> {
    for t in texts {
        judge(t);
    }
    let mut times = Vec::with_capacity(texts.len() * rounds);
    for _ in 0..rounds {
        for t in texts {
            let start = Instant::now();
            judge(t);
            times.push(start.elapsed());
        }
    }
    times.sort_unstable();
    times
}

fn report(name: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len() as f64;
    println!(
        "{name:<34} mean {mean:7.1} µs   p50 {:7.1} µs   p99 {:7.1} µs   max {:7.1} µs   ({} runs)",
        at(0.5),
        at(0.99),
        at(1.0),
        times.len()
    );
}

fn main() {
    let texts = messages();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    println!("{} messages, {} characters on average", texts.len(), chars / texts.len());
    let start = Instant::now();
    let Some(m) = model::model() else {
        eprintln!("policy/model.bin did not load");
        std::process::exit(1);
    };
    println!(
        "model loaded in {:.1} ms (first use: header parse; weights are compiled in)",
        start.elapsed().as_secs_f64() * 1e3
    );
    let rounds = 50;
    let rules_only = ModelUse { mode: ModelMode::Off, ..ModelUse::default() };
    report(
        "rules only",
        &measure(&texts, rounds, |t| {
            std::hint::black_box(policy::assess_with(t, "transactional", rules_only));
        }),
    );
    report(
        "model score (features + weights)",
        &measure(&texts, rounds, |t| {
            std::hint::black_box(m.score(t).probability);
        }),
    );
    report(
        "model score + explanation",
        &measure(&texts, rounds, |t| {
            let scored = m.score(t);
            std::hint::black_box(m.explain(t, &scored, 5));
        }),
    );
    report(
        "rules + model (assess_with)",
        &measure(&texts, rounds, |t| {
            std::hint::black_box(policy::assess_with(t, "transactional", ModelUse::default()));
        }),
    );
}
