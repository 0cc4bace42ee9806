//! The binary encoding of Raft log entries as the log store keeps them.
//!
//! Entries hold client values of up to a mebibyte, so they are encoded compactly rather than as
//! JSON. Big-endian integers; `bytes` is a u32 length then that many bytes.
//!
//! | field          | encoding                                                          |
//! |----------------|-------------------------------------------------------------------|
//! | format         | u8, `0x02` (`0x01`: see below)                                    |
//! | term           | u64, of the entry's log id                                        |
//! | leader         | u64, the node id of the leader that proposed it                   |
//! | index          | u64, the Raft index                                               |
//! | kind           | u8: `0` blank, `1` normal, `2` membership                         |
//! | payload        | normal: a [`Request`]; membership: bytes of the membership as JSON |
//!
//! A [`Request`] is `commit_time_ms` (u64), the root check (a u8 flag and, if it is `1`, a tree
//! size (u64) and that tree's root (32 bytes)), a u32 count, then per command a tag (u8: `1` insert,
//! `2` append), key (bytes), value (bytes), and for an append a u8 flag and, if it is `1`, the
//! expected version (u64). Nothing may follow. Decoding never panics: stored bytes that do not
//! decode are corruption, reported as an error.
//!
//! Format `0x01` was written by single-node clusters before replication: it has no leader field
//! (the leader was always node 1) and no root check. It is still read.
//!
//! A log id alone (the log store's last and purged ids) is term ‖ leader ‖ index, 24 bytes; the
//! 16 bytes of term ‖ index of format `0x01` read as leader 1.

use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};

use crate::ledger::shard::Command;
use crate::raft::{Entry, NodeId, Request, RootCheck};

const FORMAT: u8 = 2;
const FORMAT_SINGLE_NODE: u8 = 1;
/// The leader of every entry of format [`FORMAT_SINGLE_NODE`].
const SINGLE_NODE_LEADER: NodeId = 1;
const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
const TAG_INSERT: u8 = 1;
const TAG_APPEND: u8 = 2;

/// Why stored bytes do not decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed raft entry: {0}")]
pub struct DecodeError(pub String);

/// Encodes an entry.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT);
    out.extend_from_slice(&entry.log_id.leader_id.term.to_be_bytes());
    out.extend_from_slice(&entry.log_id.leader_id.node_id.to_be_bytes());
    out.extend_from_slice(&entry.log_id.index.to_be_bytes());
    match &entry.payload {
        EntryPayload::Blank => out.push(KIND_BLANK),
        EntryPayload::Normal(request) => {
            out.push(KIND_NORMAL);
            encode_request(request, &mut out);
        }
        EntryPayload::Membership(m) => {
            out.push(KIND_MEMBERSHIP);
            let json = serde_json::to_vec(m).expect("a membership serializes to JSON");
            put_bytes(&mut out, &json);
        }
    }
    out
}

/// Decodes an entry.
///
/// # Errors
/// [`DecodeError`] for bytes that are not an entry of this format.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader(bytes);
    let format = r.u8()?;
    let (term, leader) = match format {
        FORMAT => (r.u64()?, r.u64()?),
        FORMAT_SINGLE_NODE => (r.u64()?, SINGLE_NODE_LEADER),
        f => return Err(DecodeError(format!("unknown format byte {f}"))),
    };
    let index = r.u64()?;
    let payload = match r.u8()? {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(decode_request(&mut r, format)?),
        KIND_MEMBERSHIP => {
            let json = r.bytes()?;
            let m: Membership<NodeId, openraft::BasicNode> = serde_json::from_slice(json)
                .map_err(|e| DecodeError(format!("membership: {e}")))?;
            EntryPayload::Membership(m)
        }
        k => return Err(DecodeError(format!("unknown entry kind {k}"))),
    };
    if !r.0.is_empty() {
        return Err(DecodeError("trailing bytes".into()));
    }
    Ok(Entry { log_id: LogId::new(CommittedLeaderId::new(term, leader), index), payload })
}

