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
//! Transaction steps ([`TxnCommand`]) have tags `3` to `7`, each followed by the 16-byte
//! transaction id; lists are a u32 count then the items; a check is key (bytes) and version
//! (u64), a write key (bytes) and value (bytes), a decision a u8 (`1` commit, `2` abort):
//!
//! | tag | step      | after the transaction id                                            |
//! |-----|-----------|---------------------------------------------------------------------|
//! | `3` | `Apply`   | reads (list of bytes), checks (list), writes (list)                 |
//! | `4` | `Begin`   | participant shards (list of u32)                                    |
//! | `5` | `Decide`  | decision, per participant shard its write count (list of u32, u32)  |
//! | `6` | `Prepare` | coordinator's shard (u32), checks (list), writes (list)             |
//! | `7` | `Finish`  | decision                                                            |
//!
//! Format `0x01` was written by single-node clusters before replication: it has no leader field
//! (the leader was always node 1) and no root check. It is still read.
//!
//! A log id alone (the log store's last and purged ids) is term ‖ leader ‖ index, 24 bytes; the
//! 16 bytes of term ‖ index of format `0x01` read as leader 1.

use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};

use blockdb_twopc::{Decision, Write};
use blockdb_verifier::{ShardId, TxnId};

use crate::ledger::shard::Command;
use crate::ledger::txn::{Check, TxnCommand};
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
const TAG_TXN_APPLY: u8 = 3;
const TAG_TXN_BEGIN: u8 = 4;
const TAG_TXN_DECIDE: u8 = 5;
const TAG_TXN_PREPARE: u8 = 6;
const TAG_TXN_FINISH: u8 = 7;

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
            Command::Txn(t) => encode_txn(t, out),
        }
    }
}

