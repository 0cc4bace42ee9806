//! The export format (`blockdb-export/v1`) and `audit_export`: exports written with the crate's
//! line writers audit clean, including a large one; any one byte changed, and every structural
//! and trust failure, is refused with its own error; no input makes the audit panic.

mod common;

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use blockdb_verifier::export::{
    AuditReport, CheckpointLine, EXPORT_LINE_LEN_MAX, EntryLine, ExportError, HeaderLine,
    audit_export, checkpoint_line, entry_line, header_line,
};
use blockdb_verifier::{
    Leaf, LeafError, LogIndex, NoteError, PolicyError, ShardId, TreeSize, TrustPolicy, empty_root,
};
use common::{TestLog, other_signer, policy_of, reference, test_signer};
use proptest::prelude::*;

fn trusted() -> TrustPolicy {
    policy_of(&[&test_signer()], 1)
}

fn must_audit(bytes: &[u8], policy: &TrustPolicy) -> AuditReport {
    match audit_export(bytes, policy, &mut |_, _| {}) {
        Ok(report) => report,
        Err(e) => panic!("export should audit clean: {e}"),
    }
}

fn must_fail(bytes: &[u8], policy: &TrustPolicy) -> ExportError {
    match audit_export(bytes, policy, &mut |_, _| {}) {
        Ok(report) => panic!("export should fail, but audited clean: {report:?}"),
        Err(e) => e,
    }
}

/// The export's lines, each with its newline.
fn lines_of(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_owned).collect()
}

/// A small seeded generator (SplitMix64): the tests need no more, and print the seed they use.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The seed of the randomized tests: `BLOCKDB_TEST_SEED` if set, else a fixed one.
fn seed() -> u64 {
    std::env::var("BLOCKDB_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_240_601)
}

#[test]
fn hundred_thousand_entries_audit_clean() {
    // Phase 1: a 100,000-entry export with checkpoints in no particular order, one of the empty
    // tree; roots come from the naive reference implementation, not from the Frontier.
    let start = Instant::now();
    let log = TestLog::new(0, 100_000, vec![test_signer()]);
    let text = log.export(&[100_000, 1, 0, 4096, 65_536, 99_999]);
    let built = start.elapsed();

    // Phase 2: it audits clean, every checkpoint is reported once, by size, with its signer.
    let mut calls = Vec::new();
    let start = Instant::now();
    let report = audit_export(text.as_bytes(), &trusted(), &mut |done, total| {
        calls.push((done, total));
    })
    .expect("audits clean");
    let audited = start.elapsed();
    eprintln!(
        "100,000-entry export: {} MB, built in {built:.2?}, audited in {audited:.2?}",
        text.len() / 1_000_000
    );
    assert_eq!(report.origin, log.origin);
    assert_eq!(report.shard, ShardId(0));
    assert_eq!(report.tree_size, TreeSize(100_000));
    assert_eq!(report.root, reference::root(&log.hashes));
    let sizes: Vec<u64> = report.checkpoints.iter().map(|c| c.checkpoint.size.0).collect();
    assert_eq!(sizes, [0, 1, 4096, 65_536, 99_999, 100_000]);
    let key = test_signer().verifier_key().to_string();
    assert!(report.checkpoints.iter().all(|c| c.signed_by == [key.clone()]));

    // Phase 3: progress every 1000 entries, and once at the end.
    let expected: Vec<(u64, u64)> = (1..=100).map(|k| (k * 1000, 100_000)).collect();
    assert_eq!(calls, expected);
}

#[test]
fn lines_are_byte_exact() {
    // Phase 1: each writer's line, byte for byte.
    let log = TestLog::new(0, 2, vec![test_signer()]);
    let text = log.export(&[2]);
    let lines = lines_of(&text);
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "{\"format\":\"blockdb-export/v1\",\"origin\":\"example.com/blockdb-test/shard/0\",\
         \"shard\":0,\"tree_size\":2}\n"
    );
    let leaf1 = log.leaves[1].encode().expect("encodes");
    assert_eq!(lines[2], format!("{{\"log_index\":1,\"leaf\":\"{}\"}}\n", STANDARD.encode(&leaf1)));
    let note = log.signed(2).to_text();
    let escaped = note.replace('\n', "\\n");
    assert_eq!(lines[3], format!("{{\"checkpoint\":\"{escaped}\"}}\n"));
    assert!(lines[3].contains("\\n\\n\u{2014} example.com/blockdb-test "), "{}", lines[3]);
    assert_eq!(header_line(&log.origin, ShardId(0), TreeSize(2)), lines[0]);
    assert_eq!(entry_line(LogIndex(1), &leaf1), lines[2]);
    assert_eq!(checkpoint_line(&log.signed(2)), lines[3]);

    // Phase 2: the serde types read back what the writers wrote.
    let header: HeaderLine = serde_json::from_str(&lines[0]).expect("header");
    assert_eq!(header.tree_size, TreeSize(2));
    let entry: EntryLine = serde_json::from_str(&lines[2]).expect("entry");
    assert_eq!(STANDARD.decode(entry.leaf).expect("base64"), leaf1);
    let cp: CheckpointLine = serde_json::from_str(&lines[3]).expect("checkpoint");
    assert_eq!(cp.checkpoint, note);

    // Phase 3: the final newline may be left out, and nothing else may be added.
    let report = must_audit(text.as_bytes(), &trusted());
    assert_eq!(report.root, reference::root(&log.hashes));
    must_audit(text.trim_end_matches('\n').as_bytes(), &trusted());
    let err = must_fail(format!("{text}\n").as_bytes(), &trusted());
    assert!(matches!(err, ExportError::Json { line: 5, .. }), "{err}");
    let err = must_fail(format!("{text} ").as_bytes(), &trusted());
    assert!(err.is_malformed(), "{err}");
}

