//! Calibration of the content-policy rules against labelled messages in tests/corpus/.
//! Each corpus line is one message, optionally prefixed with the `[purpose]` it was sent
//! with (default transactional); `#` lines are comments.
use gateway::policy::{assess, decide, Assessment, Decision, BLOCK_THRESHOLD_DEFAULT, FLAG_THRESHOLD_DEFAULT};

const PURPOSES: [&str; 5] = ["transactional", "operational", "support", "internal_team", "authentication"];

struct Line {
    purpose: &'static str,
    text: &'static str,
}

fn corpus(file: &'static str) -> Vec<Line> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((purpose, text)) => {
                assert!(PURPOSES.contains(&purpose), "unknown purpose in corpus line {l:?}");
                Line { purpose, text: text.trim() }
            }
            None => Line { purpose: "transactional", text: l },
        })
        .collect()
}

fn judge(line: &Line, purpose: &str) -> (Decision, Assessment) {
    let assessment = assess(line.text, purpose);
    (decide(assessment.score, FLAG_THRESHOLD_DEFAULT, BLOCK_THRESHOLD_DEFAULT), assessment)
}

/// Decisions per line, printing the ones that are not `expected` so a failing calibration
/// says which messages moved and why.
fn tally(lines: &[Line], expected: Decision) -> [usize; 3] {
    let mut counts = [0; 3];
    for line in lines {
        let (decision, assessment) = judge(line, line.purpose);
        counts[decision as usize] += 1;
        if decision != expected {
            eprintln!("{decision:?} {} [{}] {}: {:?}", assessment.score, line.purpose, line.text, assessment.reasons);
        }
    }
    eprintln!("allow/flag/block = {counts:?} of {}", lines.len());
    counts
}

fn arabic(text: &str) -> bool {
    text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
}

fn assert_bilingual(lines: &[Line], at_least: usize) {
    let ar = lines.iter().filter(|l| arabic(l.text)).count();
    assert!(lines.len() >= at_least, "{} lines, want {at_least}", lines.len());
    assert!(ar * 10 >= lines.len() * 4 && ar * 10 <= lines.len() * 6, "{ar} of {} lines are Arabic", lines.len());
}

#[test]
fn transactional_traffic_passes() {
    let lines = corpus(include_str!("corpus/transactional.txt"));
    assert_bilingual(&lines, 70);
    let [allow, _flag, block] = tally(&lines, Decision::Allow);
    assert_eq!(block, 0, "transactional messages blocked");
    assert!(allow * 100 >= lines.len() * 95, "only {allow} of {} allowed", lines.len());
}

#[test]
fn marketing_is_blocked() {
    let lines = corpus(include_str!("corpus/marketing.txt"));
    assert_bilingual(&lines, 50);
    let [allow, _flag, block] = tally(&lines, Decision::Block);
    assert_eq!(allow, 0, "marketing messages allowed");
    assert!(block * 100 >= lines.len() * 90, "only {block} of {} blocked", lines.len());
    for line in &lines {
        assert!(!assess(line.text, line.purpose).reasons.is_empty(), "no reasons for {:?}", line.text);
    }
}

#[test]
fn no_purpose_lets_marketing_through() {
    for line in corpus(include_str!("corpus/marketing.txt")) {
        for purpose in PURPOSES {
            let (decision, assessment) = judge(&line, purpose);
            assert_ne!(decision, Decision::Allow, "[{purpose}] {}: {assessment:?}", line.text);
        }
    }
}

/// The held-out set (tests/corpus/heldout_*.txt) was written apart from the training data and is never trained on:
/// it measures what the rules and the model together make of messages neither was tuned to. Every score is printed
/// (`cargo test -p gateway --test policy_corpus held_out -- --nocapture`).
#[test]
fn held_out_messages() {
    let marketing = corpus(include_str!("corpus/heldout_marketing.txt"));
    let transactional = corpus(include_str!("corpus/heldout_transactional.txt"));
    assert!(marketing.len() >= 100 && transactional.len() >= 100);
    for lines in [&marketing, &transactional] {
        let ar = lines.iter().filter(|l| arabic(l.text)).count();
        assert!(ar * 10 >= lines.len() * 3, "{ar} of {} held-out lines are Arabic", lines.len());
    }
    let show = |label: &str, lines: &[Line]| -> usize {
        let mut blocked = 0;
        for line in lines {
            let (decision, assessment) = judge(line, line.purpose);
            blocked += usize::from(decision == Decision::Block);
            let codes: Vec<&str> = assessment.reasons.iter().map(|r| r.code.as_str()).collect();
            eprintln!("{label} {decision:?} {:3} {codes:?} [{}] {}", assessment.score, line.purpose, line.text);
        }
        blocked
    };
    let caught = show("marketing", &marketing);
    let wrongly = show("transactional", &transactional);
    eprintln!(
        "held-out: {caught} of {} marketing blocked ({:.1}%), {wrongly} of {} transactional blocked",
        marketing.len(),
        caught as f64 * 100.0 / marketing.len() as f64,
        transactional.len()
    );
    assert_eq!(wrongly, 0, "transactional held-out messages blocked");
    // Issue 11's bar: at least 90 % of the unseen marketing blocked (the model reaches 92 %, 107 of 116) and none of the
    // unseen transactional messages.
    assert!(caught * 100 >= marketing.len() * 90, "only {caught} of {} held-out marketing blocked", marketing.len());
}
