//! Group commit: the admissions (and the settlements) of concurrent sends wait in a queue, and
//! one task writes everything waiting in one transaction, then answers each. Under load a
//! transaction carries many sends for the cost of a few statements; alone, a send waits for
//! nobody. SQLite takes one writer at a time anyway, and on PostgreSQL and MySQL it spares the
//! round trips and the row-lock convoys of one transaction per send.
use std::{panic::AssertUnwindSafe, sync::Mutex};

use futures::FutureExt;

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::{
    db::{self, WriteTxn},
    error::{Error, Result},
};

/// Jobs one transaction takes at most.
const MAX_BATCH: usize = 256;
/// Jobs waiting before a submitter waits for room.
const QUEUE: usize = 4096;
/// Tries of a whole batch when the database says to try again (a deadlock, a lock timeout, a
/// key another process claimed meanwhile); then each job is tried on its own.
const ATTEMPTS: usize = 4;

/// A kind of write that can be done for many jobs in one transaction.
#[async_trait::async_trait]
pub(crate) trait Work: Send + Sync + Sized + 'static {
    type Answer: Send + 'static;
    /// Whether the writes may include webhook deliveries (the webhook workers are woken after
    /// the commit).
    const WAKES_WEBHOOKS: bool;

    /// Writes every job inside `txn`; one answer per job, in order.
    async fn run(txn: &WriteTxn, jobs: &[&Self]) -> Result<Vec<Self::Answer>>;

    /// Called just before the commit (a fault point for the failure tests).
    fn before_commit() -> Result<()> {
        Ok(())
    }
}

type Waiting<J> = (J, oneshot::Sender<Result<<J as Work>::Answer>>);

/// The queue of one kind of write, and its task (started on first use, on the runtime that
/// first uses it).
pub(crate) struct GroupCommit<J: Work> {
    db: DatabaseConnection,
    sender: mpsc::Sender<Waiting<J>>,
    receiver: Mutex<Option<mpsc::Receiver<Waiting<J>>>>,
}

impl<J: Work> GroupCommit<J> {
    pub(crate) fn new(db: DatabaseConnection) -> GroupCommit<J> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        GroupCommit { db, sender, receiver: Mutex::new(Some(receiver)) }
    }

    /// Queues `job` and waits for its answer. The job is written even if the caller stops
    /// waiting.
    pub(crate) async fn submit(&self, job: J) -> Result<J::Answer> {
        self.start();
        let (reply, answer) = oneshot::channel();
        self.sender.send((job, reply)).await.map_err(|_| Error::Internal("the write queue has stopped".into()))?;
        answer.await.map_err(|_| Error::Internal("the write queue stopped before answering".into()))?
    }

    fn start(&self) {
        let mut receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = receiver.take() {
            tokio::spawn(drain(self.db.clone(), receiver));
        }
    }
}

async fn drain<J: Work>(db: DatabaseConnection, mut receiver: mpsc::Receiver<Waiting<J>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (jobs, replies): (Vec<J>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        let refs: Vec<&J> = jobs.iter().collect();
        // A panic in one batch fails that batch, not the queue: the task goes on with the next.
        let answers = match AssertUnwindSafe(commit_batch(&db, &refs)).catch_unwind().await {
            Ok(answers) => answers,
            Err(_) => {
                tracing::error!(jobs = refs.len(), "a group commit panicked; its jobs fail");
                refs.iter().map(|_| Err(Error::Internal("a group commit panicked".into()))).collect()
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}

/// Writes the batch in one transaction; when that keeps failing, each job alone, so a job the
/// database refuses fails only itself.
async fn commit_batch<J: Work>(db: &DatabaseConnection, jobs: &[&J]) -> Vec<Result<J::Answer>> {
    match commit_with_retries(db, jobs).await {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        Err(e) if jobs.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(jobs = jobs.len(), error = %e, "a group commit failed; writing its jobs one by one");
            let mut answers = Vec::with_capacity(jobs.len());
            for job in jobs {
                answers.push(commit_with_retries(db, &[*job]).await.map(|mut a| a.remove(0)));
            }
            answers
        }
    }
}

async fn commit_with_retries<J: Work>(db: &DatabaseConnection, jobs: &[&J]) -> Result<Vec<J::Answer>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match commit_once(db, jobs).await {
            Ok(answers) => return Ok(answers),
            Err(e) if attempt < ATTEMPTS && worth_retrying(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn commit_once<J: Work>(db: &DatabaseConnection, jobs: &[&J]) -> Result<Vec<J::Answer>> {
    let txn = db::begin_write(db).await?;
    let answers = match J::run(&txn, jobs).await.and_then(|answers| J::before_commit().map(|()| answers)) {
        Ok(answers) => answers,
        Err(e) => {
            let _ = txn.rollback().await;
            return Err(e);
        }
    };
    if J::WAKES_WEBHOOKS {
        db::commit_and_wake(txn).await?;
    } else {
        txn.commit().await?;
    }
    Ok(answers)
}

fn worth_retrying(error: &Error) -> bool {
    if db::is_transient(error) {
        return true;
    }
    matches!(error, Error::Db(e) if super::is_unique_violation(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that writes nothing, and panics when asked to.
    struct Job {
        panic: bool,
    }

    #[async_trait::async_trait]
    impl Work for Job {
        type Answer = &'static str;
        const WAKES_WEBHOOKS: bool = false;

        async fn run(_txn: &WriteTxn, jobs: &[&Self]) -> Result<Vec<&'static str>> {
            if jobs.iter().any(|j| j.panic) {
                panic!("a bug in a batch");
            }
            Ok(jobs.iter().map(|_| "written").collect())
        }
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_jobs_and_the_queue_goes_on() {
        let dir = std::env::temp_dir().join(format!("wag-group-commit-{}", crate::ids::new_id("t")));
        let db = db::connect(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
        let queue = GroupCommit::<Job>::new(db);
        let failed = queue.submit(Job { panic: true }).await;
        assert!(matches!(failed, Err(Error::Internal(_))), "the panicking job is answered with an error");
        assert_eq!(queue.submit(Job { panic: false }).await.unwrap(), "written", "the next job is written");
        let _ = std::fs::remove_dir_all(dir);
    }
}
