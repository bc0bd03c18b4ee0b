//! Host ranges the application marks with [`Profiler::annotate`](crate::Profiler::annotate).

use std::marker::PhantomData;

use crate::session::Session;

/// An open annotation: a named host range on CUPTI's clock, closed when dropped.
///
/// While it is open, the GPU work the thread launches carries its external
/// correlation id, so the trace attributes that work to it. Guards nest per thread
/// and must be dropped on the thread that opened them (the type is not `Send`).
#[must_use = "the range closes when the guard is dropped"]
pub struct RangeGuard<'a> {
    open: Option<OpenRange<'a>>,
    _same_thread: PhantomData<*const ()>,
}

struct OpenRange<'a> {
    session: &'a Session,
    name: String,
    external_id: u64,
    start: i64,
}

impl<'a> RangeGuard<'a> {
    /// Opens a range named `name` in `session`'s open window; an inert guard when
    /// there is no session or no window.
    pub(crate) fn open(session: Option<&'a Session>, name: &str) -> Self {
        let open = session.and_then(|session| {
            let (external_id, start) = session.open_range()?;
            Some(OpenRange {
                session,
                name: name.to_owned(),
                external_id,
                start,
            })
        });
        RangeGuard {
            open,
            _same_thread: PhantomData,
        }
    }

    /// The external correlation id GPU work launched inside carries; `None` when the
    /// guard records nothing.
    pub fn external_id(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.external_id)
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            open.session
                .close_range(&open.name, open.external_id, open.start);
        }
    }
}
