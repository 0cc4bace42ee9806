//! The decision record: the value stored at a transaction's decision key, which says whether the
//! transaction committed and how many records it wrote in each participant shard.
//!
//! # Format, version 1
//!
//! All integers are big-endian; offsets are in bytes; `n` is the participant count.
//!
//! | offset    | size | field               | meaning                                          |
//! |----------:|-----:|---------------------|--------------------------------------------------|
//! | 0         | 1    | `format`            | `0x01`, the format version                        |
//! | 1         | 1    | `decision`          | `0x01` = commit, `0x02` = abort                   |
//! | 2         | 2    | `participant_count` | `n`, 0 to [`PARTICIPANTS_MAX`]                    |
//! | 4 + 8·i   | 4    | `shard`             | participant `i`'s shard                           |
//! | 8 + 8·i   | 4    | `writes`            | records the transaction wrote in that shard       |
//!
//! The record is exactly `4 + 8·n` bytes. Participants are sorted by shard, strictly increasing,
//! so each shard appears once and a record has one encoding: `encode(decode(b)) == b` for every
//! `b` that decodes. A participant may have 0 writes (a shard the transaction only read from).
//!
//! A new format gets a new `format` byte; the decoder refuses format and decision bytes it does
//! not know rather than guess.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::ShardId;

/// The decision record format this code writes.
pub const FORMAT_V1: u8 = 0x01;
/// Most participants a decision record may list.
pub const PARTICIPANTS_MAX: usize = 1024;
/// Length of the fixed part of a decision record, before the participants.
pub const HEADER_LEN: usize = 4;
/// Length of one encoded participant.
pub const PARTICIPANT_LEN: usize = 8;

const DECISION_COMMIT: u8 = 0x01;
const DECISION_ABORT: u8 = 0x02;

/// The outcome of two-phase commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnDecision {
    /// Every participant applies its writes.
    Commit,
    /// No participant applies anything.
    Abort,
}

impl TxnDecision {
    /// The byte that encodes the decision.
    pub fn to_byte(self) -> u8 {
        match self {
            TxnDecision::Commit => DECISION_COMMIT,
            TxnDecision::Abort => DECISION_ABORT,
        }
    }

    /// The decision a byte encodes, if any.
    pub fn from_byte(byte: u8) -> Option<TxnDecision> {
        match byte {
            DECISION_COMMIT => Some(TxnDecision::Commit),
            DECISION_ABORT => Some(TxnDecision::Abort),
            _ => None,
        }
    }
}

impl fmt::Display for TxnDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnDecision::Commit => "commit",
            TxnDecision::Abort => "abort",
        })
    }
}

/// A shard a transaction took part in, and how many records it wrote there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Participant {
    /// The participant's shard.
    pub shard: ShardId,
    /// Number of records the transaction wrote in that shard.
    pub writes: u32,
}

/// The value at a transaction's decision key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    /// Commit or abort.
    pub decision: TxnDecision,
    /// The participants, sorted by shard, each shard once, at most [`PARTICIPANTS_MAX`].
    pub participants: Vec<Participant>,
}

/// Why bytes are not a valid decision record, or a record cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// The format byte is not one this code knows.
    #[error("unknown decision record format {0:#04x} (this verifier knows {FORMAT_V1:#04x})")]
    UnknownFormat(u8),
    /// The decision byte is neither commit nor abort.
    #[error(
        "unknown decision {0:#04x} (commit is {DECISION_COMMIT:#04x}, abort {DECISION_ABORT:#04x})"
    )]
    UnknownDecision(u8),
    /// More than [`PARTICIPANTS_MAX`] participants.
    #[error(
        "decision record lists {count} participants, more than the limit of {PARTICIPANTS_MAX}"
    )]
    TooManyParticipants {
        /// The number of participants.
        count: usize,
    },
    /// A shard is listed twice.
    #[error("decision record lists shard {shard} twice (participants {first} and {second})")]
    DuplicateParticipant {
        /// The shard.
        shard: ShardId,
        /// Position of its first listing, from 0.
        first: usize,
        /// Position of its second listing.
        second: usize,
    },
    /// The participants are not sorted by shard.
    #[error(
        "decision record participants are not sorted by shard: participant {position} is shard \
         {shard}, after shard {previous}"
    )]
    UnsortedParticipants {
        /// Position of the participant out of order, from 1.
        position: usize,
        /// The shard before it.
        previous: ShardId,
        /// Its shard.
        shard: ShardId,
    },
    /// The bytes end early or run on.
    #[error("malformed decision record: {0}")]
    Malformed(#[from] DecodeError),
}

