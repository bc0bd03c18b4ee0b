//! The iteration-window state machine: which iterations are recorded, and what the
//! CUPTI session must do at each `start`, `step` and `stop`.
//!
//! The rules, with a table of examples, are in the crate documentation. The machine
//! is pure (no FFI, no clock) so it can be tested exhaustively: every call returns
//! the [`Action`]s the session carries out, in order, at the moment of the call; the
//! session takes the timestamps. The same machine serves `step()` from a host loop,
//! NVTX range ends, a timer, or the application's `cudaProfilerStart/Stop`: with the
//! default [`Schedule`] each `start`/`stop` pair gives exactly one window.

use std::ops::RangeInclusive;

/// When to record, counted in iterations after `start()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Iterations that pass before the first recorded one.
    pub delay_iters: u64,
    /// Iterations per window; 0 records until `stop()`.
    pub max_iters: u64,
    /// The last iterations of the delay, during which collection runs and its data is
    /// discarded; at most `delay_iters` of them can happen.
    pub warmup_iters: u64,
    /// Windows per `start()`, back to back; 0 repeats until `stop()`.
    pub repeat: u64,
}

impl Default for Schedule {
    /// One window from `start()` to `stop()`.
    fn default() -> Self {
        Self {
            delay_iters: 0,
            max_iters: 0,
            warmup_iters: 0,
            repeat: 1,
        }
    }
}

/// What the session must do, in the order given, at the moment of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Turn activity collection on.
    EnableCollection,
    /// Turn activity collection off; what it gathered goes to the next
    /// [`EndWindow`](Action::EndWindow) or [`DiscardCollected`](Action::DiscardCollected).
    DisableCollection,
    /// Throw away everything collected so far: the warmup is over.
    DiscardCollected,
    /// A window begins now; what is collected from here on belongs to it.
    BeginWindow {
        /// Number of the window, from 1, counted over the machine's life.
        window: u32,
        /// Its first iteration.
        first_iteration: u64,
    },
    /// An iteration of the current window ended now.
    IterationEnd {
        /// The window it belongs to.
        window: u32,
        /// Its number, counted from 1 at `start()`.
        iteration: u64,
    },
    /// The window is over: everything collected since its `BeginWindow` is its trace.
    EndWindow {
        /// Number of the window.
        window: u32,
        /// Its iterations.
        iterations: RangeInclusive<u64>,
        /// Whether `stop()` cut it short; its last iteration then ended at `stop()`.
        stopped: bool,
    },
}

/// Why a call changed nothing: worth a debug log, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// `start()` while started.
    #[error("already started")]
    AlreadyStarted,
    /// `stop()` while not started.
    #[error("not started")]
    NotStarted,
    /// Any call after `shutdown()`.
    #[error("shut down")]
    ShutDown,
}

/// Where the machine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started, or every window of the last start is done.
    Idle,
    /// Started, waiting out the delay; collection off.
    Delay,
    /// Collection on; what it gathers will be discarded.
    Warmup,
    /// Recording a window.
    Recording {
        /// Number of the window.
        window: u32,
        /// Its first iteration.
        first_iteration: u64,
    },
    /// Shut down: every call is ignored.
    ShutDown,
}

/// What the schedule makes of an iteration, windows counted from 1 at `start()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Off,
    Delay,
    Warmup,
    Window(u64),
}

impl Phase {
    fn collects(self) -> bool {
        matches!(self, Phase::Warmup | Phase::Window(_))
    }
}

/// The iteration-window state machine; the [crate documentation](crate) has its rules
/// and a table of examples.
#[derive(Debug, Clone)]
pub struct Windows {
    /// The schedule, with the warmup clamped to the delay.
    schedule: Schedule,
    /// The iteration in progress, counted from 1 at `start()`; 0 when not started.
    iteration: u64,
    /// Windows begun over the machine's life: the number of the current or last one.
    windows: u32,
    shut_down: bool,
}