/// Changes `copy[position]` to `value`, audits, and restores it; the audit must fail.
fn assert_change_fails(
    copy: &mut [u8],
    position: usize,
    value: u8,
    policy: &TrustPolicy,
    seed: u64,
) -> bool {
    let original = copy[position];
    assert_ne!(original, value);
    copy[position] = value;
    let result = audit_export(copy, policy, &mut |_, _| {});
    copy[position] = original;
    match result {
        Ok(_) => panic!(
            "byte {position} changed from {original:#04x} to {value:#04x} still audits clean \
             (seed {seed})"
        ),
        Err(e) => e.is_malformed(),
    }
}

#[test]
fn any_one_byte_changed_fails() {
    // An export of 300 entries with checkpoints at 150 and 300.
    let log = TestLog::new(0, 300, vec![test_signer()]);
    let text = log.export(&[300, 150]);
    let policy = trusted();
    let seed = seed();
    let mut rng = Rng(seed);
    let mut copy = text.clone().into_bytes();
    let lines = lines_of(&text);
    let start_of = |line: usize| lines[..line].iter().map(String::len).sum::<usize>();
    let (mut malformed, mut invalid) = (0, 0);
    let mut tally = |is_malformed: bool| {
        if is_malformed { malformed += 1 } else { invalid += 1 }
    };

    // Phase 1: every byte of the header, of entries 0, 150 and 299, and of both checkpoint
    // lines (signatures included), each changed to a byte chosen at random.
    for line in [0, 1, 151, 300, 301, 302] {
        for position in start_of(line)..start_of(line) + lines[line].len() {
            let value = (copy[position] as usize + 1 + rng.below(255)) as u8;
            tally(assert_change_fails(&mut copy, position, value, &policy, seed));
        }
    }

    // Phase 2: a random sample of positions anywhere in the file, to random other bytes, and
    // to bytes that keep the line well-formed JSON more often (digits and base64 letters).
    for _ in 0..400 {
        let position = rng.below(copy.len());
        let value = match rng.below(3) {
            0 => b"0123456789"[rng.below(10)],
            1 => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[rng.below(65)]
            }
            _ => rng.next() as u8,
        };
        if value != copy[position] {
            tally(assert_change_fails(&mut copy, position, value, &policy, seed));
        }
    }
    eprintln!(
        "one-byte changes refused: {malformed} malformed (exit 2), {invalid} invalid (exit 1)"
    );
    assert!(malformed > 0 && invalid > 0, "both kinds of failure are exercised");
}

