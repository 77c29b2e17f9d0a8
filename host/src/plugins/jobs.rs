//! Running commands on this node: what `/jobs`, `/cancel`, the `cancel` frame and a
//! shutdown act on. Every plugin call is a job from start to end (an insert and a remove);
//! its id is the invocation message's id.
//!
//! Cancelling sets a flag and wakes a waiter: the engine stops the plugin at its next host
//! call or epoch tick, or at once if it is waiting on I/O, and the call ends as
//! [`super::CallError::Cancelled`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::auth::Role;

/// Progress frames per job are sent at most this often; the last report is kept.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Longest progress text kept and sent, in characters.
const MAX_PROGRESS_CHARS: usize = 500;

/// Who runs what, where.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub command: String,
    pub user_id: String,
    pub user_name: String,
    pub session_id: String,
    /// Unix milliseconds.
    pub started_at: i64,
}

#[derive(Debug, Default)]
struct Progress {
    text: String,
    fraction: Option<f32>,
    reported: bool,
    last_sent: Option<Instant>,
}

/// One running command.
#[derive(Debug)]
pub struct Job {
    pub spec: JobSpec,
    progress: Mutex<Progress>,
    cancelled: AtomicBool,
    reason: Mutex<String>,
    wake: Notify,
}

/// A progress report to send to the session, when [`Job::report`] decides one is due.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub text: String,
    pub fraction: Option<f32>,
}