impl Windows {
    /// An idle machine that follows `schedule` at each `start()`.
    pub fn new(schedule: Schedule) -> Self {
        let warmup_iters = schedule.warmup_iters.min(schedule.delay_iters);
        Self {
            schedule: Schedule {
                warmup_iters,
                ..schedule
            },
            iteration: 0,
            windows: 0,
            shut_down: false,
        }
    }

    /// Starts: iteration 1 begins.
    pub fn start(&mut self) -> Result<Vec<Action>, Ignored> {
        match self.state() {
            State::ShutDown => Err(Ignored::ShutDown),
            State::Idle => Ok(self.cross(Phase::Off, self.phase(1), 1, false)),
            _ => Err(Ignored::AlreadyStarted),
        }
    }

    /// Ends the iteration in progress and begins the next; nothing when not started.
    pub fn step(&mut self) -> Vec<Action> {
        if self.iteration == 0 {
            return Vec::new();
        }
        let next = self.iteration.saturating_add(1);
        self.cross(self.phase(self.iteration), self.phase(next), next, false)
    }

    /// Stops: the iteration in progress ends here, and with it the window being
    /// recorded, if any; a warmup in progress is discarded.
    pub fn stop(&mut self) -> Result<Vec<Action>, Ignored> {
        if self.shut_down {
            return Err(Ignored::ShutDown);
        }
        if self.iteration == 0 {
            return Err(Ignored::NotStarted);
        }
        let next = self.iteration.saturating_add(1);
        Ok(self.cross(self.phase(self.iteration), Phase::Off, next, true))
    }

    /// Stops if started; every later call is ignored.
    pub fn shutdown(&mut self) -> Result<Vec<Action>, Ignored> {
        let actions = match self.stop() {
            Err(Ignored::NotStarted) => Vec::new(),
            other => other?,
        };
        self.shut_down = true;
        Ok(actions)
    }

    /// Where the machine stands.
    pub fn state(&self) -> State {
        if self.shut_down {
            return State::ShutDown;
        }
        if self.iteration == 0 {
            return State::Idle;
        }
        match self.phase(self.iteration) {
            Phase::Off => State::Idle,
            Phase::Delay => State::Delay,
            Phase::Warmup => State::Warmup,
            Phase::Window(r) => State::Recording {
                window: self.windows,
                first_iteration: self.first_iteration(r),
            },
        }
    }

    /// Whether a window is being recorded.
    pub fn is_recording(&self) -> bool {
        matches!(self.state(), State::Recording { .. })
    }

    /// The phase of iteration `k` (from 1): the delay, then the warmup (its last
    /// iterations), then windows of `max_iters` back to back, `repeat` of them.
    fn phase(&self, k: u64) -> Phase {
        let Schedule {
            delay_iters: d,
            max_iters: m,
            warmup_iters: w,
            repeat,
        } = self.schedule;
        if k <= d - w {
            Phase::Delay
        } else if k <= d {
            Phase::Warmup
        } else {
            // With max_iters = 0 the first window lasts until stop().
            let r = (k - d - 1).checked_div(m).map_or(1, |i| i + 1);
            if repeat == 0 || r <= repeat {
                Phase::Window(r)
            } else {
                Phase::Off
            }
        }
    }

    /// The first iteration of the `r`-th window of a start.
    fn first_iteration(&self, r: u64) -> u64 {
        self.schedule.delay_iters + (r - 1) * self.schedule.max_iters + 1
    }

    /// Moves from phase `from` to phase `to` at the boundary before iteration `next`
    /// and says what the session must do there. Collection is switched only when it
    /// must be: from one window to the next, or from the warmup to a window, it stays on.
    fn cross(&mut self, from: Phase, to: Phase, next: u64, stopped: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        let ended = next.saturating_sub(1);
        if let Phase::Window(_) = from {
            actions.push(Action::IterationEnd {
                window: self.windows,
                iteration: ended,
            });
        }
        if from != to {
            if from.collects() && !to.collects() {
                actions.push(Action::DisableCollection);
            }
            match from {
                Phase::Warmup => actions.push(Action::DiscardCollected),
                Phase::Window(r) => actions.push(Action::EndWindow {
                    window: self.windows,
                    iterations: self.first_iteration(r)..=ended,
                    stopped,
                }),
                Phase::Off | Phase::Delay => {}
            }
            if to.collects() && !from.collects() {
                actions.push(Action::EnableCollection);
            }
            if let Phase::Window(_) = to {
                self.windows = self.windows.saturating_add(1);
                actions.push(Action::BeginWindow {
                    window: self.windows,
                    first_iteration: next,
                });
            }
        }
        self.iteration = if to == Phase::Off { 0 } else { next };
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    /// What the reference model makes of one iteration.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Label {
        Delay,
        Warmup,
        Window(u64),
        After,
    }