fn encode_txn(t: &TxnCommand, out: &mut Vec<u8>) {
    let count = |out: &mut Vec<u8>, n: usize| {
        let n = u32::try_from(n).expect("a transaction holds fewer than 2^32 items");
        out.extend_from_slice(&n.to_be_bytes());
    };
    let checks = |out: &mut Vec<u8>, checks: &[Check]| {
        count(out, checks.len());
        for c in checks {
            put_bytes(out, &c.key);
            out.extend_from_slice(&c.version.to_be_bytes());
        }
    };
    let writes = |out: &mut Vec<u8>, writes: &[Write]| {
        count(out, writes.len());
        for w in writes {
            put_bytes(out, &w.key);
            put_bytes(out, &w.value);
        }
    };
    let decision = |d: &Decision| match d {
        Decision::Commit => 1u8,
        Decision::Abort => 2,
    };
    match t {
        TxnCommand::Apply { txn, reads, checks: c, writes: w } => {
            out.push(TAG_TXN_APPLY);
            out.extend_from_slice(&txn.0);
            count(out, reads.len());
            for k in reads {
                put_bytes(out, k);
            }
            checks(out, c);
            writes(out, w);
        }
        TxnCommand::Begin { txn, participants } => {
            out.push(TAG_TXN_BEGIN);
            out.extend_from_slice(&txn.0);
            count(out, participants.len());
            for s in participants {
                out.extend_from_slice(&s.0.to_be_bytes());
            }
        }
        TxnCommand::Decide { txn, decision: d, writes } => {
            out.push(TAG_TXN_DECIDE);
            out.extend_from_slice(&txn.0);
            out.push(decision(d));
            count(out, writes.len());
            for (s, n) in writes {
                out.extend_from_slice(&s.0.to_be_bytes());
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        TxnCommand::Prepare { txn, coordinator, checks: c, writes: w } => {
            out.push(TAG_TXN_PREPARE);
            out.extend_from_slice(&txn.0);
            out.extend_from_slice(&coordinator.0.to_be_bytes());
            checks(out, c);
            writes(out, w);
        }
        TxnCommand::Finish { txn, decision: d } => {
            out.push(TAG_TXN_FINISH);
            out.extend_from_slice(&txn.0);
            out.push(decision(d));
        }
    }
}

fn decode_txn(tag: u8, r: &mut Reader<'_>) -> Result<TxnCommand, DecodeError> {
    let txn = TxnId(r.take(16)?.try_into().expect("took 16 bytes"));
    // Every item takes at least 4 bytes, so a count larger than the rest is malformed.
    let count = |r: &mut Reader<'_>| -> Result<usize, DecodeError> {
        let n = r.u32()?;
        if u64::from(n) * 4 > r.0.len() as u64 {
            return Err(DecodeError(format!("{n} items cannot fit")));
        }
        Ok(n as usize)
    };
    let checks = |r: &mut Reader<'_>| -> Result<Vec<Check>, DecodeError> {
        (0..count(r)?).map(|_| Ok(Check { key: r.bytes()?.to_vec(), version: r.u64()? })).collect()
    };
    let writes = |r: &mut Reader<'_>| -> Result<Vec<Write>, DecodeError> {
        (0..count(r)?)
            .map(|_| Ok(Write { key: r.bytes()?.to_vec(), value: r.bytes()?.to_vec() }))
            .collect()
    };
    let decision = |r: &mut Reader<'_>| match r.u8()? {
        1 => Ok(Decision::Commit),
        2 => Ok(Decision::Abort),
        d => Err(DecodeError(format!("unknown decision {d}"))),
    };
    Ok(match tag {
        TAG_TXN_APPLY => {
            let reads =
                (0..count(r)?).map(|_| Ok(r.bytes()?.to_vec())).collect::<Result<_, _>>()?;
            let checks = checks(r)?;
            TxnCommand::Apply { txn, reads, checks, writes: writes(r)? }
        }
        TAG_TXN_BEGIN => {
            let participants =
                (0..count(r)?).map(|_| Ok(ShardId(r.u32()?))).collect::<Result<_, _>>()?;
            TxnCommand::Begin { txn, participants }
        }
        TAG_TXN_DECIDE => {
            let decision = decision(r)?;
            let writes = (0..count(r)?)
                .map(|_| Ok((ShardId(r.u32()?), r.u32()?)))
                .collect::<Result<_, DecodeError>>()?;
            TxnCommand::Decide { txn, decision, writes }
        }
        TAG_TXN_PREPARE => {
            let coordinator = ShardId(r.u32()?);
            let checks = checks(r)?;
            TxnCommand::Prepare { txn, coordinator, checks, writes: writes(r)? }
        }
        TAG_TXN_FINISH => TxnCommand::Finish { txn, decision: decision(r)? },
        t => return Err(DecodeError(format!("unknown command tag {t}"))),
    })
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
        if tag >= TAG_TXN_APPLY {
            commands.push(Command::Txn(decode_txn(tag, r)?));
            continue;
        }
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
                Command::Txn(TxnCommand::Apply {
                    txn: TxnId([1; 16]),
                    reads: vec![b"r".to_vec(), vec![]],
                    checks: vec![Check { key: b"c".to_vec(), version: 7 }],
                    writes: vec![Write { key: b"w".to_vec(), value: vec![0; 3] }],
                }),
                Command::Txn(TxnCommand::Begin {
                    txn: TxnId([2; 16]),
                    participants: vec![ShardId(0), ShardId(9)],
                }),
                Command::Txn(TxnCommand::Decide {
                    txn: TxnId([3; 16]),
                    decision: Decision::Commit,
                    writes: vec![(ShardId(9), 4)],
                }),
                Command::Txn(TxnCommand::Prepare {
                    txn: TxnId([4; 16]),
                    coordinator: ShardId(2),
                    checks: vec![],
                    writes: vec![Write { key: b"p".to_vec(), value: b"v".to_vec() }],
                }),
                Command::Txn(TxnCommand::Finish { txn: TxnId([5; 16]), decision: Decision::Abort }),
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
