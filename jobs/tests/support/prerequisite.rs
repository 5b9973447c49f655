//! A tool or server a test needs and the machine does not have. The test fails and says how to
//! get it: a test that did not run must never look like one that passed. `scripts/test` (the
//! README's test command, and CI's) installs what it can; with `--skip-missing` it leaves the
//! tests that need the rest out of the run, where nextest counts them as skipped. Shared by the
//! test crates by path, as they cannot depend on each other's helpers.

/// Fails the test: `what` is missing, and `remedy` says how to get it.
pub fn missing(what: &str, remedy: &str) -> ! {
    panic!(
        "{what} is missing: {remedy}. `scripts/test` installs what it can and lists the rest; \
         `scripts/test --skip-missing` leaves the tests that need them out, counted as skipped"
    )
}
