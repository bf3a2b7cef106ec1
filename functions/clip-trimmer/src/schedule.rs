//! When a clip can be made, and from which parts of which recordings: the time rules of
//! seed 002 (pending while young, not available after `SQS_RETRY_LIMIT`, out of range after
//! `OUT_OF_RANGE_LIMIT`) and the coverage of a range by recordings. Pure functions of their
//! inputs, so every rule is unit-tested without a clock or a queue.

#[cfg(doc)]
use shared::contracts::clip::ClipStatus;
pub use shared::contracts::clip::Gap;

/// One recording as the camera API lists it, with its place in the origin bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub start_ms: i64,
    pub end_ms: i64,
    pub key: String,
}

/// The part of one recording that goes into the clip, in ms from the recording's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub recording: Recording,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// How the recordings cover a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// In time order; consecutive segments never overlap (an overlap is cut from the later one).
    pub segments: Vec<Segment>,
    /// Every uncovered part, including one at either end.
    pub gaps: Vec<Gap>,
}

impl Coverage {
    /// Covered when no gap is longer than `tolerance_ms` and both ends are covered; a shorter
    /// gap inside the range is reported in the result, not silently bridged.
    pub fn is_complete(&self, range: (i64, i64), tolerance_ms: i64) -> bool {
        !self.segments.is_empty()
            && self.gaps.iter().all(|gap| {
                gap.duration_ms() <= tolerance_ms
                    && gap.start_timestamp_in_ms != range.0
                    && gap.end_timestamp_in_ms != range.1
            })
    }
}

/// Which parts of `[start_ms, end_ms)` the recordings cover.
pub fn coverage(mut recordings: Vec<Recording>, start_ms: i64, end_ms: i64) -> Coverage {
    recordings.retain(|r| r.end_ms > r.start_ms && r.end_ms > start_ms && r.start_ms < end_ms);
    recordings.sort_by_key(|r| (r.start_ms, r.end_ms));
    let mut segments = Vec::new();
    let mut gaps = Vec::new();
    let mut covered_to = start_ms;
    for recording in recordings {
        if recording.end_ms <= covered_to {
            continue; // wholly inside what earlier recordings already cover
        }
        if recording.start_ms > covered_to {
            gaps.push(Gap {
                start_timestamp_in_ms: covered_to,
                end_timestamp_in_ms: recording.start_ms.min(end_ms),
            });
        }
        let from = covered_to.max(recording.start_ms);
        let to = recording.end_ms.min(end_ms);
        segments.push(Segment {
            from_ms: from - recording.start_ms,
            to_ms: to - recording.start_ms,
            recording,
        });
        covered_to = to;
        if covered_to >= end_ms {
            break;
        }
    }
    if covered_to < end_ms {
        gaps.push(Gap {
            start_timestamp_in_ms: covered_to,
            end_timestamp_in_ms: end_ms,
        });
    }
    Coverage { segments, gaps }
}

/// The limits of seed 002, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `SQS_RETRY_LIMIT`: how long a request may stay pending.
    pub retry_limit_ms: i64,
    /// `OUT_OF_RANGE_LIMIT`: how far back recordings are kept.
    pub out_of_range_ms: i64,
}

/// Out of range ([`ClipStatus::OutOfRange`]) when the range starts further back than
/// recordings are kept: decided before asking the camera API anything.
pub fn is_out_of_range(start_ms: i64, now_ms: i64, limits: Limits) -> bool {
    now_ms - start_ms > limits.out_of_range_ms
}

/// What to do with a request whose recordings do not (yet) cover the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCovered {
    /// Young enough: re-queue it and say [`ClipStatus::Pending`].
    Pending,
    /// Pending for longer than `SQS_RETRY_LIMIT`: [`ClipStatus::NotAvailable`].
    NotAvailable,
}

/// A request is as old as its first delivery: the first re-queue timestamp, or, on its first
/// delivery, when the queue received it.
pub fn first_seen_ms(retry_timestamps: &[i64], sent_ms: Option<i64>, now_ms: i64) -> i64 {
    retry_timestamps.iter().copied().chain(sent_ms).min().unwrap_or(now_ms)
}

