//! Test hook: crash points for the crash-safety tests of checkpoints. With the environment
//! variable `GADMS_FAULT` set to `POINT` or `POINT:EPOCH`, the process aborts, as a kill
//! would stop it, when it reaches `POINT` (at that epoch only, when one is given). Unset, it
//! does nothing. In unit tests, [`killed_at`] names the point instead, for one thread, and
//! reaching it panics: the code on the way does no more disk work than a kill lets it.
//!
//! The points, each reached once per epoch that commits the slot (`checkpoint` every epoch,
//! `best` when the epoch improves it):
//! - `checkpoint-switch`, `best-switch`: the new folder is complete, the link not yet switched;
//! - `checkpoint-cleanup`, `best-cleanup`: the link switched, the previous folder not yet
//!   removed.

/// Stops the process when the fault names `point` (and, if it says one, `epoch`).
pub fn point(point: &str, epoch: usize) {
    if fault().is_some_and(|fault| names(&fault, point, epoch)) {
        stop(point, epoch);
    }
}

/// Whether the value `fault` of `GADMS_FAULT` names `point` at `epoch`.
fn names(fault: &str, point: &str, epoch: usize) -> bool {
    match fault.split_once(':') {
        Some((name, at)) => name == point && at.parse() == Ok(epoch),
        None => fault == point,
    }
}

#[cfg(not(test))]
fn fault() -> Option<String> {
    std::env::var("GADMS_FAULT").ok()
}

#[cfg(not(test))]
fn stop(point: &str, epoch: usize) {
    eprintln!("GADMS_FAULT: aborting at {point} (epoch {epoch}), as a test asked");
    std::process::abort();
}

#[cfg(test)]
thread_local! {
    static FAULT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
fn fault() -> Option<String> {
    FAULT.with_borrow(Clone::clone)
}

#[cfg(test)]
fn stop(point: &str, epoch: usize) {
    panic!("killed at {point} (epoch {epoch})");
}

/// Runs `f` as if the process were killed at `fault` (`POINT` or `POINT:EPOCH`): `Err` if
/// it was.
#[cfg(test)]
pub fn killed_at<R>(fault: &str, f: impl FnOnce() -> R) -> std::thread::Result<R> {
    FAULT.set(Some(fault.to_string()));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    FAULT.set(None);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_names_a_point_and_optionally_an_epoch() {
        assert!(names("checkpoint-switch", "checkpoint-switch", 3));
        assert!(names("checkpoint-switch:2", "checkpoint-switch", 2));
        assert!(!names("checkpoint-switch:2", "checkpoint-switch", 3));
        assert!(!names("checkpoint-switch:2", "best-switch", 2));
        assert!(!names("checkpoint-switch:x", "checkpoint-switch", 2));
        assert!(!names("checkpoint", "checkpoint-switch", 2));
        assert!(killed_at("here:1", || point("here", 1)).is_err());
        assert!(killed_at("here:1", || point("here", 2)).is_ok());
        point("here", 1); // no fault outside `killed_at`
    }
}