/// A 50-entry log of shard 0 with checkpoints at 20 and 50, and its export's lines.
fn small() -> (TestLog, Vec<String>) {
    let log = TestLog::new(0, 50, vec![test_signer()]);
    let lines = lines_of(&log.export(&[20, 50]));
    (log, lines)
}

/// Line `line` (0-based, the header being 0) replaced by `with`.
fn replaced(lines: &[String], line: usize, with: &str) -> String {
    let mut l = lines.to_vec();
    l[line] = with.to_owned();
    l.concat()
}

#[test]
fn entries_missing_extra_or_out_of_order() {
    let (log, lines) = small();
    let policy = trusted();

    // Phase 1: a missing entry, a missing last entry, an extra one, one after the checkpoints.
    let err = must_fail(replaced(&lines, 11, "").as_bytes(), &policy);
    assert_eq!(err, ExportError::EntryCount { tree_size: TreeSize(50), entries: 49 });
    assert!(err.is_malformed());
    let err = must_fail(replaced(&lines, 50, "").as_bytes(), &policy);
    assert_eq!(err, ExportError::EntryCount { tree_size: TreeSize(50), entries: 49 });
    let doubled = format!("{}{}", lines[50], lines[50]);
    let err = must_fail(replaced(&lines, 50, &doubled).as_bytes(), &policy);
    assert_eq!(err, ExportError::EntryCount { tree_size: TreeSize(50), entries: 51 });
    let err = must_fail(format!("{}{}", lines.concat(), lines[5]).as_bytes(), &policy);
    assert_eq!(err, ExportError::EntryAfterCheckpoint { line: 54 });

    // Phase 2: two entries swapped; an entry line whose leaf is of another position.
    let mut swapped = lines.clone();
    swapped.swap(11, 12);
    let err = must_fail(swapped.concat().as_bytes(), &policy);
    assert_eq!(
        err,
        ExportError::EntryIndex { line: 12, expected: LogIndex(10), got: LogIndex(11) }
    );
    assert!(!err.is_malformed() && !err.is_fork());
    let leaf11 = log.leaves[11].encode().expect("encodes");
    let err =
        must_fail(replaced(&lines, 11, &entry_line(LogIndex(10), &leaf11)).as_bytes(), &policy);
    assert_eq!(err, ExportError::LeafIndex { line: 12, expected: LogIndex(10), got: LogIndex(11) });

    // Phase 3: a leaf of another shard, and a header of another shard than its origin's.
    let other = Leaf { shard: ShardId(1), ..log.leaves[7].clone() };
    let line = entry_line(LogIndex(7), &other.encode().expect("encodes"));
    let err = must_fail(replaced(&lines, 8, &line).as_bytes(), &policy);
    assert_eq!(err, ExportError::ShardMismatch { line: 9, expected: ShardId(0), got: ShardId(1) });
    let header = header_line(&log.origin, ShardId(1), TreeSize(50));
    let err = must_fail(replaced(&lines, 0, &header).as_bytes(), &policy);
    assert!(matches!(err, ExportError::OriginShard { shard: ShardId(1), .. }), "{err}");

    // Phase 4: a different, well-formed leaf changes the roots: the smallest size that does not
    // match is named, and it is not a fork (the entries, not the log, may be what changed).
    let other = Leaf { version: 99, ..log.leaves[30].clone() };
    let line = entry_line(LogIndex(30), &other.encode().expect("encodes"));
    let err = must_fail(replaced(&lines, 31, &line).as_bytes(), &policy);
    assert!(matches!(err, ExportError::RootMismatch { line: 53, size: TreeSize(50), .. }), "{err}");
    assert!(!err.is_fork() && !err.is_malformed());
    let other = Leaf { version: 99, ..log.leaves[3].clone() };
    let line = entry_line(LogIndex(3), &other.encode().expect("encodes"));
    let err = must_fail(replaced(&lines, 4, &line).as_bytes(), &policy);
    assert!(matches!(err, ExportError::RootMismatch { line: 52, size: TreeSize(20), .. }), "{err}");
}