/// Checks that participants are within the bound and strictly increasing by shard.
fn check_participants(participants: &[Participant]) -> Result<(), DecisionError> {
    if participants.len() > PARTICIPANTS_MAX {
        return Err(DecisionError::TooManyParticipants { count: participants.len() });
    }
    for (i, pair) in participants.windows(2).enumerate() {
        let (previous, shard) = (pair[0].shard, pair[1].shard);
        if shard == previous {
            return Err(DecisionError::DuplicateParticipant { shard, first: i, second: i + 1 });
        }
        if shard < previous {
            return Err(DecisionError::UnsortedParticipants { position: i + 1, previous, shard });
        }
    }
    Ok(())
}

impl DecisionRecord {
    /// The participant entry of `shard`, if the transaction took part there.
    pub fn participant(&self, shard: ShardId) -> Option<&Participant> {
        self.participants.iter().find(|p| p.shard == shard)
    }

    /// The canonical bytes of the record.
    ///
    /// # Errors
    /// [`DecisionError::TooManyParticipants`], [`DecisionError::DuplicateParticipant`] or
    /// [`DecisionError::UnsortedParticipants`]: a record that could not be decoded again is never
    /// encoded.
    pub fn encode(&self) -> Result<Vec<u8>, DecisionError> {
        check_participants(&self.participants)?;
        let count = self.participants.len();
        let mut w = Writer::with_capacity(HEADER_LEN + PARTICIPANT_LEN * count);
        w.u8(FORMAT_V1);
        w.u8(self.decision.to_byte());
        w.u16(u16::try_from(count).expect("count checked against PARTICIPANTS_MAX above"));
        for p in &self.participants {
            w.u32(p.shard.0);
            w.u32(p.writes);
        }
        debug_assert_eq!(w.buf.len(), HEADER_LEN + PARTICIPANT_LEN * count);
        Ok(w.buf)
    }