/// Encodes a log id as term ‖ leader ‖ index.
pub fn encode_log_id(log_id: &LogId<NodeId>) -> Vec<u8> {
    let mut out = log_id.leader_id.term.to_be_bytes().to_vec();
    out.extend_from_slice(&log_id.leader_id.node_id.to_be_bytes());
    out.extend_from_slice(&log_id.index.to_be_bytes());
    out
}

/// Decodes a log id written by [`encode_log_id`].
///
/// # Errors
/// [`DecodeError`] for bytes of the wrong length.
pub fn decode_log_id(bytes: &[u8]) -> Result<LogId<NodeId>, DecodeError> {
    let mut r = Reader(bytes);
    let term = r.u64()?;
    let leader = if bytes.len() == 16 { SINGLE_NODE_LEADER } else { r.u64()? };
    let index = r.u64()?;
    if !r.0.is_empty() {
        return Err(DecodeError("trailing bytes after a log id".into()));
    }
    Ok(LogId::new(CommittedLeaderId::new(term, leader), index))
}

/// Encodes one command, as inside a [`Request`].
pub fn encode_command(command: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    encode_commands(std::slice::from_ref(command), &mut out);
    out
}

/// Decodes one command written by [`encode_command`].
///
/// # Errors
/// [`DecodeError`] for anything else.
pub fn decode_command(bytes: &[u8]) -> Result<Command, DecodeError> {
    let mut r = Reader(bytes);
    let mut commands = decode_commands(&mut r)?;
    if !r.0.is_empty() || commands.len() != 1 {
        return Err(DecodeError("not exactly one command".into()));
    }
    Ok(commands.remove(0))
}

fn encode_request(request: &Request, out: &mut Vec<u8>) {
    out.extend_from_slice(&request.commit_time_ms.to_be_bytes());
    match &request.check {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&c.tree_size.to_be_bytes());
            out.extend_from_slice(&c.root);
        }
    }
    encode_commands(&request.commands, out);
}

