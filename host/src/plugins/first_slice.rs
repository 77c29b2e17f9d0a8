//! Where a plugin call starts: on the caller's thread, or handed to the plugin threads.
//!
//! A hand-off costs two thread wake-ups (~60 µs measured, several times a whole call of a
//! small plugin), so a call's first slice runs where the caller is, and only a call still
//! running when that slice ends moves to the plugin threads (nice 10) with its state. The
//! slice ends at the first wait on I/O, or at an epoch yield once it has run for its budget
//! (`commands.first_slice_budget`, 500 µs of CPU time by default):
//! an epoch yield inside the budget (the 1 ms tick falling inside a 20 µs call, one call in
//! fifty) only gives the scheduler a turn, and the slice goes on. What the slice cannot
//! bound — one bulk `memory.fill` over tens of MB, copying a huge result, a spin until the
//! next tick — is bounded per plugin instead: a plugin whose first slice takes more than
//! its budget of CPU time twice within [`STRIKE_WINDOW`] calls starts its calls on the
//! plugin threads for the next [`DEMOTED_FOR`]. So a hostile plugin holds a chat thread for
//! three slow slices per half-minute, or one in a hundred of its calls, whatever it does,
//! while a well-behaved one never pays the hop. (A fast slice that stops to wait on I/O
//! demotes nothing: the rest of that call runs on the plugin threads anyway.)
//!
//! A slice is timed by the wall clock until the plugin gives cause: the thread's CPU clock
//! is a system call (measured 7 % of a small plugin's whole call after an idle pause), the
//! wall clock is not, and a thread's CPU time never exceeds its wall time. A slice over the
//! budget by the wall clock strikes nothing — a thread descheduled mid-call says nothing of
//! the plugin — but puts the plugin under watch ([`Clock::Cpu`]): its next
//! [`STRIKE_WINDOW`] slices read the CPU clock, and only those can strike.
//!
//! A plugin granted `http` always starts on the plugin threads: wasi-http spawns the
//! request (DNS, connect, TLS, the body) on the runtime it is first polled on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Longest first slice that keeps a plugin's calls on the caller's thread, unless
/// `commands.first_slice_budget` says otherwise.
#[cfg(test)]
pub const BUDGET: Duration = Duration::from_micros(500);
/// How long a plugin over budget starts its calls on the plugin threads.
pub const DEMOTED_FOR: Duration = Duration::from_secs(30);

/// One plugin's standing.
#[derive(Debug)]
pub struct FirstSlice {
    /// The CPU time a first slice may take (`commands.first_slice_budget`).
    budget: Duration,
    standing: Mutex<Standing>,
}

#[derive(Debug, Default)]
struct Standing {
    /// First slices run so far.
    slices: u64,
    /// Which of them last went over budget in CPU time, if one did.
    strike: Option<u64>,
    /// Slices up to this one are timed by the CPU clock: one went over the budget lately.
    watched_until: u64,
    demoted_until: Option<Instant>,
}

/// How a first slice is timed (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock: no system call, and an overrun only puts the plugin under watch.
    Wall,
    /// The thread's CPU clock: an overrun is a strike.
    Cpu,
}

/// A slice over budget within this many of the plugin's first slices after another one
/// demotes it.
pub const STRIKE_WINDOW: u64 = 100;

