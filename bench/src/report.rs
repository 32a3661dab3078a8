//! Output: a table per run for people, one JSON document with `--json` for machines.
use serde_json::{json, Map, Value};

use crate::{
    load::Outcome,
    machine,
    server::LogSummary,
    stats::{count, round2, thousands},
};

pub struct Report {
    json: Map<String, Value>,
    title: String,
    header: Vec<String>,
    rows: Vec<[String; 11]>,
    sections: Vec<(String, Vec<(String, String)>)>,
    warnings: Vec<String>,
    results: Vec<Value>,
}

const COLUMNS: [&str; 11] = [
    "",
    "answers",
    "per s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "errors",
    "wag CPU ms",
    "db CPU ms",
    "wag CPU",
    "client CPU",
];

impl Report {
    pub fn new(benchmark: &str, db: crate::DbKind, settings: Value) -> Report {
        let mut json = Map::new();
        json.insert("benchmark".into(), json!(benchmark));
        json.insert("db".into(), json!(db.name()));
        json.insert("settings".into(), settings);
        json.insert("machine".into(), machine::describe());
        json.insert("git".into(), machine::git_describe());
        json.insert("started_at_unix".into(), json!(now_unix()));
        json.insert("loadavg_before".into(), json!(machine::loadavg()));
        Report {
            json,
            title: format!("bench {benchmark} — {}", db.name()),
            header: Vec::new(),
            rows: Vec::new(),
            sections: Vec::new(),
            warnings: Vec::new(),
            results: Vec::new(),
        }
    }

    pub fn header(&mut self, line: impl Into<String>) {
        self.header.push(line.into());
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.json.insert(key.into(), value);
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.warnings.push(text.into());
    }

    /// One measured load phase: a table row and a JSON result.
    pub fn load_row(&mut self, label: &str, outcome: &Outcome) {
        let (wag_ms, db_ms) = outcome.cpu_ms_per_request();
        let cpu = &outcome.cpu;
        let pct = |s: f64| if cpu.wall_s > 0.0 { format!("{:.0}%", s / cpu.wall_s * 100.0) } else { "-".into() };
        let has_db = cpu.db_s > 0.0;
        self.rows.push([
            label.to_string(),
            count(outcome.requests),
            thousands(outcome.per_second()),
            format!("{:.1}", outcome.latencies.percentile_ms(50.0)),
            format!("{:.1}", outcome.latencies.percentile_ms(99.0)),
            format!("{:.1}", outcome.latencies.max_ms()),
            count(outcome.errors.total()),
            format!("{wag_ms:.3}"),
            if has_db { format!("{db_ms:.3}") } else { "-".into() },
            pct(cpu.server_s),
            pct(cpu.client_s),
        ]);
        let result = json!({
            "label": label,
            "answers": outcome.requests,
            "ok": outcome.ok,
            "per_second": round2(outcome.per_second()),
            "latency": outcome.latencies.json(),
            "errors": outcome.errors.total(),
            "error_kinds": outcome.errors.json(),
            "cpu_ms_per_answer_wag": round4(wag_ms),
            "cpu_ms_per_answer_db": if has_db { json!(round4(db_ms)) } else { Value::Null },
            "cpu": cpu.json(),
        });
        if outcome.errors.total() > 0 {
            let kinds: Vec<String> = outcome
                .errors
                .by_kind
                .iter()
                .map(|(k, (n, example))| format!("{n} × {k}: {}", example.chars().take(200).collect::<String>()))
                .collect();
            self.warnings.push(format!(
                "{label}: {} of {} answers were errors:\n    {}",
                outcome.errors.total(),
                outcome.requests,
                kinds.join("\n    ")
            ));
        }
        if cpu.wall_s > 0.0 && cpu.client_s / cpu.wall_s > 0.9 {
            self.warnings.push(format!(
                "{label}: the load generator used {:.0}% of a core: it may be the bottleneck (try --client-threads 2)",
                cpu.client_s / cpu.wall_s * 100.0
            ));
        }
        if cpu.wall_s > 0.0 && cpu.other_s / cpu.wall_s > 0.25 {
            self.warnings.push(format!(
                "{label}: other processes used {:.0}% of a core during the run (builds? other benchmarks?): the figures are noisy",
                cpu.other_s / cpu.wall_s * 100.0
            ));
        }
        self.results.push(result);
    }

    /// A titled list of facts (text) with the same facts in JSON under `key`.
    pub fn section(&mut self, title: &str, key: &str, facts: Vec<(&str, String)>, value: Value) {
        self.sections.push((title.to_string(), facts.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
        self.json.insert(key.into(), value);
    }

    pub fn server_log(&mut self, summary: &LogSummary) {
        self.json.insert(
            "server_log".into(),
            json!({ "warnings": summary.warnings, "errors": summary.errors, "examples": summary.examples }),
        );
        if summary.errors > 0 || summary.warnings > 0 {
            self.warnings.push(format!(
                "the server logged {} errors and {} warnings, e.g.:\n    {}",
                summary.errors,
                summary.warnings,
                summary.examples.join("\n    ")
            ));
        }
    }

    pub fn has_warnings(&self) -> bool {
        !self.warnings.is_empty()
    }

    pub fn print(mut self, as_json: bool) {
        self.json.insert("results".into(), Value::Array(std::mem::take(&mut self.results)));
        self.json.insert("warnings".into(), json!(self.warnings));
        self.json.insert("loadavg_after".into(), json!(machine::loadavg()));
        if as_json {
            println!("{}", serde_json::to_string_pretty(&Value::Object(self.json)).unwrap_or_default());
            return;
        }
        println!();
        println!("{}", self.title);
        for line in &self.header {
            println!("  {line}");
        }
        if !self.rows.is_empty() {
            println!();
            let mut widths = COLUMNS.map(str::len);
            for row in &self.rows {
                for (i, cell) in row.iter().enumerate() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut out = String::new();
                for (i, cell) in cells.iter().enumerate() {
                    let pad = widths[i] - cell.chars().count();
                    if i == 0 {
                        out.push_str(cell);
                        out.push_str(&" ".repeat(pad));
                    } else {
                        out.push_str("  ");
                        out.push_str(&" ".repeat(pad));
                        out.push_str(cell);
                    }
                }
                out
            };
            println!("{}", line(&COLUMNS.map(String::from)));
            for row in &self.rows {
                println!("{}", line(row));
            }
            println!("  (answers and per s: measured window; CPU ms per answer; CPU % of one core)");
        }
        for (title, facts) in &self.sections {
            println!();
            println!("{title}");
            let width = facts.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
            for (k, v) in facts {
                println!("  {k}{}  {v}", " ".repeat(width - k.chars().count()));
            }
        }
        if self.warnings.is_empty() {
            println!();
            println!("no errors.");
        } else {
            println!();
            println!("!!! WARNINGS — read before quoting these figures:");
            for w in &self.warnings {
                println!("  ! {w}");
            }
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