impl Job {
    pub fn new(spec: JobSpec) -> Job {
        Job {
            spec,
            progress: Mutex::default(),
            cancelled: AtomicBool::new(false),
            reason: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// Record a report; `Some` when a frame should go out now (at most one per 100 ms).
    pub fn report(&self, text: &str, fraction: Option<f32>) -> Option<ProgressUpdate> {
        let text: String = text.chars().take(MAX_PROGRESS_CHARS).collect();
        let fraction = fraction
            .filter(|f| f.is_finite())
            .map(|f| f.clamp(0.0, 1.0));
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.text.clone_from(&text);
        p.fraction = fraction;
        p.reported = true;
        let now = Instant::now();
        if p.last_sent
            .is_some_and(|at| now.duration_since(at) < PROGRESS_INTERVAL)
        {
            return None;
        }
        p.last_sent = Some(now);
        Some(ProgressUpdate { text, fraction })
    }

    /// The last report, if the command ever reported progress.
    pub fn last_report(&self) -> Option<ProgressUpdate> {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.reported.then(|| ProgressUpdate {
            text: p.text.clone(),
            fraction: p.fraction,
        })
    }

    pub fn cancel(&self, reason: &str) {
        let mut why = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if !self.cancelled.swap(true, Ordering::AcqRel) {
            *why = reason.to_string();
        }
        drop(why);
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Why it was cancelled ("cancelled by alice", "the server is shutting down").
    pub fn cancel_reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves once the job is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let woken = self.wake.notified();
            if self.is_cancelled() {
                return;
            }
            woken.await;
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CancelError {
    #[error("no running command has id {0}")]
    NotFound(String),
    #[error("only the user who ran /{0}, or an admin, may cancel it")]
    Forbidden(String),
}

/// The jobs of this node.
#[derive(Default)]
pub struct Jobs {
    running: DashMap<String, Arc<Job>>,
    /// Running jobs per user id, counted with the registration (so a limit holds across
    /// one user's connections).
    per_user: DashMap<String, usize>,
    /// Set by [`Jobs::cancel_all`]: a job started after it is cancelled at once.
    closing: std::sync::OnceLock<String>,
}

/// Removes its job from the registry when the call ends, however it ends.
pub struct JobGuard {
    jobs: Arc<Jobs>,
    pub job: Arc<Job>,
    finished: bool,
}

impl JobGuard {
    /// The call is over: unlist it now (before its answer goes out, so the user's next
    /// command finds the place free).
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.jobs.running.remove(&self.job.spec.id);
        self.jobs
            .per_user
            .remove_if_mut(&self.job.spec.user_id, |_, count| {
                *count = count.saturating_sub(1);
                *count == 0
            });
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Jobs {
    /// Register a call about to run; it is listed (and cancellable) until the guard drops.
    /// With `limit`, refuse (answering how many run) when the user already has that many.
    pub fn start(self: &Arc<Self>, spec: JobSpec, limit: Option<usize>) -> Result<JobGuard, usize> {
        {
            let mut count = self.per_user.entry(spec.user_id.clone()).or_insert(0);
            if limit.is_some_and(|l| *count >= l) {
                return Err(*count);
            }
            *count += 1;
        }
        let job = Arc::new(Job::new(spec));
        if let Some(reason) = self.closing.get() {
            job.cancel(reason);
        }
        self.running.insert(job.spec.id.clone(), job.clone());
        Ok(JobGuard {
            jobs: self.clone(),
            job,
            finished: false,
        })
    }

    /// The jobs `user_id` may see: their own, or every one for an admin; oldest first.
    pub fn visible(&self, user_id: &str, role: Role) -> Vec<Arc<Job>> {
        let mut list: Vec<Arc<Job>> = self
            .running
            .iter()
            .filter(|j| role == Role::Admin || j.spec.user_id == user_id)
            .map(|j| j.value().clone())
            .collect();
        list.sort_by_key(|j| j.spec.started_at);
        list
    }

    /// Cancel job `id` on behalf of `user_name` (`user_id`, `role`).
    pub fn cancel(
        &self,
        id: &str,
        user_id: &str,
        user_name: &str,
        role: Role,
    ) -> Result<Arc<Job>, CancelError> {
        let job = self
            .running
            .get(id)
            .map(|j| j.value().clone())
            .ok_or_else(|| CancelError::NotFound(id.chars().take(64).collect()))?;
        if job.spec.user_id != user_id && role != Role::Admin {
            return Err(CancelError::Forbidden(job.spec.command.clone()));
        }
        job.cancel(&format!("cancelled by {user_name}"));
        Ok(job)
    }

    /// Cancel everything, and whatever starts later (a shutdown); returns how many were
    /// running.
    pub fn cancel_all(&self, reason: &str) -> usize {
        let _ = self.closing.set(reason.to_string());
        let all: Vec<Arc<Job>> = self.running.iter().map(|j| j.value().clone()).collect();
        for job in &all {
            job.cancel(reason);
        }
        all.len()
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// How many of `user_id`'s commands are running.
    pub fn running_for(&self, user_id: &str) -> usize {
        self.per_user.get(user_id).map_or(0, |c| *c)
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, user: &str) -> JobSpec {
        JobSpec {
            id: id.into(),
            command: "deploy".into(),
            user_id: user.into(),
            user_name: user.into(),
            session_id: "s".into(),
            started_at: 0,
        }
    }

    #[test]
    fn who_may_cancel() {
        let jobs = Arc::new(Jobs::default());
        let _a = jobs.start(spec("j1", "alice"), None).unwrap();
        assert_eq!(
            jobs.cancel("j1", "bob", "bob", Role::Analyst).unwrap_err(),
            CancelError::Forbidden("deploy".into())
        );
        assert_eq!(
            jobs.cancel("nope", "bob", "bob", Role::Admin).unwrap_err(),
            CancelError::NotFound("nope".into())
        );
        assert_eq!(jobs.visible("bob", Role::Viewer).len(), 0);
        assert_eq!(jobs.visible("bob", Role::Admin).len(), 1);
        let job = jobs.cancel("j1", "alice", "alice", Role::Viewer).unwrap();
        assert!(job.is_cancelled());
        assert_eq!(job.cancel_reason(), "cancelled by alice");
        // The first reason stays.
        job.cancel("the server is shutting down");
        assert_eq!(job.cancel_reason(), "cancelled by alice");
    }

    #[test]
    fn a_finished_job_leaves() {
        let jobs = Arc::new(Jobs::default());
        drop(jobs.start(spec("j1", "alice"), None).unwrap());
        assert!(jobs.is_empty());
        assert_eq!(jobs.running_for("alice"), 0);
    }

    #[test]
    fn a_user_limit_holds_and_frees() {
        let jobs = Arc::new(Jobs::default());
        let first = jobs.start(spec("j1", "alice"), Some(2)).unwrap();
        let _second = jobs.start(spec("j2", "alice"), Some(2)).unwrap();
        assert_eq!(jobs.start(spec("j3", "alice"), Some(2)).err(), Some(2));
        assert!(jobs.start(spec("j4", "bob"), Some(2)).is_ok());
        // Unlimited calls (the jobs plugin's own) still count.
        let _third = jobs.start(spec("j5", "alice"), None).unwrap();
        assert_eq!(jobs.running_for("alice"), 3);
        drop(first);
        assert_eq!(jobs.running_for("alice"), 2);
    }

    #[test]
    fn after_a_shutdown_new_jobs_start_cancelled() {
        let jobs = Arc::new(Jobs::default());
        let running = jobs.start(spec("j1", "a"), None).unwrap();
        assert_eq!(jobs.cancel_all("the server is shutting down"), 1);
        assert!(running.job.is_cancelled());
        let late = jobs.start(spec("j2", "a"), None).unwrap();
        assert_eq!(late.job.cancel_reason(), "the server is shutting down");
    }

    #[test]
    fn progress_is_throttled_and_clamped() {
        let job = Job::new(spec("j", "a"));
        assert_eq!(job.last_report(), None);
        let first = job.report("step 1", Some(1.5)).unwrap();
        assert_eq!(first.fraction, Some(1.0));
        assert_eq!(job.report("step 2", Some(f32::NAN)), None);
        assert_eq!(
            job.last_report(),
            Some(ProgressUpdate {
                text: "step 2".into(),
                fraction: None
            })
        );
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_cancel() {
        let job = Arc::new(Job::new(spec("j", "a")));
        let waiter = tokio::spawn({
            let job = job.clone();
            async move { job.cancelled().await }
        });
        tokio::task::yield_now().await;
        job.cancel("stop");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