impl FirstSlice {
    pub fn new(budget: Duration) -> FirstSlice {
        FirstSlice {
            budget,
            standing: Mutex::default(),
        }
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Whether the next call may start on the caller's thread (never with a zero budget).
    pub fn inline(&self, now: Instant) -> bool {
        self.start(now).is_some()
    }

    /// How the next call's first slice is timed, or `None` when it starts on the plugin
    /// threads.
    pub fn start(&self, now: Instant) -> Option<Clock> {
        if self.budget.is_zero() {
            return None;
        }
        let standing = self.standing.lock().ok()?;
        if standing.demoted_until.is_some_and(|until| now < until) {
            return None;
        }
        Some(if standing.slices < standing.watched_until {
            Clock::Cpu
        } else {
            Clock::Wall
        })
    }

    /// A first slice took `took`, by `clock`. A second slice over budget in CPU time within
    /// [`STRIKE_WINDOW`] slices demotes the plugin: one alone is as likely the machine's
    /// doing (the page faults of a cold pool slot, an interrupt handled on this thread;
    /// measured, one slice in ~20,000 of a 30 µs call) as the plugin's. A plugin slow every
    /// time is demoted on its third call (the first, by the wall clock, only puts it under
    /// watch); one slow now and then holds a chat thread for at most one slice in a hundred
    /// of its calls.
    /// Returns whether this slice demoted the plugin.
    pub fn ran(&self, now: Instant, took: Duration, clock: Clock) -> bool {
        let Ok(mut standing) = self.standing.lock() else {
            return false;
        };
        standing.slices = standing.slices.saturating_add(1);
        if took <= self.budget {
            return false;
        }
        let slice = standing.slices;
        standing.watched_until = slice.saturating_add(STRIKE_WINDOW);
        if clock == Clock::Wall {
            return false;
        }
        if standing
            .strike
            .is_some_and(|at| slice.saturating_sub(at) <= STRIKE_WINDOW)
        {
            standing.strike = None;
            standing.demoted_until = now.checked_add(DEMOTED_FOR);
            true
        } else {
            standing.strike = Some(slice);
            false
        }
    }
}

/// How a first slice ended.
pub enum Slice<T> {
    Finished(T),
    /// Still running: waiting on I/O, or past its budget.
    Unfinished,
    Panicked,
}

/// Run `task`'s first slice on this thread: poll it, and poll again while it only yielded
/// (it woke itself before returning, as wasmtime's epoch yield does) and has run for less
/// than `budget`. Returns how the slice ended and the time it took by `clock`.
///
/// Strikes count this thread's CPU time, not the wall clock: on a shared machine a thread
/// is now and then descheduled mid-call for longer than the budget (measured: a 30 µs call
/// taking 500 µs–3 ms about once in 3,000 calls), which says nothing of the plugin. What a
/// plugin spends — wasm, a bulk `memory.fill`, the page faults of its memory — is CPU time.
pub async fn run<F: Future>(
    mut task: Pin<&mut F>,
    budget: Duration,
    clock: Clock,
) -> (Slice<F::Output>, Duration) {
    std::future::poll_fn(|cx| {
        let started = ThreadCpu::now(clock);
        let noted = Arc::new(NotedWake {
            woke: AtomicBool::new(false),
            inner: cx.waker().clone(),
        });
        let waker = Waker::from(noted.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            noted.woke.store(false, Ordering::Relaxed);
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                task.as_mut().poll(&mut cx)
            }));
            let took = started.elapsed_within(budget);
            let slice = match polled {
                Ok(Poll::Pending) if noted.woke.load(Ordering::Relaxed) && took < budget => {
                    continue
                }
                Ok(Poll::Pending) => Slice::Unfinished,
                Ok(Poll::Ready(output)) => Slice::Finished(output),
                Err(_) => Slice::Panicked,
            };
            return Poll::Ready((slice, took));
        }
    })
    .await
}

/// The calling thread's CPU time (user and system) at one moment, when timed by
/// [`Clock::Cpu`] and the thread's CPU clock can be read; else the wall clock.
struct ThreadCpu {
    cpu: Option<Duration>,
    wall: Instant,
}

impl ThreadCpu {
    fn now(clock: Clock) -> ThreadCpu {
        ThreadCpu {
            cpu: match clock {
                Clock::Cpu => thread_cpu_time(),
                Clock::Wall => None,
            },
            wall: Instant::now(),
        }
    }

    /// The CPU time since [`ThreadCpu::now`], or the wall time when that is at most
    /// `budget`: a thread's CPU time never exceeds the wall time, and reading the CPU
    /// clock is a system call (~0.7 µs on a VM) most slices need not make.
    fn elapsed_within(&self, budget: Duration) -> Duration {
        let wall = self.wall.elapsed();
        if wall <= budget {
            return wall;
        }
        self.cpu
            .and_then(|start| Some(thread_cpu_time()?.saturating_sub(start)))
            .unwrap_or(wall)
    }
}

#[cfg(unix)]
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call has no other preconditions.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if read != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// A waker that notes whether it was woken, and passes the wake on.
struct NotedWake {
    woke: AtomicBool,
    inner: Waker,
}