#[test]
fn checkpoints_untrusted_foreign_missing_or_forked() {
    let (log, lines) = small();
    let policy = trusted();
    let entries = lines[..51].concat();
    let with = |cps: &[String]| format!("{entries}{}", cps.concat());
    let cp = |c| checkpoint_line(&c);

    // Phase 1: a checkpoint of another shard's log, and of another cluster's.
    let shard1 = TestLog::new(1, 50, vec![test_signer()]);
    let err = must_fail(with(&[cp(log.signed(50)), cp(shard1.signed(50))]).as_bytes(), &policy);
    assert!(
        matches!(&err, ExportError::OriginMismatch { line: 53, got, .. } if got == &shard1.origin)
    );
    let mut elsewhere = log.checkpoint(50);
    elsewhere.origin = "example.org/other/shard/0".to_owned();
    let elsewhere = elsewhere.sign(&[&test_signer()]).expect("signs");
    let err = must_fail(with(&[cp(elsewhere)]).as_bytes(), &policy);
    assert!(matches!(err, ExportError::OriginMismatch { line: 52, .. }), "{err}");

    // Phase 2: signed by a key we do not trust; fewer signatures than the threshold.
    let stranger = other_signer("stranger.example");
    let err = must_fail(lines.concat().as_bytes(), &policy_of(&[&stranger], 1));
    assert_eq!(
        err,
        ExportError::Policy {
            line: 52,
            size: TreeSize(20),
            error: PolicyError::Checkpoint(NoteError::NoKnownSignature.into()),
        }
    );
    assert!(!err.is_malformed() && !err.is_fork());
    let witness = other_signer("witness.example");
    let two = policy_of(&[&test_signer(), &witness], 2);
    let err = must_fail(lines.concat().as_bytes(), &two);
    assert!(matches!(
        err,
        ExportError::Policy { error: PolicyError::NotEnoughSignatures { .. }, .. }
    ));
    let cosigned = TestLog::new(0, 50, vec![test_signer(), other_signer("witness.example")]);
    let report = must_audit(cosigned.export(&[50]).as_bytes(), &two);
    assert_eq!(report.checkpoints[0].signed_by.len(), 2);

    // Phase 3: no checkpoint at tree_size, none at all, one beyond the export.
    let err = must_fail(with(&[cp(log.signed(20))]).as_bytes(), &policy);
    assert_eq!(
        err,
        ExportError::NoCheckpointAtTreeSize { tree_size: TreeSize(50), largest: TreeSize(20) }
    );
    assert!(!err.is_malformed());
    assert_eq!(must_fail(entries.as_bytes(), &policy), ExportError::NoCheckpoints);
    let longer = TestLog::new(0, 51, vec![test_signer()]);
    let err = must_fail(with(&[cp(log.signed(50)), cp(longer.signed(51))]).as_bytes(), &policy);
    assert!(matches!(err, ExportError::CheckpointBeyondExport { line: 53, .. }), "{err}");

    // Phase 4: two trusted checkpoints of one size with two roots are a fork, at tree_size or
    // below it.
    let mut forked = TestLog::new(0, 10, vec![test_signer()]);
    for i in 10..50 {
        forked.append(b"evil", format!("rewrite {i}").as_bytes());
    }
    for size in [50, 20] {
        let cps = [cp(log.signed(50)), cp(log.signed(20)), cp(forked.signed(size))];
        let err = must_fail(with(&cps).as_bytes(), &policy);
        assert!(matches!(err, ExportError::Fork { size: s, .. } if s == TreeSize(size as u64)));
        assert!(err.is_fork() && !err.is_malformed());
        assert!(err.to_string().starts_with("fork: "), "{err}");
    }

    // Phase 5: a smaller trusted checkpoint whose root the entries vouched for by the largest
    // checkpoint do not give: no single log signed both, so it is a fork too.
    let err = must_fail(with(&[cp(log.signed(50)), cp(forked.signed(20))]).as_bytes(), &policy);
    assert!(matches!(err, ExportError::Inconsistent { line: 53, size: TreeSize(20), .. }), "{err}");
    assert!(err.is_fork());
}

