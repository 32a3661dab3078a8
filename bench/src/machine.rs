//! What the figures came from: the machine, the code, and CPU time read from /proc.
use std::path::Path;

use serde_json::{json, Value};

/// Clock ticks per second for /proc times (`getconf CLK_TCK`, normally 100).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime (ticks) from the text of /proc/<pid>/stat. The command name in brackets may
/// hold spaces and brackets, so fields are counted from the last ')'.
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime is field 14 and stime field 15 of the line,
    // i.e. indexes 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks used so far by a process (all its threads), 0 if it is gone.
pub fn process_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat_cpu(&s)).unwrap_or(0)
}

pub fn own_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat_cpu(&s)).unwrap_or(0)
}

/// CPU ticks of every process whose command is one of `names` (the database server's
/// processes: postgres backends, mariadbd). Processes that ended between samples are missed.
pub fn ticks_of_commands(names: &[&str]) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut total = 0;
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let name = stat.find('(').zip(stat.rfind(')')).map(|(a, b)| &stat[a + 1..b]).unwrap_or("");
        if names.iter().any(|n| name == *n) {
            total += parse_stat_cpu(&stat).unwrap_or(0);
        }
    }
    total
}

/// (busy, total) ticks of the whole machine from the first line of /proc/stat.
pub fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else { return (0, 0) };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are inside user.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A snapshot of CPU counters around a measured phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub server: u64,
    pub client: u64,
    pub db: u64,
    pub busy: u64,
}

pub fn db_process_names(kind: crate::DbKind) -> &'static [&'static str] {
    match kind {
        crate::DbKind::Sqlite => &[],
        crate::DbKind::Postgres => &["postgres"],
        crate::DbKind::Mysql => &["mariadbd", "mysqld"],
    }
}

impl CpuSample {
    pub fn take(server_pid: u32, db: crate::DbKind) -> CpuSample {
        let (busy, _total) = machine_ticks();
        let names = db_process_names(db);
        CpuSample {
            server: process_ticks(server_pid),
            client: own_ticks(),
            db: if names.is_empty() { 0 } else { ticks_of_commands(names) },
            busy,
        }
    }
}

/// CPU used between two samples, in seconds of one core.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub server_s: f64,
    pub client_s: f64,
    pub db_s: f64,
    /// Everything else on the machine (other builds, other benchmarks): noise in the figures.
    pub other_s: f64,
    pub machine_busy_s: f64,
    pub wall_s: f64,
}

impl CpuUse {
    pub fn between(a: CpuSample, b: CpuSample, wall_s: f64) -> CpuUse {
        let hz = clock_ticks();
        let server_s = b.server.saturating_sub(a.server) as f64 / hz;
        let client_s = b.client.saturating_sub(a.client) as f64 / hz;
        let db_s = b.db.saturating_sub(a.db) as f64 / hz;
        // /proc/stat counts in USER_HZ across all cores.
        let machine_busy_s = b.busy.saturating_sub(a.busy) as f64 / hz;
        let other_s = (machine_busy_s - server_s - client_s - db_s).max(0.0);
        CpuUse { server_s, client_s, db_s, other_s, machine_busy_s, wall_s }
    }

    pub fn json(&self) -> Value {
        let pct = |s: f64| if self.wall_s > 0.0 { (s / self.wall_s * 1000.0).round() / 10.0 } else { 0.0 };
        json!({
            "wall_s": round3(self.wall_s),
            "server_cpu_s": round3(self.server_s),
            "db_cpu_s": round3(self.db_s),
            "client_cpu_s": round3(self.client_s),
            "other_cpu_s": round3(self.other_s),
            "machine_busy_cpu_s": round3(self.machine_busy_s),
            "server_cpu_pct": pct(self.server_s),
            "db_cpu_pct": pct(self.db_s),
            "client_cpu_pct": pct(self.client_s),
            "other_cpu_pct": pct(self.other_s),
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The machine, for BENCHMARKS.md: CPU model, cores, RAM, kernel, rustc.
pub fn describe() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    json!({ "cpu": model, "cores": cores(), "ram_gib": ram_gib, "kernel": kernel, "rustc": rustc })
}

/// The commit of the tree the server is built from, and whether it had changes outside the
/// harness (with `--wag`, the binary may come from elsewhere: the report names its path).
pub fn git_describe() -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short=12", "HEAD"]);
    let branch = run(&["rev-parse", "--abbrev-ref", "HEAD"]);
    // Changes to the harness and its notes do not change the server being measured.
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!BENCHMARKS.md", ":!README.md"])
            .map(|s| !s.is_empty());
    json!({ "commit": commit, "branch": branch, "dirty": dirty })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "1234 (wag serve) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_cpu(line), Some(325));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn proc_counters_are_consistent() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux
        }
        assert!(std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat_cpu(&s)).is_some());
        let (busy, total) = machine_ticks();
        assert!(total > 0 && busy <= total);
    }
}