fn encode_commands(commands: &[Command], out: &mut Vec<u8>) {
    let count = u32::try_from(commands.len()).expect("a batch holds fewer than 2^32");
    out.extend_from_slice(&count.to_be_bytes());
    for c in commands {
        match c {
            Command::Insert { key, value } => {
                out.push(TAG_INSERT);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Command::Append { key, value, expected_version } => {
                out.push(TAG_APPEND);
                put_bytes(out, key);
                put_bytes(out, value);
                match expected_version {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
        }
    }
}

fn decode_request(r: &mut Reader<'_>, format: u8) -> Result<Request, DecodeError> {
    let commit_time_ms = r.u64()?;
    let check = if format == FORMAT_SINGLE_NODE {
        None
    } else {
        match r.u8()? {
            0 => None,
            1 => {
                let tree_size = r.u64()?;
                let root: [u8; 32] = r.take(32)?.try_into().expect("took 32 bytes");
                Some(RootCheck { tree_size, root })
            }
            f => return Err(DecodeError(format!("bad root-check flag {f}"))),
        }
    };
    let commands = decode_commands(r)?;
    Ok(Request { commit_time_ms, check, commands })
}

fn decode_commands(r: &mut Reader<'_>) -> Result<Vec<Command>, DecodeError> {
    let count = r.u32()?;
    // Each command takes at least 9 bytes, so a count larger than the rest is malformed; the
    // check keeps a corrupt count from reserving a huge vector.
    if u64::from(count) * 9 > r.0.len() as u64 {
        return Err(DecodeError(format!("{count} commands cannot fit")));
    }
    let mut commands = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let tag = r.u8()?;
        let key = r.bytes()?.to_vec();
        let value = r.bytes()?.to_vec();
        commands.push(match tag {
            TAG_INSERT => Command::Insert { key, value },
            TAG_APPEND => {
                let expected_version = match r.u8()? {
                    0 => None,
                    1 => Some(r.u64()?),
                    f => return Err(DecodeError(format!("bad expected-version flag {f}"))),
                };
                Command::Append { key, value, expected_version }
            }
            t => return Err(DecodeError(format!("unknown command tag {t}"))),
        });
    }
    Ok(commands)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("keys and values are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError(format!("{n} bytes wanted, {} left", self.0.len())));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: EntryPayload<crate::raft::TypeConfig>) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(7, 3), 42), payload }
    }

    #[test]
    fn entries_round_trip() {
        let request = Request {
            commit_time_ms: 1_700_000_000_000,
            check: Some(RootCheck { tree_size: 17, root: [5; 32] }),
            commands: vec![
                Command::Insert { key: b"k\0".to_vec(), value: vec![1, 2, 3] },
                Command::Append { key: b"a".to_vec(), value: vec![], expected_version: Some(3) },
                Command::Append { key: vec![], value: vec![9], expected_version: None },
            ],
        };
        let mut members = std::collections::BTreeMap::new();
        members.insert(1u64, openraft::BasicNode::new("127.0.0.1:1"));
        let membership = Membership::new(vec![[1u64].into_iter().collect()], members);
        let unchecked = Request { check: None, ..request.clone() };
        for e in [
            entry(EntryPayload::Blank),
            entry(EntryPayload::Normal(unchecked)),
            entry(EntryPayload::Normal(request)),
            entry(EntryPayload::Membership(membership)),
        ] {
            let bytes = encode_entry(&e);
            let back = decode_entry(&bytes).unwrap();
            assert_eq!(back.log_id, e.log_id);
            assert_eq!(format!("{:?}", back.payload), format!("{:?}", e.payload));
            // Every strict prefix and every extension is refused.
            for n in 0..bytes.len() {
                assert!(decode_entry(&bytes[..n]).is_err(), "prefix of {n} bytes");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_entry(&longer).is_err());
        }
    }

    #[test]
    fn single_node_entries_and_log_ids_still_read_with_leader_1() {
        // Format 1: term, index, kind normal, commit time, one insert of "k" = "v".
        let mut bytes = vec![FORMAT_SINGLE_NODE];
        bytes.extend_from_slice(&4u64.to_be_bytes());
        bytes.extend_from_slice(&9u64.to_be_bytes());
        bytes.push(KIND_NORMAL);
        bytes.extend_from_slice(&1000u64.to_be_bytes());
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(TAG_INSERT);
        bytes.extend_from_slice(&[0, 0, 0, 1, b'k', 0, 0, 0, 1, b'v']);
        let e = decode_entry(&bytes).unwrap();
        assert_eq!(e.log_id, LogId::new(CommittedLeaderId::new(4, 1), 9));
        let EntryPayload::Normal(r) = e.payload else { panic!("not a normal entry") };
        assert_eq!(r.check, None);
        assert_eq!(r.commands, vec![Command::Insert { key: b"k".to_vec(), value: b"v".to_vec() }]);

        let mut old = 4u64.to_be_bytes().to_vec();
        old.extend_from_slice(&9u64.to_be_bytes());
        assert_eq!(decode_log_id(&old).unwrap(), LogId::new(CommittedLeaderId::new(4, 1), 9));
        let id = LogId::new(CommittedLeaderId::new(4, 3), 9);
        assert_eq!(decode_log_id(&encode_log_id(&id)).unwrap(), id);
    }

    #[test]
    fn one_command_round_trips_and_nothing_else_decodes_as_one() {
        let c =
            Command::Append { key: b"k".to_vec(), value: b"v".to_vec(), expected_version: None };
        let bytes = encode_command(&c);
        assert_eq!(decode_command(&bytes).unwrap(), c);
        for n in 0..bytes.len() {
            assert!(decode_command(&bytes[..n]).is_err());
        }
        let mut two = Vec::new();
        encode_commands(&[c.clone(), c], &mut two);
        assert!(decode_command(&two).is_err());
    }

    #[test]
    fn a_huge_command_count_is_refused_without_allocating() {
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.push(KIND_NORMAL);
        bytes.extend_from_slice(&0u64.to_be_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_entry(&bytes).is_err());
    }
}