#[test]
fn checkpoints_repeated_reordered_or_of_the_empty_tree() {
    let (log, lines) = small();
    let policy = trusted();
    let entries = lines[..51].concat();

    // A repeated note is reported once; different notes of one tree are each reported.
    let witness = other_signer("witness.example");
    let by_witness = log.checkpoint(50).sign(&[&witness]).expect("signs");
    let text = format!(
        "{entries}{}{}{}{}",
        checkpoint_line(&log.signed(50)),
        checkpoint_line(&log.signed(20)),
        checkpoint_line(&log.signed(50)),
        checkpoint_line(&by_witness)
    );
    let report = must_audit(text.as_bytes(), &policy_of(&[&test_signer(), &witness], 1));
    let sizes: Vec<u64> = report.checkpoints.iter().map(|c| c.checkpoint.size.0).collect();
    assert_eq!(sizes, [20, 50, 50]);
    assert!(report.checkpoints[2].signed_by[0].starts_with("witness.example+"));

    // The empty log: no entries, a checkpoint of size 0.
    let empty = TestLog::new(0, 0, vec![test_signer()]);
    let report = must_audit(empty.export(&[0]).as_bytes(), &policy);
    assert_eq!((report.tree_size, report.root), (TreeSize(0), empty_root()));
    let mut calls = Vec::new();
    audit_export(empty.export(&[0]).as_bytes(), &policy, &mut |d, t| calls.push((d, t)))
        .expect("audits");
    assert_eq!(calls, [(0, 0)]);
}

#[test]
fn malformed_files_are_refused_with_their_line() {
    let (log, lines) = small();
    let policy = trusted();
    let fail = |text: &str| {
        let err = must_fail(text.as_bytes(), &policy);
        assert!(err.is_malformed(), "{err} should be malformed");
        err
    };

    // Phase 1: nothing, or no more than a newline.
    assert_eq!(fail(""), ExportError::Empty);
    assert_eq!(fail("\n"), ExportError::Empty);

    // Phase 2: the header.
    let v2 = "{\"format\":\"blockdb-export/v2\",\"origin\":\"o/shard/0\",\"shard\":0,\"tree_size\":0,\
              \"new\":1}\n";
    assert_eq!(fail(v2), ExportError::UnknownFormat("blockdb-export/v2".to_owned()));
    let huge = header_line(&log.origin, ShardId(0), TreeSize(1_000_000_001));
    assert_eq!(fail(&huge), ExportError::TreeSizeTooLarge(1_000_000_001));
    let spaced = lines[0].replace("\"shard\":0", "\"shard\": 0");
    assert_eq!(fail(&replaced(&lines, 0, &spaced)), ExportError::NotCanonical { line: 1 });
    let reordered = format!(
        "{{\"origin\":\"{}\",\"format\":\"blockdb-export/v1\",\"shard\":0,\"tree_size\":50}}\n",
        log.origin
    );
    assert_eq!(fail(&replaced(&lines, 0, &reordered)), ExportError::NotCanonical { line: 1 });
    let err = fail(&lines[0].replace("}\n", ",\"extra\":true}\n"));
    assert!(err.to_string().contains("unknown field `extra`"), "{err}");

    // Phase 3: entry lines: CRLF, unknown or repeated fields, bad base64, a leaf that does not
    // decode, a line too long.
    let crlf = lines[3].replace('\n', "\r\n");
    assert_eq!(fail(&replaced(&lines, 3, &crlf)), ExportError::NotCanonical { line: 4 });
    let extra = lines[3].replace("}\n", ",\"extra\":1}\n");
    let err = fail(&replaced(&lines, 3, &extra));
    assert!(
        matches!(&err, ExportError::Json { line: 4, error, .. } if error.contains("unknown field"))
    );
    let repeated = lines[3].replace("}\n", ",\"log_index\":2}\n");
    let err = fail(&replaced(&lines, 3, &repeated));
    assert!(err.to_string().contains("duplicate field"), "{err}");
    // A key one byte longer makes a leaf whose base64 ends in "==".
    let leaf2 = Leaf { key: b"key-2x".to_vec(), ..log.leaves[2].clone() };
    let padded = STANDARD.encode(leaf2.encode().expect("encodes"));
    assert!(padded.ends_with("=="), "{padded}");
    let unpadded = format!("{{\"log_index\":2,\"leaf\":\"{}\"}}\n", padded.trim_end_matches('='));
    assert_eq!(fail(&replaced(&lines, 3, &unpadded)), ExportError::Base64 { line: 4 });
    // The last character before "==" carries 2 bits of the leaf and 4 that must be zero.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut trailing_bits = padded.clone().into_bytes();
    let last = trailing_bits.len() - 3;
    let digit = ALPHABET.iter().position(|&c| c == trailing_bits[last]).expect("base64 digit");
    trailing_bits[last] = ALPHABET[digit ^ 1];
    let trailing_bits = String::from_utf8(trailing_bits).expect("ascii");
    let line = format!("{{\"log_index\":2,\"leaf\":\"{trailing_bits}\"}}\n");
    assert_eq!(fail(&replaced(&lines, 3, &line)), ExportError::Base64 { line: 4 });
    let junk = entry_line(LogIndex(2), b"junk");
    assert_eq!(
        fail(&replaced(&lines, 3, &junk)),
        ExportError::Leaf { line: 4, error: LeafError::UnknownFormat(b'j') }
    );
    let long = format!("{{\"log_index\":2,\"leaf\":\"{}\"}}\n", "A".repeat(EXPORT_LINE_LEN_MAX));
    assert!(matches!(fail(&replaced(&lines, 3, &long)), ExportError::LineTooLong { line: 4, .. }));

    // Phase 4: checkpoint lines: a note that is not a checkpoint, unknown fields, a bad line
    // where an entry belongs.
    let note =
        serde_json::to_string(&CheckpointLine { checkpoint: "hello\n".to_owned() }).expect("json");
    let err = fail(&replaced(&lines, 51, &format!("{note}\n")));
    assert!(matches!(err, ExportError::Checkpoint { line: 52, .. }), "{err}");
    let extra = lines[52].replace("\"}\n", "\",\"by\":\"me\"}\n");
    assert!(matches!(fail(&replaced(&lines, 52, &extra)), ExportError::Json { line: 53, .. }));
    let err = fail(&replaced(&lines, 5, "{\"leaf\":\"\"}\n"));
    assert!(
        matches!(&err, ExportError::Json { line: 6, expected, .. } if *expected == "an entry line")
    );
    let err = fail(&replaced(&lines, 5, "\n"));
    assert!(matches!(err, ExportError::Json { line: 6, .. }), "{err}");
}

