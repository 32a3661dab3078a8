//! Fair shares, in memory: which claimed delivery starts next, and how many more each
//! destination and account may claim. Deliveries of one destination never hold more than its
//! cap of the process's concurrency, and an account never more than its share, so a tenant whose
//! receiver is slow or never answers cannot hold up another tenant's deliveries. Among the
//! accounts, and among an account's destinations, turns go round.
use std::collections::{HashMap, HashSet, VecDeque};

/// A healthy destination may hold this many times its cap claimed (in flight plus waiting
/// here), so the next deliveries start the moment a slot frees, without a database round trip.
const PREFETCH: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// Attempts in flight in this process.
    pub global: usize,
    /// Attempts in flight to one destination.
    pub per_destination: usize,
}

impl Limits {
    fn per_destination(&self) -> usize {
        self.per_destination.clamp(1, self.global.max(1))
    }

    /// An account's share of the process's attempts, with `active` accounts wanting some. Never
    /// all of them, even alone: what stays free is what another account's first delivery gets
    /// at once, while the first account's slow attempts run out their timeouts.
    fn per_account(&self, active: usize) -> usize {
        (self.global / active.max(2)).max(1)
    }
}

/// What a claimed delivery is filed under.
pub(super) trait Keyed {
    fn destination(&self) -> &str;
    fn account(&self) -> i64;
}

/// How much one claim may take: the budgets left per destination and per account, the ones
/// with nothing left (for the query to skip), and the size of the candidate window.
#[derive(Clone, Debug, Default)]
pub(super) struct Plan {
    pub limit: u64,
    pub global_room: usize,
    pub destination_room: HashMap<String, usize>,
    pub default_destination_room: usize,
    pub account_room: HashMap<i64, usize>,
    pub default_account_room: usize,
    pub exclude_destinations: Vec<String>,
    pub exclude_accounts: Vec<i64>,
}