    /// Decodes canonical decision record bytes.
    ///
    /// # Errors
    /// A [`DecisionError`] naming the first thing that is wrong: the format, the decision, the
    /// count, the input ending early, the participants' order, or bytes after the end. Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<DecisionRecord, DecisionError> {
        let mut r = Reader::new(bytes);
        let format = r.u8("format")?;
        if format != FORMAT_V1 {
            return Err(DecisionError::UnknownFormat(format));
        }
        let byte = r.u8("decision")?;
        let decision = TxnDecision::from_byte(byte).ok_or(DecisionError::UnknownDecision(byte))?;
        let count = usize::from(r.u16("participant_count")?);
        if count > PARTICIPANTS_MAX {
            return Err(DecisionError::TooManyParticipants { count });
        }
        let mut participants = Vec::with_capacity(count);
        for _ in 0..count {
            let shard = ShardId(r.u32("participant.shard")?);
            let writes = r.u32("participant.writes")?;
            participants.push(Participant { shard, writes });
        }
        check_participants(&participants)?;
        r.finish()?;
        Ok(DecisionRecord { decision, participants })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DecisionRecord {
        DecisionRecord {
            decision: TxnDecision::Commit,
            participants: vec![
                Participant { shard: ShardId(0), writes: 2 },
                Participant { shard: ShardId(3), writes: 0 },
                Participant { shard: ShardId(0x0a0b_0c0d), writes: 0x0102_0304 },
            ],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let record = sample();
        let bytes = record.encode().expect("valid record");
        assert_eq!(
            bytes,
            [
                &[0x01, 0x01, 0x00, 0x03][..],
                &[0, 0, 0, 0, 0, 0, 0, 2],
                &[0, 0, 0, 3, 0, 0, 0, 0],
                &[0x0a, 0x0b, 0x0c, 0x0d, 0x01, 0x02, 0x03, 0x04],
            ]
            .concat()
        );
        assert_eq!(DecisionRecord::decode(&bytes), Ok(record.clone()));
        assert_eq!(record.participant(ShardId(3)), Some(&record.participants[1]));
        assert_eq!(record.participant(ShardId(1)), None);

        let abort = DecisionRecord { decision: TxnDecision::Abort, participants: Vec::new() };
        let bytes = abort.encode().expect("valid record");
        assert_eq!(bytes, [0x01, 0x02, 0x00, 0x00]);
        assert_eq!(DecisionRecord::decode(&bytes), Ok(abort));
    }

    #[test]
    fn refuses_an_unknown_format() {
        let mut b = sample().encode().expect("valid record");
        b[0] = 0x02;
        assert_eq!(DecisionRecord::decode(&b), Err(DecisionError::UnknownFormat(2)));
    }

    #[test]
    fn refuses_an_unknown_decision() {
        let mut b = sample().encode().expect("valid record");
        for bad in [0x00, 0x03, 0xff] {
            b[1] = bad;
            assert_eq!(DecisionRecord::decode(&b), Err(DecisionError::UnknownDecision(bad)));
        }
    }

    #[test]
    fn refuses_unsorted_participants() {
        let mut b = sample().encode().expect("valid record");
        // Swap the first two participants: shard 3 then shard 0.
        let (first, second) = (b[4..12].to_vec(), b[12..20].to_vec());
        b[4..12].copy_from_slice(&second);
        b[12..20].copy_from_slice(&first);
        assert_eq!(
            DecisionRecord::decode(&b),
            Err(DecisionError::UnsortedParticipants {
                position: 1,
                previous: ShardId(3),
                shard: ShardId(0),
            })
        );
        let mut record = sample();
        record.participants.swap(0, 1);
        assert!(matches!(record.encode(), Err(DecisionError::UnsortedParticipants { .. })));
    }

    #[test]
    fn refuses_a_duplicate_participant() {
        let mut b = sample().encode().expect("valid record");
        b[12..16].copy_from_slice(&0u32.to_be_bytes()); // the second participant is shard 0 too
        assert_eq!(
            DecisionRecord::decode(&b),
            Err(DecisionError::DuplicateParticipant { shard: ShardId(0), first: 0, second: 1 })
        );
        let mut record = sample();
        record.participants[1].shard = ShardId(0);
        assert!(matches!(record.encode(), Err(DecisionError::DuplicateParticipant { .. })));
    }

    #[test]
    fn refuses_too_many_participants() {
        let count = PARTICIPANTS_MAX + 1;
        let mut b = vec![FORMAT_V1, 0x01];
        b.extend_from_slice(&(count as u16).to_be_bytes());
        for shard in 0..count as u32 {
            b.extend_from_slice(&shard.to_be_bytes());
            b.extend_from_slice(&1u32.to_be_bytes());
        }
        assert_eq!(DecisionRecord::decode(&b), Err(DecisionError::TooManyParticipants { count }));
        let record = DecisionRecord {
            decision: TxnDecision::Commit,
            participants: (0..count as u32)
                .map(|s| Participant { shard: ShardId(s), writes: 1 })
                .collect(),
        };
        assert_eq!(record.encode(), Err(DecisionError::TooManyParticipants { count }));
        // The limit itself is fine.
        let mut at_limit = record;
        at_limit.participants.pop();
        let bytes = at_limit.encode().expect("at the limit");
        assert_eq!(DecisionRecord::decode(&bytes), Ok(at_limit));
    }

    #[test]
    fn refuses_short_input() {
        let bytes = sample().encode().expect("valid record");
        for len in 0..bytes.len() {
            let e = DecisionRecord::decode(&bytes[..len]).expect_err("truncated");
            assert!(
                matches!(e, DecisionError::Malformed(DecodeError::Truncated { .. })),
                "length {len}: {e}"
            );
        }
    }

    #[test]
    fn refuses_trailing_bytes() {
        let mut b = sample().encode().expect("valid record");
        b.push(0);
        assert_eq!(
            DecisionRecord::decode(&b),
            Err(DecisionError::Malformed(DecodeError::TrailingBytes { offset: 28, count: 1 }))
        );
    }
}