pub fn not_covered(first_seen_ms: i64, now_ms: i64, limits: Limits) -> NotCovered {
    if now_ms - first_seen_ms < limits.retry_limit_ms {
        NotCovered::Pending
    } else {
        NotCovered::NotAvailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start: i64, end: i64) -> Recording {
        Recording {
            start_ms: start,
            end_ms: end,
            key: format!("r{start}"),
        }
    }

    #[test]
    fn consecutive_recordings_cover_a_range_across_them() {
        let c = coverage(
            vec![rec(10_000, 20_000), rec(0, 10_000), rec(20_000, 30_000)],
            3_300,
            26_500,
        );
        assert!(c.gaps.is_empty());
        assert!(c.is_complete((3_300, 26_500), 0));
        let parts: Vec<_> = c
            .segments
            .iter()
            .map(|s| (s.recording.start_ms, s.from_ms, s.to_ms))
            .collect();
        assert_eq!(parts, [(0, 3_300, 10_000), (10_000, 0, 10_000), (20_000, 0, 6_500)]);
    }

    #[test]
    fn recordings_outside_the_range_are_ignored() {
        let c = coverage(vec![rec(0, 10_000), rec(40_000, 50_000)], 2_000, 8_000);
        assert_eq!(c.segments.len(), 1);
        assert_eq!((c.segments[0].from_ms, c.segments[0].to_ms), (2_000, 8_000));
    }

    #[test]
    fn overlaps_are_cut_from_the_later_recording() {
        let c = coverage(vec![rec(0, 10_000), rec(9_000, 20_000), rec(2_000, 5_000)], 0, 15_000);
        let parts: Vec<_> = c
            .segments
            .iter()
            .map(|s| (s.recording.start_ms, s.from_ms, s.to_ms))
            .collect();
        assert_eq!(parts, [(0, 0, 10_000), (9_000, 1_000, 6_000)]);
        assert!(c.gaps.is_empty());
    }

    #[test]
    fn gaps_are_reported_and_decide_completeness() {
        let c = coverage(vec![rec(0, 10_000), rec(10_400, 20_000)], 5_000, 15_000);
        assert_eq!(
            c.gaps,
            [Gap {
                start_timestamp_in_ms: 10_000,
                end_timestamp_in_ms: 10_400
            }]
        );
        assert!(
            c.is_complete((5_000, 15_000), 1_000),
            "a short inner gap is tolerated (and reported)"
        );
        assert!(
            !c.is_complete((5_000, 15_000), 100),
            "a gap longer than the tolerance is not"
        );
    }

    #[test]
    fn a_range_running_past_the_last_recording_is_not_covered() {
        let c = coverage(vec![rec(0, 10_000)], 5_000, 10_200);
        assert_eq!(c.gaps.last().unwrap().end_timestamp_in_ms, 10_200);
        assert!(
            !c.is_complete((5_000, 10_200), 1_000),
            "an uncovered end is never tolerated"
        );
        let none = coverage(vec![], 0, 1_000);
        assert!(!none.is_complete((0, 1_000), 10_000));
        let late_start = coverage(vec![rec(500, 2_000)], 0, 1_000);
        assert!(!late_start.is_complete((0, 1_000), 10_000), "nor an uncovered start");
    }

    const LIMITS: Limits = Limits {
        retry_limit_ms: 15 * 60_000,
        out_of_range_ms: 3 * 86_400_000,
    };

    #[test]
    fn the_seeds_time_rules() {
        let now = 10 * 86_400_000;
        assert!(is_out_of_range(now - 3 * 86_400_000 - 1, now, LIMITS));
        assert!(!is_out_of_range(now - 3 * 86_400_000, now, LIMITS));
        assert_eq!(not_covered(now - 14 * 60_000, now, LIMITS), NotCovered::Pending);
        assert_eq!(not_covered(now - 15 * 60_000, now, LIMITS), NotCovered::NotAvailable);
    }

    #[test]
    fn a_request_is_as_old_as_its_first_delivery() {
        assert_eq!(first_seen_ms(&[], Some(500), 900), 500);
        assert_eq!(first_seen_ms(&[300, 700], Some(800), 900), 300);
        assert_eq!(first_seen_ms(&[], None, 900), 900);
    }
}
