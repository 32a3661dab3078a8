//! Calibration of the opt-out detector against labelled inbound messages in tests/corpus/: every line of
//! optout_yes.txt must be an opt-out and no line of optout_no.txt may be. One message per line; `#` lines are
//! comments.
use gateway::optout::{is_opt_out, normalize};

fn corpus(file: &'static str) -> Vec<&'static str> {
    file.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

fn arabic(text: &str) -> bool {
    text.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
}

/// Checks the corpus is big and bilingual enough, then every line against `expected`, printing the ones that fail
/// with their normalised form.
fn check(name: &str, lines: &[&str], expected: bool) {
    let ar = lines.iter().filter(|l| arabic(l)).count();
    eprintln!("{name}: {} lines, {ar} Arabic", lines.len());
    assert!(lines.len() >= 60, "{name}: {} lines, want at least 60", lines.len());
    assert!(ar >= 25, "{name}: {ar} Arabic lines, want at least 25");
    let failures: Vec<&&str> = lines.iter().filter(|l| is_opt_out(l) != expected).collect();
    for line in &failures {
        eprintln!("  {name}: is_opt_out = {} for {line:?} (normalised {:?})", !expected, normalize(line));
    }
    assert!(failures.is_empty(), "{name}: {} of {} lines misjudged (listed above)", failures.len(), lines.len());
}

#[test]
fn every_opt_out_line_is_detected() {
    check("optout_yes", &corpus(include_str!("corpus/optout_yes.txt")), true);
}

#[test]
fn no_ordinary_message_is_an_opt_out() {
    check("optout_no", &corpus(include_str!("corpus/optout_no.txt")), false);
}
