//! Internal consistency: within one ok txn, what a read returns must agree with what the txn
//! itself did and saw before, since no other txn can come between its steps.
//!
//! | before, in the same txn | then | must |
//! |---|---|---|
//! | appended e to k, got version v | read k | see version v, element e |
//! | read k at version v | read k again | see version v again |
//! | read or appended k at version v | append to k | get version v + 1 |

use super::super::report::{Anomalies, AnomalyKind};

/// What an ok txn last saw of a key, by its own read or append.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seen {
    pub(super) version: Option<u64>,
    pub(super) element: Option<u64>,
    pub(super) by_append: bool,
}

/// An ok txn's read result: its version, if the result keeps the conventions (a version; an
/// element exactly when the version is not 0); otherwise notes a malformed read.
pub(super) fn well_formed(
    i: usize,
    key: &str,
    version: Option<u64>,
    element: Option<u64>,
    out: &mut Anomalies,
) -> Option<u64> {
    let problem = match (version, element) {
        (None, _) => "no version".to_owned(),
        (Some(0), Some(e)) => format!("version 0 (no version yet) with element {e}"),
        (Some(v), None) if v > 0 => format!("version {v} with no element"),
        (Some(v), _) => return Some(v),
    };
    out.note(AnomalyKind::MalformedRead, vec![i], || {
        format!("T{i} is ok, but its read of {key:?} has {problem}")
    });
    None
}

/// Within ok txn `i`: an append of `key` must get the version after the one the txn last saw.
pub(super) fn check_append_follows(
    i: usize,
    key: &str,
    element: u64,
    version: Option<u64>,
    prev: &Seen,
    out: &mut Anomalies,
) {
    let (Some(v), Some(pv)) = (version, prev.version) else { return };
    if Some(v) == pv.checked_add(1) {
        return;
    }
    let how = if prev.by_append { "appended" } else { "read" };
    out.note(AnomalyKind::Internal, vec![i], || {
        format!(
            "T{i} {how} version {pv} of {key:?}, then its append of {element} got version {v}, \
             not {}",
            pv.saturating_add(1)
        )
    });
}

/// Within ok txn `i`: a read of `key` must see the txn's own last append to it, or what the
/// txn read before when it appended nothing since.
pub(super) fn check_read_agrees(
    i: usize,
    key: &str,
    version: u64,
    element: Option<u64>,
    prev: &Seen,
    out: &mut Anomalies,
) {
    let same_version = prev.version.is_none_or(|pv| pv == version);
    if same_version && element == prev.element {
        return;
    }
    let text = |e: Option<u64>| e.map_or_else(|| "no element".to_owned(), |e| e.to_string());
    let at = |v: Option<u64>| {
        v.map_or_else(|| "an unknown version".to_owned(), |v| format!("version {v}"))
    };
    out.note(AnomalyKind::Internal, vec![i], || {
        let (before, now) = (at(prev.version), text(element));
        if prev.by_append {
            format!(
                "T{i} appended {} to {key:?} ({before}), then read {key:?} at version {version} \
                 ({now}): a txn must read its own last append",
                text(prev.element)
            )
        } else {
            format!(
                "T{i} read {key:?} twice with no append between: {before} ({}), then version \
                 {version} ({now})",
                text(prev.element)
            )
        }
    });
}
