//! Fault points for the failure tests. In debug builds `WAG_FAULTS` can make a named point
//! crash the process or fail, with a probability:
//! `WAG_FAULTS=send.after_admission=crash@0.05,send.settle=error@0.3`. Release builds compile
//! every point to nothing, so no setting can change how a production gateway behaves.

/// Fails with an internal error when the point is set to `error` (and the dice say so).
#[inline]
pub fn fail_point(point: &str) -> crate::Result<()> {
    match hit(point) {
        Some(Action::Error) => Err(crate::Error::Internal(format!("fault point {point}"))),
        _ => Ok(()),
    }
}

/// Ends the process at once, as `kill -9` would, when the point is set to `crash`.
#[inline]
pub fn crash_point(point: &str) {
    if hit(point) == Some(Action::Crash) {
        // No destructors, no flushing: the closest a process gets to being killed.
        std::process::abort();
    }
}

/// The failure tests' witness of what reached "WhatsApp": in debug builds, when
/// `WAG_FAULTS_SEND_LOG` names a file, the sandbox appends each message it accepts, one line
/// (newlines flattened) per send, before it answers.
#[inline]
pub fn witness_send(text: &str) {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("WAG_FAULTS_SEND_LOG") {
        use std::io::Write;
        let line = format!("{}\n", text.replace('\n', " "));
        // One append-mode write: lines from racing sends never interleave, and what was
        // written survives the process being killed right after.
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = file.write_all(line.as_bytes());
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = text;
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(debug_assertions), allow(dead_code))]
enum Action {
    Crash,
    Error,
}

#[cfg(not(debug_assertions))]
#[inline(always)]
fn hit(_point: &str) -> Option<Action> {
    None
}

#[cfg(debug_assertions)]
fn hit(point: &str) -> Option<Action> {
    use std::sync::OnceLock;
    static POINTS: OnceLock<Vec<(String, Action, f64)>> = OnceLock::new();
    let points = POINTS.get_or_init(|| parse(&std::env::var("WAG_FAULTS").unwrap_or_default()));
    let (_, action, probability) = points.iter().find(|(name, _, _)| name == point)?;
    (rand::random::<f64>() < *probability).then_some(*action)
}

#[cfg(debug_assertions)]
fn parse(text: &str) -> Vec<(String, Action, f64)> {
    text.split(',')
        .filter_map(|item| {
            let (name, spec) = item.trim().split_once('=')?;
            let (action, probability) = spec.split_once('@').unwrap_or((spec, "1"));
            let action = match action {
                "crash" => Action::Crash,
                "error" => Action::Error,
                _ => return None,
            };
            Some((name.to_string(), action, probability.parse().ok()?))
        })
        .collect()
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_with_their_odds() {
        let points = parse("send.settle=error@0.5, send.after_admission=crash,bad=boom,x=error@nan?");
        assert_eq!(points.len(), 2);
        assert_eq!(points[0], ("send.settle".to_string(), Action::Error, 0.5));
        assert_eq!(points[1], ("send.after_admission".to_string(), Action::Crash, 1.0));
    }
}