impl Plan {
    /// No caps: take up to `limit` (for driving a worker by hand).
    pub fn unlimited(limit: u64) -> Plan {
        let room = limit as usize;
        Plan { limit, global_room: room, default_destination_room: room, default_account_room: room, ..Plan::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Candidate {
    pub id: i64,
    pub destination_id: String,
    pub account_id: i64,
}

/// The candidates to claim, oldest first within each destination, taken in turns: one per
/// account per round, and within an account one per destination per round, while budgets last.
/// Also returns the destinations that had candidates left over (they have more work waiting).
pub(super) fn admit(plan: &Plan, candidates: Vec<Candidate>) -> (Vec<i64>, HashSet<String>) {
    // account → its destinations in first-seen order → their candidates in order
    let mut accounts: Vec<(i64, VecDeque<String>)> = Vec::new();
    let mut queues: HashMap<String, VecDeque<Candidate>> = HashMap::new();
    for candidate in candidates {
        let queue = queues.entry(candidate.destination_id.clone()).or_default();
        if queue.is_empty() && !accounts.iter().any(|(_, ds)| ds.contains(&candidate.destination_id)) {
            match accounts.iter_mut().find(|(a, _)| *a == candidate.account_id) {
                Some((_, ds)) => ds.push_back(candidate.destination_id.clone()),
                None => accounts.push((candidate.account_id, VecDeque::from([candidate.destination_id.clone()]))),
            }
        }
        queue.push_back(candidate);
    }
    let mut global = plan.global_room;
    let mut destination_room: HashMap<String, usize> = HashMap::new();
    let mut account_room: HashMap<i64, usize> = HashMap::new();
    let mut chosen = Vec::new();
    loop {
        let mut progressed = false;
        for (account, destinations) in accounts.iter_mut() {
            if global == 0 {
                break;
            }
            let room = account_room
                .entry(*account)
                .or_insert_with(|| plan.account_room.get(account).copied().unwrap_or(plan.default_account_room));
            if *room == 0 {
                continue;
            }
            // This account's next destination that still has room and candidates.
            while let Some(destination) = destinations.pop_front() {
                let d_room = destination_room.entry(destination.clone()).or_insert_with(|| {
                    plan.destination_room.get(&destination).copied().unwrap_or(plan.default_destination_room)
                });
                let queue = queues.get_mut(&destination).expect("every listed destination has a queue");
                if *d_room == 0 || queue.is_empty() {
                    continue;
                }
                let candidate = queue.pop_front().expect("checked non-empty");
                *d_room -= 1;
                *room -= 1;
                global -= 1;
                chosen.push(candidate.id);
                progressed = true;
                if *d_room > 0 && !queue.is_empty() {
                    destinations.push_back(destination);
                }
                break;
            }
        }
        if !progressed || global == 0 {
            break;
        }
    }
    let leftover = queues.into_iter().filter(|(_, q)| !q.is_empty()).map(|(d, _)| d).collect();
    (chosen, leftover)
}

struct Destination<J> {
    account: i64,
    in_flight: usize,
    queue: VecDeque<J>,
    /// Its last attempt was slow or unanswered: claim no more than it may have in flight.
    slow: bool,
    /// The last claim saw more of its deliveries than it took.
    backlog: bool,
    /// Listed in its account's turn order.
    listed: bool,
}

impl<J> Destination<J> {
    fn new(account: i64) -> Self {
        Destination { account, in_flight: 0, queue: VecDeque::new(), slow: false, backlog: false, listed: false }
    }

    fn claimed(&self) -> usize {
        self.in_flight + self.queue.len()
    }
}

#[derive(Default)]
struct Account {
    in_flight: usize,
    claimed: usize,
    /// Its destinations with deliveries waiting here, in turn order.
    turns: VecDeque<String>,
    /// Listed in the scheduler's turn order.
    listed: bool,
}

pub(super) struct Scheduler<J> {
    limits: Limits,
    destinations: HashMap<String, Destination<J>>,
    accounts: HashMap<i64, Account>,
    /// Accounts with deliveries waiting here, in turn order.
    turns: VecDeque<i64>,
    in_flight: usize,
    claimed: usize,
    /// The last claim's window was full, or it lost deliveries to another process: more may be
    /// due than it saw.
    more: bool,
}

/// What a claim saw, beyond the deliveries it won.
#[derive(Clone, Debug, Default)]
pub(super) struct ClaimReport {
    /// Destinations (with their account) whose candidates did not all fit the budgets.
    pub leftover: HashMap<String, i64>,
    /// Destinations the claim did not ask about (they had no room).
    pub excluded: HashSet<String>,
    pub window_full: bool,
    /// Chosen candidates that another process leased first.
    pub lost: usize,
    /// Candidates chosen (won or lost).
    pub admitted: usize,
}

impl<J: Keyed> Scheduler<J> {
    pub fn new(limits: Limits) -> Self {
        Scheduler {
            limits,
            destinations: HashMap::new(),
            accounts: HashMap::new(),
            turns: VecDeque::new(),
            in_flight: 0,
            claimed: 0,
            more: false,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn destination_budget(&self, slow: bool) -> usize {
        let cap = self.limits.per_destination();
        if slow {
            cap
        } else {
            cap * PREFETCH
        }
    }

    /// What the next claim may take, or `None` when this process holds all it may.
    pub fn plan(&self) -> Option<Plan> {
        let global_room = (self.limits.global * PREFETCH).saturating_sub(self.claimed);
        if global_room == 0 {
            return None;
        }
        // A newcomer counts as one more account wanting a share.
        let account_budget = self.limits.per_account(self.accounts.len() + 1) * PREFETCH;
        let mut plan = Plan {
            limit: (global_room * 2).clamp(16, 1000) as u64,
            global_room,
            default_destination_room: self.destination_budget(false),
            default_account_room: account_budget,
            ..Plan::default()
        };
        for (id, d) in &self.destinations {
            let room = self.destination_budget(d.slow).saturating_sub(d.claimed());
            if room == 0 {
                plan.exclude_destinations.push(id.clone());
            }
            plan.destination_room.insert(id.clone(), room);
        }
        for (id, a) in &self.accounts {
            let room = account_budget.saturating_sub(a.claimed);
            if room == 0 {
                plan.exclude_accounts.push(*id);
            }
            plan.account_room.insert(*id, room);
        }
        Some(plan)
    }

    /// Files what a claim won, and remembers which destinations have more waiting.
    pub fn claimed(&mut self, jobs: Vec<J>, report: &ClaimReport) {
        for job in jobs {
            let destination_id = job.destination().to_string();
            let account_id = job.account();
            let d = self.destinations.entry(destination_id.clone()).or_insert_with(|| Destination::new(account_id));
            d.queue.push_back(job);
            let a = self.accounts.entry(account_id).or_default();
            a.claimed += 1;
            self.claimed += 1;
            if !d.listed {
                d.listed = true;
                a.turns.push_back(destination_id);
            }
            if !a.listed {
                a.listed = true;
                self.turns.push_back(account_id);
            }
        }
        for (destination_id, account_id) in &report.leftover {
            self.destinations.entry(destination_id.clone()).or_insert_with(|| Destination::new(*account_id)).backlog =
                true;
        }
        if !report.window_full {
            // Every due delivery of a destination the claim asked about was in its window: one
            // with none left over has nothing more waiting.
            for (id, d) in self.destinations.iter_mut() {
                if !report.leftover.contains_key(id) && !report.excluded.contains(id) {
                    d.backlog = false;
                }
            }
        }
        // Kept while listed in a turn order, so a destination never has two turns there.
        self.destinations.retain(|_, d| d.claimed() > 0 || d.slow || d.backlog || d.listed);
        // More may be due beyond the window, or another process is claiming too: look again,
        // unless this claim could take nothing (then only a finished attempt or a wake helps).
        self.more = (report.window_full || report.lost > 0) && report.admitted > 0;
    }

    /// The next delivery to start, if a slot is free for it: accounts take turns, and an
    /// account's destinations take turns, skipping those at their cap.
    pub fn next(&mut self) -> Option<J> {
        if self.in_flight >= self.limits.global {
            return None;
        }
        let cap = self.limits.per_destination();
        let share = self.limits.per_account(self.accounts.len());
        for _ in 0..self.turns.len() {
            let account_id = self.turns.pop_front()?;
            let Some(account) = self.accounts.get_mut(&account_id) else { continue };
            if account.in_flight >= share {
                self.turns.push_back(account_id);
                continue;
            }
            let mut started = None;
            for _ in 0..account.turns.len() {
                let Some(destination_id) = account.turns.pop_front() else { break };
                let Some(d) = self.destinations.get_mut(&destination_id) else { continue };
                if d.queue.is_empty() {
                    d.listed = false;
                    continue;
                }
                if d.in_flight >= cap {
                    account.turns.push_back(destination_id);
                    continue;
                }
                let job = d.queue.pop_front();
                d.in_flight += 1;
                if d.queue.is_empty() {
                    d.listed = false;
                } else {
                    account.turns.push_back(destination_id);
                }
                started = job;
                break;
            }
            if let Some(job) = started {
                account.in_flight += 1;
                self.in_flight += 1;
                if account.turns.is_empty() {
                    account.listed = false;
                } else {
                    self.turns.push_back(account_id);
                }
                return Some(job);
            }
            if account.turns.is_empty() {
                account.listed = false;
                if account.claimed == 0 {
                    self.accounts.remove(&account_id);
                }
            } else {
                self.turns.push_back(account_id);
            }
        }
        None
    }

    /// A started delivery finished (or was dropped before its request); `slow` when it took
    /// long or got no answer.
    pub fn finished(&mut self, destination_id: &str, account_id: i64, slow: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.claimed = self.claimed.saturating_sub(1);
        if let Some(d) = self.destinations.get_mut(destination_id) {
            d.in_flight = d.in_flight.saturating_sub(1);
            d.slow = slow;
            if d.claimed() == 0 && !d.slow && !d.backlog && !d.listed {
                self.destinations.remove(destination_id);
            }
        }
        if let Some(a) = self.accounts.get_mut(&account_id) {
            a.in_flight = a.in_flight.saturating_sub(1);
            a.claimed = a.claimed.saturating_sub(1);
            if a.claimed == 0 && !a.listed {
                self.accounts.remove(&account_id);
            }
        }
    }

    /// Whether a claim should run now because room opened for work known to be waiting.
    pub fn wants_claim(&self) -> bool {
        if self.claimed >= self.limits.global * PREFETCH {
            return false;
        }
        if self.more {
            return true;
        }
        let account_budget = self.limits.per_account(self.accounts.len() + 1) * PREFETCH;
        self.destinations.values().any(|d| {
            let budget = self.destination_budget(d.slow);
            // Refill a healthy destination in batches (at half its budget), a slow one as soon
            // as it has a free slot.
            let mark = if d.slow { budget - 1 } else { budget / 2 };
            let account_room = self.accounts.get(&d.account).is_none_or(|a| a.claimed < account_budget);
            d.backlog && d.claimed() <= mark && account_room
        })
    }

    /// Everything claimed but not started, for release at shutdown.
    pub fn drain_waiting(&mut self) -> Vec<J> {
        let mut out = Vec::new();
        for d in self.destinations.values_mut() {
            let n = d.queue.len();
            out.extend(d.queue.drain(..));
            d.listed = false;
            if let Some(a) = self.accounts.get_mut(&d.account) {
                a.claimed = a.claimed.saturating_sub(n);
                a.turns.clear();
                a.listed = false;
            }
            self.claimed = self.claimed.saturating_sub(n);
        }
        self.turns.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Job {
        id: i64,
        destination: String,
        account: i64,
    }

    impl Keyed for Job {
        fn destination(&self) -> &str {
            &self.destination
        }
        fn account(&self) -> i64 {
            self.account
        }
    }

    fn job(id: i64, destination: &str, account: i64) -> Job {
        Job { id, destination: destination.into(), account }
    }

    fn candidate(id: i64, destination: &str, account: i64) -> Candidate {
        Candidate { id, destination_id: destination.into(), account_id: account }
    }

    fn start_all(s: &mut Scheduler<Job>) -> Vec<Job> {
        std::iter::from_fn(|| s.next()).collect()
    }

    #[test]
    fn a_destination_never_has_more_than_its_cap_in_flight() {
        let mut s = Scheduler::new(Limits { global: 16, per_destination: 3 });
        s.claimed((0..10).map(|i| job(i, "slow", 1)).collect(), &ClaimReport::default());
        assert_eq!(start_all(&mut s).len(), 3);
        s.finished("slow", 1, true);
        assert_eq!(start_all(&mut s).len(), 1, "one finished, one more starts");
    }

    #[test]
    fn a_stuck_tenant_leaves_room_for_another() {
        let limits = Limits { global: 8, per_destination: 8 };
        let mut s = Scheduler::new(limits);
        // Tenant 1 has two destinations full of work that never finishes.
        let mut jobs: Vec<Job> = (0..20).map(|i| job(i, "a1", 1)).collect();
        jobs.extend((20..40).map(|i| job(i, "a2", 1)));
        s.claimed(jobs, &ClaimReport::default());
        let started = start_all(&mut s);
        assert!(started.len() <= limits.global / 2, "alone, an account still gets only half: {}", started.len());
        // Tenant 2's delivery starts at once, while tenant 1's hold their slots.
        s.claimed(vec![job(100, "b", 2)], &ClaimReport::default());
        assert_eq!(start_all(&mut s), vec![job(100, "b", 2)]);
    }

    #[test]
    fn accounts_and_destinations_take_turns() {
        let mut s = Scheduler::new(Limits { global: 4, per_destination: 4 });
        let mut jobs: Vec<Job> = (0..6).map(|i| job(i, "a", 1)).collect();
        jobs.extend((10..12).map(|i| job(i, "b", 2)));
        s.claimed(jobs, &ClaimReport::default());
        let order: Vec<i64> = start_all(&mut s).iter().map(|j| j.account).collect();
        assert_eq!(order, [1, 2, 1, 2], "turns alternate while both have work");
    }

    #[test]
    fn admit_shares_a_window_fairly_and_reports_leftovers() {
        let mut plan = Plan::unlimited(100);
        plan.global_room = 4;
        plan.default_destination_room = 2;
        let mut candidates: Vec<Candidate> = (0..10).map(|i| candidate(i, "a", 1)).collect();
        candidates.push(candidate(50, "b", 2));
        candidates.push(candidate(51, "c", 2));
        let (chosen, leftover) = admit(&plan, candidates);
        assert_eq!(chosen, vec![0, 50, 1, 51], "one per account per round, capped per destination");
        assert_eq!(leftover, HashSet::from(["a".to_string()]));
    }

    #[test]
    fn plans_skip_what_is_full_and_claims_refill_in_batches() {
        let mut s = Scheduler::new(Limits { global: 8, per_destination: 2 });
        let budget = 2 * PREFETCH;
        s.claimed(
            (0..budget as i64).map(|i| job(i, "a", 1)).collect(),
            &ClaimReport {
                leftover: HashMap::from([("a".to_string(), 1)]),
                admitted: budget,
                ..ClaimReport::default()
            },
        );
        let plan = s.plan().expect("room for others");
        assert_eq!(plan.exclude_destinations, vec!["a".to_string()]);
        assert!(!s.wants_claim(), "full: nothing to claim for it yet");
        start_all(&mut s);
        for _ in 0..budget / 2 {
            s.finished("a", 1, false);
            start_all(&mut s);
        }
        assert!(s.wants_claim(), "half its budget done: claim more for it");
    }

    #[test]
    fn a_destination_with_nothing_left_stops_asking() {
        let mut s = Scheduler::new(Limits { global: 8, per_destination: 2 });
        s.claimed(
            vec![job(1, "a", 1)],
            &ClaimReport { leftover: HashMap::from([("a".to_string(), 1)]), admitted: 1, ..ClaimReport::default() },
        );
        assert!(s.wants_claim());
        s.claimed(vec![], &ClaimReport::default());
        assert!(!s.wants_claim(), "the next window had none of its deliveries");
    }

    #[test]
    fn shutdown_gives_back_what_did_not_start() {
        let mut s = Scheduler::new(Limits { global: 4, per_destination: 2 });
        s.claimed((0..5).map(|i| job(i, "a", 1)).collect(), &ClaimReport::default());
        assert_eq!(start_all(&mut s).len(), 2);
        assert_eq!(s.drain_waiting().len(), 3);
        s.finished("a", 1, false);
        s.finished("a", 1, false);
        assert_eq!(s.in_flight(), 0);
        assert!(s.next().is_none());
    }
}