    impl Label {
        fn collects(self) -> bool {
            matches!(self, Label::Warmup | Label::Window(_))
        }
    }

    /// The reference model: labels of iterations 1..=n, laid end to end from the
    /// schedule's definition rather than computed per iteration like the machine does.
    fn labels(s: Schedule, n: usize) -> Vec<Label> {
        let delay = s.delay_iters as usize;
        let warmup = (s.warmup_iters as usize).min(delay);
        let mut out = vec![Label::Delay; delay - warmup];
        out.extend(vec![Label::Warmup; warmup]);
        let mut window = 1;
        while out.len() < n && (s.repeat == 0 || window <= s.repeat) {
            let len = if s.max_iters == 0 {
                n
            } else {
                s.max_iters as usize
            };
            out.extend(vec![Label::Window(window); len]);
            window += 1;
        }
        out.resize(n, Label::After);
        out
    }

    /// A window as the fake session saw it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        window: u32,
        first_iteration: u64,
        /// Iterations announced by `IterationEnd`.
        ends: Vec<u64>,
        /// Iterations whose work was collected into it.
        collected: Vec<u64>,
        /// From `EndWindow`; `None` while open.
        iterations: Option<RangeInclusive<u64>>,
        stopped: bool,
    }

    /// A fake CUPTI session: it carries the actions out, and while collection is on,
    /// the work of each iteration lands in its buffer.
    #[derive(Debug, Default)]
    struct Session {
        enabled: bool,
        enables: usize,
        collected: Vec<u64>,
        discarded: Vec<u64>,
        open: Option<Seen>,
        done: Vec<Seen>,
    }

    impl Session {
        fn work(&mut self, iteration: u64) {
            if self.enabled {
                self.collected.push(iteration);
            }
        }

        fn apply(&mut self, actions: Vec<Action>) {
            for action in actions {
                match action {
                    EnableCollection => {
                        assert!(!self.enabled, "enabled twice");
                        self.enabled = true;
                        self.enables += 1;
                    }
                    DisableCollection => {
                        assert!(self.enabled, "disabled twice");
                        self.enabled = false;
                    }
                    DiscardCollected => {
                        assert!(self.open.is_none(), "discard inside a window");
                        self.discarded.append(&mut self.collected);
                    }
                    BeginWindow {
                        window,
                        first_iteration,
                    } => {
                        assert!(self.enabled, "window begun with collection off");
                        assert!(self.open.is_none(), "window begun inside a window");
                        assert!(self.collected.is_empty(), "window begun on old data");
                        self.open = Some(Seen {
                            window,
                            first_iteration,
                            ends: Vec::new(),
                            collected: Vec::new(),
                            iterations: None,
                            stopped: false,
                        });
                    }
                    IterationEnd { window, iteration } => {
                        let open = self.open.as_mut().expect("iteration end outside a window");
                        assert_eq!(open.window, window);
                        open.ends.push(iteration);
                    }
                    EndWindow {
                        window,
                        iterations,
                        stopped,
                    } => {
                        let mut seen = self.open.take().expect("end of no window");
                        assert_eq!(seen.window, window);
                        seen.collected = std::mem::take(&mut self.collected);
                        seen.iterations = Some(iterations);
                        seen.stopped = stopped;
                        self.done.push(seen);
                    }
                }
            }
            assert!(
                self.enabled || self.collected.is_empty(),
                "collection off with data not handed on"
            );
        }
    }

    /// Drives one `start`, `steps` steps and, if `stop`, a `stop` on `machine`, whose
    /// windows so far number `base`; checks every call and the outcome against the
    /// reference model and returns what the session saw.
    fn drive(machine: &mut Windows, s: Schedule, steps: u64, stop: bool, base: u32) -> Session {
        let ctx = format!("{s:?} steps={steps} stop={stop} base={base}");
        let labels = labels(s, steps as usize + 1);
        let label = |k: u64| labels[k as usize - 1];
        let members = |r: u64| -> Vec<u64> {
            (1..=steps + 1)
                .filter(|&k| label(k) == Label::Window(r))
                .collect()
        };
        let number = |r: u64| base + r as u32;

        let mut session = Session::default();
        session.apply(machine.start().expect(&ctx));
        for k in 1..=steps + 1 {
            let expected = match label(k) {
                Label::Delay => State::Delay,
                Label::Warmup => State::Warmup,
                Label::Window(r) => State::Recording {
                    window: number(r),
                    first_iteration: members(r)[0],
                },
                Label::After => State::Idle,
            };
            assert_eq!(machine.state(), expected, "iteration {k} of {ctx}");
            assert_eq!(machine.is_recording(), matches!(label(k), Label::Window(_)));
            assert_eq!(
                session.enabled,
                label(k).collects(),
                "iteration {k} of {ctx}"
            );
            if label(k) != Label::After {
                assert_eq!(machine.start(), Err(Ignored::AlreadyStarted), "{ctx}");
                assert_eq!(machine.state(), expected, "{ctx}");
            }
            session.work(k);
            if k <= steps {
                let actions = machine.step();
                if label(k) == Label::After {
                    assert_eq!(actions, [], "step while idle, {ctx}");
                }
                session.apply(actions);
            }
        }
        let last = label(steps + 1);
        if stop {
            match machine.stop() {
                Ok(actions) => session.apply(actions),
                Err(why) => assert_eq!((why, last), (Ignored::NotStarted, Label::After)),
            }
            assert_eq!(machine.state(), State::Idle, "{ctx}");
            assert!(!session.enabled, "{ctx}");
        }

        // Whatever the last iteration's phase is, it is over if stopped.
        let over = |l: Label| stop || last != l;
        let warmup: Vec<u64> = (1..=steps + 1)
            .filter(|&k| label(k) == Label::Warmup)
            .collect();
        let windows: Vec<u64> = (1..).take_while(|&r| !members(r).is_empty()).collect();
        let seen = |r: u64, ended: bool| {
            let members = members(r);
            let mut ends = members.clone();
            if !ended {
                ends.pop();
            }
            Seen {
                window: number(r),
                first_iteration: members[0],
                iterations: ended.then(|| members[0]..=*members.last().unwrap()),
                collected: if ended { members } else { Vec::new() },
                ends,
                stopped: stop && last == Label::Window(r),
            }
        };
        let done: Vec<Seen> = windows
            .iter()
            .filter(|&&r| over(Label::Window(r)))
            .map(|&r| seen(r, true))
            .collect();
        let open = windows
            .iter()
            .find(|&&r| !over(Label::Window(r)))
            .map(|&r| seen(r, false));
        let pending: Vec<u64> = match last {
            Label::Window(r) if !stop => members(r),
            Label::Warmup if !stop => warmup.clone(),
            _ => Vec::new(),
        };
        assert_eq!(session.done, done, "{ctx}");
        assert_eq!(session.open, open, "{ctx}");
        assert_eq!(session.collected, pending, "{ctx}");
        let discarded = if over(Label::Warmup) {
            warmup
        } else {
            Vec::new()
        };
        assert_eq!(session.discarded, discarded, "{ctx}");
        // Warmup and windows are back to back: collection is switched on once at most.
        let collects = (1..=steps + 1).any(|k| label(k).collects());
        assert_eq!(session.enables, usize::from(collects), "{ctx}");
        session
    }

    #[test]
    fn every_small_schedule_and_stop_point_matches_the_model() {
        let mut runs = 0;
        for delay_iters in 0..=3 {
            for max_iters in 0..=3 {
                for warmup_iters in 0..=3 {
                    for repeat in 0..=3 {
                        let s = Schedule {
                            delay_iters,
                            max_iters,
                            warmup_iters,
                            repeat,
                        };
                        // Past the end of every finite schedule, by two iterations.
                        let horizon = delay_iters + max_iters.max(1) * repeat.max(1) + 2;
                        for steps in 0..=horizon {
                            for stop in [true, false] {
                                let mut machine = Windows::new(s);
                                let first = drive(&mut machine, s, steps, stop, 0);
                                runs += 1;
                                if machine.state() == State::Idle {
                                    // A new start counts iterations from scratch and
                                    // goes on numbering windows.
                                    let begun = first.done.len() as u32;
                                    drive(&mut machine, s, steps, stop, begun);
                                    runs += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(runs > 5000, "{runs}");
    }

    /// Runs `steps` steps, then stops if asked, and returns the discarded warmup and the
    /// windows emitted as (iterations, stopped).
    fn outcome(
        s: Schedule,
        steps: u64,
        stop: bool,
    ) -> (Vec<u64>, Vec<(RangeInclusive<u64>, bool)>) {
        let session = drive(&mut Windows::new(s), s, steps, stop, 0);
        let windows = session
            .done
            .into_iter()
            .map(|w| (w.iterations.unwrap(), w.stopped))
            .collect();
        (session.discarded, windows)
    }

    fn schedule(delay_iters: u64, max_iters: u64, warmup_iters: u64, repeat: u64) -> Schedule {
        Schedule {
            delay_iters,
            max_iters,
            warmup_iters,
            repeat,
        }
    }

    #[test]
    fn examples_of_the_crate_documentation_hold() {
        assert_eq!(
            outcome(schedule(0, 0, 0, 1), 8, true),
            (vec![], vec![(1..=9, true)])
        );
        assert_eq!(
            outcome(schedule(0, 3, 0, 1), 8, false),
            (vec![], vec![(1..=3, false)])
        );
        assert_eq!(
            outcome(schedule(2, 3, 0, 1), 8, false),
            (vec![], vec![(3..=5, false)])
        );
        assert_eq!(
            outcome(schedule(5, 2, 2, 1), 8, false),
            (vec![4, 5], vec![(6..=7, false)])
        );
        assert_eq!(
            outcome(schedule(1, 2, 3, 1), 8, false),
            (vec![1], vec![(2..=3, false)])
        );
        assert_eq!(
            outcome(schedule(2, 2, 1, 3), 10, false),
            (
                vec![2],
                vec![(3..=4, false), (5..=6, false), (7..=8, false)]
            )
        );
        assert_eq!(
            outcome(schedule(1, 2, 0, 0), 8, true),
            (
                vec![],
                vec![
                    (2..=3, false),
                    (4..=5, false),
                    (6..=7, false),
                    (8..=9, true)
                ]
            )
        );
        assert_eq!(outcome(schedule(3, 2, 1, 1), 1, true), (vec![], vec![]));
        assert_eq!(outcome(schedule(3, 2, 1, 1), 2, true), (vec![3], vec![]));
    }

    #[test]
    fn actions_come_in_the_documented_order() {
        let mut m = Windows::new(schedule(2, 2, 1, 2));
        assert_eq!(m.start(), Ok(vec![]));
        assert_eq!(m.step(), [EnableCollection]);
        assert_eq!(
            m.step(),
            [
                DiscardCollected,
                BeginWindow {
                    window: 1,
                    first_iteration: 3
                }
            ]
        );
        assert_eq!(
            m.step(),
            [IterationEnd {
                window: 1,
                iteration: 3
            }]
        );
        assert_eq!(
            m.step(),
            [
                IterationEnd {
                    window: 1,
                    iteration: 4
                },
                EndWindow {
                    window: 1,
                    iterations: 3..=4,
                    stopped: false
                },
                BeginWindow {
                    window: 2,
                    first_iteration: 5
                }
            ]
        );
        assert_eq!(
            m.step(),
            [IterationEnd {
                window: 2,
                iteration: 5
            }]
        );
        assert_eq!(
            m.step(),
            [
                IterationEnd {
                    window: 2,
                    iteration: 6
                },
                DisableCollection,
                EndWindow {
                    window: 2,
                    iterations: 5..=6,
                    stopped: false
                }
            ]
        );
        assert_eq!(m.state(), State::Idle);
        assert_eq!(m.step(), []);
        assert_eq!(m.stop(), Err(Ignored::NotStarted));

        // Started again: iterations count from 1, windows go on from 3.
        assert_eq!(m.start(), Ok(vec![]));
        assert_eq!(m.step(), [EnableCollection]);
        assert_eq!(
            m.step(),
            [
                DiscardCollected,
                BeginWindow {
                    window: 3,
                    first_iteration: 3
                }
            ]
        );
        assert_eq!(
            m.state(),
            State::Recording {
                window: 3,
                first_iteration: 3
            }
        );
        assert_eq!(m.start(), Err(Ignored::AlreadyStarted));
        assert_eq!(
            m.stop(),
            Ok(vec![
                IterationEnd {
                    window: 3,
                    iteration: 3
                },
                DisableCollection,
                EndWindow {
                    window: 3,
                    iterations: 3..=3,
                    stopped: true
                }
            ])
        );
    }

    #[test]
    fn stop_while_idle_is_ignored() {
        let mut m = Windows::new(Schedule::default());
        assert_eq!(m.stop(), Err(Ignored::NotStarted));
        assert_eq!(m.step(), []);
        assert_eq!(m.state(), State::Idle);
    }

    #[test]
    fn stop_in_the_warmup_discards_it() {
        let mut m = Windows::new(schedule(1, 1, 1, 1));
        assert_eq!(m.start(), Ok(vec![EnableCollection]));
        assert_eq!(m.state(), State::Warmup);
        assert_eq!(m.stop(), Ok(vec![DisableCollection, DiscardCollected]));
        assert_eq!(m.state(), State::Idle);
    }

    #[test]
    fn each_start_stop_pair_of_the_default_schedule_is_one_window() {
        let mut m = Windows::new(Schedule::default());
        for (window, steps) in (1..).zip(0..4) {
            assert_eq!(
                m.start(),
                Ok(vec![
                    EnableCollection,
                    BeginWindow {
                        window,
                        first_iteration: 1
                    }
                ])
            );
            for iteration in 1..=steps {
                assert_eq!(m.step(), [IterationEnd { window, iteration }]);
            }
            let expected = vec![
                IterationEnd {
                    window,
                    iteration: steps + 1,
                },
                DisableCollection,
                EndWindow {
                    window,
                    iterations: 1..=steps + 1,
                    stopped: true,
                },
            ];
            assert_eq!(m.stop(), Ok(expected));
        }
    }

    #[test]
    fn shutdown_ends_the_window_and_ignores_every_later_call() {
        let mut m = Windows::new(schedule(0, 5, 0, 1));
        m.start().unwrap();
        assert_eq!(
            m.step(),
            [IterationEnd {
                window: 1,
                iteration: 1
            }]
        );
        assert_eq!(
            m.shutdown(),
            Ok(vec![
                IterationEnd {
                    window: 1,
                    iteration: 2
                },
                DisableCollection,
                EndWindow {
                    window: 1,
                    iterations: 1..=2,
                    stopped: true
                }
            ])
        );
        assert_eq!(m.state(), State::ShutDown);
        assert_eq!(m.start(), Err(Ignored::ShutDown));
        assert_eq!(m.step(), []);
        assert_eq!(m.stop(), Err(Ignored::ShutDown));
        assert_eq!(m.shutdown(), Err(Ignored::ShutDown));
        assert!(!m.is_recording());
    }

    #[test]
    fn shutdown_while_idle_does_nothing_but_shut_down() {
        let mut m = Windows::new(Schedule::default());
        assert_eq!(m.shutdown(), Ok(vec![]));
        assert_eq!(m.start(), Err(Ignored::ShutDown));
    }
}
