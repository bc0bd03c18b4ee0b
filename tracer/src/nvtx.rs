//! The bookkeeping behind NVTX range ends: which range a pop or an end closes, and
//! what it was called. No FFI here; `controls` reads CUPTI's callback data and
//! drives these.
//!
//! NVTX scopes ranges by domain: `nvtxRangePush*`/`nvtxRangePop` and
//! `nvtxRangeStart*`/`nvtxRangeEnd` act on the global domain, the `nvtxDomain*`
//! calls on the domain they name (a null handle is the global domain too). A pop
//! ends the innermost range pushed on the same thread in the same domain; an end
//! names its range by the id its start returned, from any thread.

use rustc_hash::FxHashMap;

/// An NVTX domain, by the address of its handle; [`GLOBAL`] is the default one.
pub(crate) type Domain = usize;

/// The global (default) domain: the null handle.
pub(crate) const GLOBAL: Domain = 0;

/// The push/pop ranges open on one thread, a stack per domain. A range whose name
/// could not be read is kept as `None`, so that later pops still pair correctly.
#[derive(Debug, Default)]
pub(crate) struct PushedRanges {
    stacks: FxHashMap<Domain, Vec<Option<String>>>,
}

impl PushedRanges {
    /// Opens a range in `domain`.
    pub fn push(&mut self, domain: Domain, name: Option<String>) {
        self.stacks.entry(domain).or_default().push(name);
    }

    /// Closes the innermost open range of `domain`; its name, if it had one.
    pub fn pop(&mut self, domain: Domain) -> Option<String> {
        let stack = self.stacks.get_mut(&domain)?;
        let name = stack.pop();
        if stack.is_empty() {
            self.stacks.remove(&domain);
        }
        name.flatten()
    }
}

/// The start/end ranges open in the process, by domain and range id.
#[derive(Debug, Default)]
pub(crate) struct StartedRanges {
    open: FxHashMap<(Domain, u64), Option<String>>,
}

impl StartedRanges {
    /// Opens range `id` of `domain`.
    pub fn start(&mut self, domain: Domain, id: u64, name: Option<String>) {
        self.open.insert((domain, id), name);
    }

    /// Closes range `id` of `domain`; its name, if it was open and had one.
    pub fn end(&mut self, domain: Domain, id: u64) -> Option<String> {
        self.open.remove(&(domain, id)).flatten()
    }
}

/// Strings registered with `nvtxDomainRegisterString{A,W}`, by the address of the
/// handle the registration returned (handles are unique in the process, whatever
/// their domain).
#[derive(Debug, Default)]
pub(crate) struct RegisteredStrings {
    strings: FxHashMap<usize, String>,
}

impl RegisteredStrings {
    /// Remembers that `handle` stands for `text`.
    pub fn register(&mut self, handle: usize, text: String) {
        self.strings.insert(handle, text);
    }

    /// The string `handle` stands for, if its registration was seen.
    pub fn get(&self, handle: usize) -> Option<String> {
        self.strings.get(&handle).cloned()
    }
}

/// Decodes a NUL-terminated wide (`wchar_t`, UTF-32 on Linux) string; a code unit
/// that is no Unicode scalar value becomes U+FFFD.
pub(crate) fn from_wide(units: impl IntoIterator<Item = i32>) -> String {
    units
        .into_iter()
        .take_while(|&unit| unit != 0)
        .map(|unit| char::from_u32(unit as u32).unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn a_pop_ends_the_innermost_range_of_its_own_domain() {
        let mut pushed = PushedRanges::default();
        pushed.push(GLOBAL, name("outer"));
        pushed.push(7, name("d-outer"));
        pushed.push(GLOBAL, name("inner"));
        pushed.push(7, name("d-inner"));
        assert_eq!(pushed.pop(7), name("d-inner"));
        assert_eq!(pushed.pop(GLOBAL), name("inner"));
        assert_eq!(pushed.pop(GLOBAL), name("outer"));
        assert_eq!(pushed.pop(GLOBAL), None);
        assert_eq!(pushed.pop(7), name("d-outer"));
        assert_eq!(pushed.pop(7), None);
        assert!(pushed.stacks.is_empty());
    }

    #[test]
    fn an_unnamed_range_still_takes_its_pop() {
        let mut pushed = PushedRanges::default();
        pushed.push(GLOBAL, name("step"));
        pushed.push(GLOBAL, None);
        assert_eq!(pushed.pop(GLOBAL), None);
        assert_eq!(pushed.pop(GLOBAL), name("step"));
    }

    #[test]
    fn an_end_closes_the_range_of_its_domain_and_id_once() {
        let mut started = StartedRanges::default();
        started.start(GLOBAL, 1, name("a"));
        started.start(9, 1, name("b"));
        assert_eq!(started.end(9, 1), name("b"));
        assert_eq!(started.end(9, 1), None);
        assert_eq!(started.end(GLOBAL, 2), None);
        assert_eq!(started.end(GLOBAL, 1), name("a"));
    }

    #[test]
    fn registered_strings_are_found_by_handle() {
        let mut strings = RegisteredStrings::default();
        strings.register(0x10, "step".into());
        assert_eq!(strings.get(0x10), name("step"));
        assert_eq!(strings.get(0x20), None);
    }

    #[test]
    fn wide_strings_stop_at_nul_and_replace_bad_units() {
        let units = "añ🙂".chars().map(|c| c as i32).chain([-1, 0, 65]);
        assert_eq!(from_wide(units), "añ🙂\u{fffd}");
    }
}