impl Wake for NotedWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woke.store(true, Ordering::Relaxed);
        self.inner.wake_by_ref();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_budget_starts_every_call_on_the_plugin_threads() {
        assert!(!FirstSlice::new(Duration::ZERO).inline(Instant::now()));
    }

    #[test]
    fn a_second_slow_slice_soon_after_the_first_demotes_for_a_while() {
        let t0 = Instant::now();
        let (fast, slow) = (Duration::from_micros(20), BUDGET + Duration::from_micros(1));
        let gate = FirstSlice::new(BUDGET);
        assert_eq!(gate.start(t0), Some(Clock::Wall));
        gate.ran(t0, fast, Clock::Wall);
        assert!(gate.inline(t0), "fast: stays");
        // Slow by the wall clock: no strike, but the next slices read the CPU clock.
        assert!(!gate.ran(t0, slow, Clock::Wall));
        assert_eq!(gate.start(t0), Some(Clock::Cpu), "under watch");
        assert!(!gate.ran(t0, slow, Clock::Cpu));
        assert!(gate.inline(t0), "one slow slice is forgiven");
        for _ in 1..STRIKE_WINDOW {
            gate.ran(t0, fast, Clock::Cpu);
        }
        assert_eq!(
            gate.start(t0),
            Some(Clock::Cpu),
            "watched for the whole window"
        );
        assert!(gate.ran(t0, slow, Clock::Cpu), "told when it demotes");
        assert_eq!(
            gate.start(t0),
            None,
            "a second one within the window demotes"
        );
        assert!(!gate.inline(t0 + DEMOTED_FOR - Duration::from_millis(1)));
        let t1 = t0 + DEMOTED_FOR;
        assert!(gate.inline(t1), "for a while only");
        // Back, with a clean slate: slow slices further apart than the window never demote.
        for _ in 0..3 {
            gate.ran(t1, slow, Clock::Cpu);
            for _ in 0..STRIKE_WINDOW {
                gate.ran(t1, fast, Clock::Cpu);
            }
            assert!(gate.inline(t1));
        }
        assert!(!gate.ran(t1, slow, Clock::Cpu));
        assert!(gate.ran(t1, slow, Clock::Cpu));
        assert!(
            !gate.inline(t1),
            "slow every time: demoted on the second watched slice"
        );
    }

    #[test]
    fn the_wall_clock_alone_never_demotes_and_the_watch_ends() {
        let t0 = Instant::now();
        let slow = BUDGET * 3;
        let gate = FirstSlice::new(BUDGET);
        for _ in 0..10 {
            // As a caller that ignored the watch would time them: never a strike.
            assert!(!gate.ran(t0, slow, Clock::Wall));
        }
        assert!(gate.inline(t0));
        for _ in 0..STRIKE_WINDOW {
            assert_eq!(gate.start(t0), Some(Clock::Cpu));
            gate.ran(t0, Duration::from_micros(20), Clock::Cpu);
        }
        assert_eq!(
            gate.start(t0),
            Some(Clock::Wall),
            "a quiet window ends the watch"
        );
    }

    /// Yields (wakes itself) `yields` times, then finishes.
    struct Yielding {
        yields: usize,
    }

    impl Future for Yielding {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            if self.yields == 0 {
                return Poll::Ready("done");
            }
            self.yields -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_yield_inside_the_budget_does_not_end_the_slice() {
        let mut task = std::pin::pin!(Yielding { yields: 3 });
        let (slice, _) = run(task.as_mut(), BUDGET, Clock::Cpu).await;
        assert!(matches!(slice, Slice::Finished("done")));
    }

    #[tokio::test]
    async fn a_wait_ends_the_slice_and_so_does_a_panic() {
        let mut waiting = std::pin::pin!(std::future::pending::<()>());
        assert!(matches!(
            run(waiting.as_mut(), BUDGET, Clock::Wall).await.0,
            Slice::Unfinished
        ));
        let mut panicking = std::pin::pin!(async { panic!("a bug in a host call") });
        assert!(matches!(
            run(panicking.as_mut(), BUDGET, Clock::Wall).await.0,
            Slice::<()>::Panicked
        ));
    }

    #[tokio::test]
    async fn a_spinner_past_its_budget_ends_the_slice() {
        struct Spinner;
        impl Future for Spinner {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                // Busy, as wasm is: the budget counts CPU time, not sleep.
                let spun = Instant::now();
                while spun.elapsed() < BUDGET / 4 {
                    std::hint::spin_loop();
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
        let mut task = std::pin::pin!(Spinner);
        let (slice, took) = run(task.as_mut(), BUDGET, Clock::Cpu).await;
        assert!(matches!(slice, Slice::Unfinished));
        assert!(took >= BUDGET, "{took:?}");
    }
}