/// A valid 12-entry export, to mutate.
fn tiny_export() -> String {
    TestLog::new(0, 12, vec![test_signer()]).export(&[5, 12])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = audit_export(&bytes, &trusted(), &mut |_, _| {});
    }

    /// Edits of a valid export: a changed, inserted or deleted byte, or a truncation. None
    /// panics, and only dropping the final newline leaves an export that audits clean.
    #[test]
    fn edited_exports_never_panic(edits in proptest::collection::vec(
        (0..4u8, any::<proptest::sample::Index>(), any::<u8>()), 1..4,
    )) {
        let original = tiny_export().into_bytes();
        let mut bytes = original.clone();
        for (kind, at, value) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = value,
                1 => bytes.insert(i, value),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        if audit_export(&bytes, &trusted(), &mut |_, _| {}).is_ok() {
            prop_assert!(
                bytes == original || bytes == original[..original.len() - 1],
                "an edited export audits clean: {:?}", String::from_utf8_lossy(&bytes)
            );
        }
    }

    /// Lines of a valid export dropped, repeated and reordered never panic; whatever audits clean
    /// has the original header and entries (only the checkpoints' order is free).
    #[test]
    fn shuffled_lines_never_panic(picks in proptest::collection::vec(0..15usize, 0..20)) {
        let lines = lines_of(&tiny_export());
        let text: String = picks.iter().map(|&i| lines[i].as_str()).collect();
        if audit_export(text.as_bytes(), &trusted(), &mut |_, _| {}).is_ok() {
            prop_assert!(text.starts_with(&lines[..13].concat()), "{text}");
        }
    }
}
