//! Snapshot files: a shard's whole state at one applied Raft index, as one file that is built by
//! streaming a storage-engine snapshot to disk, sent to followers in chunks, and installed by
//! streaming it back into the engine. Memory use is bounded by a write batch, not by the
//! shard's size.
//!
//! A shard's files live in `snapshots/shard-<s>/` of the data directory, named by the last Raft
//! index they cover (`<index, 20 digits>.snap`); only the newest is kept. Files being built or
//! received are `*.tmp` until they are complete, fsynced and renamed.
//!
//! Format (big-endian integers):
//!
//! | field   | encoding                                                                 |
//! |---------|--------------------------------------------------------------------------|
//! | magic   | `BDBSNAP1` (8 bytes)                                                     |
//! | meta    | u32 length, then openraft's `SnapshotMeta` as JSON                       |
//! | pairs   | per key: u8 `1`, u32 key length, key, u32 value length, value            |
//! | end     | u8 `0`, u64 number of pairs                                              |
//! | digest  | SHA-256 of every byte before it (32 bytes)                               |
//!
//! A received file is read through once to check its digest, its structure and that every key
//! belongs to the shard before anything is installed; a file that fails is refused whole.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use openraft::{BasicNode, SnapshotMeta};
use sha2::{Digest as _, Sha256};

use crate::raft::NodeId;

const MAGIC: &[u8; 8] = b"BDBSNAP1";
const TAG_PAIR: u8 = 1;
const TAG_END: u8 = 0;
/// Longest metadata accepted (a membership of a few nodes is far below).
const META_LEN_MAX: u32 = 1 << 20;
/// Longest key or value accepted.
const ITEM_LEN_MAX: u32 = 256 << 20;

/// Why a snapshot file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// An I/O error.
    #[error("snapshot file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid snapshot of this shard.
    #[error("snapshot file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The snapshot directory of one shard.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    dir: PathBuf,
}

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

impl SnapshotDir {
    /// The directory `dir`, created if missing; stale temporary files in it are removed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(dir: impl Into<PathBuf>) -> Result<SnapshotDir, SnapshotFileError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(SnapshotDir { dir })
    }

    /// Where the complete snapshot covering up to `index` is kept.
    pub fn path_of(&self, meta: &Meta) -> PathBuf {
        let index = meta.last_log_id.map_or(0, |l| l.index);
        self.dir.join(format!("{index:020}.snap"))
    }

    /// A new temporary file's path.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.dir.join(format!("{what}-{nanos}.tmp"))
    }

    /// The newest complete snapshot, if any.
    ///
    /// # Errors
    /// I/O errors, or a malformed header.
    pub fn latest(&self) -> Result<Option<(Meta, PathBuf)>, SnapshotFileError> {
        let mut best: Option<PathBuf> = None;
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "snap")
                && best.as_ref().is_none_or(|b| path > *b)
            {
                best = Some(path);
            }
        }
        match best {
            None => Ok(None),
            Some(path) => {
                let mut r = BufReader::new(File::open(&path).map_err(io(&path))?);
                let meta = read_header(&mut r, &path, &mut Sha256::new())?;
                Ok(Some((meta, path)))
            }
        }
    }

    /// Removes every complete snapshot older than `keep`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn remove_older(&self, keep: &Path) -> Result<(), SnapshotFileError> {
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "snap") && path.as_path() < keep {
                // A reader (a follower being sent this snapshot) keeps its open handle.
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// Writes a snapshot of `meta` with `pairs` (in key order), fsyncs it and moves it into
    /// place; returns its path.
    ///
    /// # Errors
    /// I/O errors, and any error `pairs` yields.
    pub fn write<E: std::error::Error + Send + Sync + 'static>(
        &self,
        meta: &Meta,
        pairs: impl Iterator<Item = Result<Pair, E>>,
    ) -> Result<PathBuf, SnapshotFileError> {
        let tmp = self.temp_path("build");
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut w =
            HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hash: Sha256::new() };
        let result = (|| {
            let json = serde_json::to_vec(meta).expect("snapshot metadata serializes to JSON");
            w.write_all(MAGIC)?;
            w.write_all(&(json.len() as u32).to_be_bytes())?;
            w.write_all(&json)?;
            let mut count = 0u64;
            for pair in pairs {
                let (k, v) = pair.map_err(std::io::Error::other)?;
                w.write_all(&[TAG_PAIR])?;
                put(&mut w, &k)?;
                put(&mut w, &v)?;
                count += 1;
            }
            w.write_all(&[TAG_END])?;
            w.write_all(&count.to_be_bytes())?;
            let digest = w.hash.clone().finalize();
            w.inner.write_all(&digest)?;
            let file = w.inner.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            return Err(SnapshotFileError::Io { path: tmp, source });
        }
        let path = self.path_of(meta);
        self.commit(&tmp, &path)?;
        Ok(path)
    }

    /// Moves the complete, fsynced file `tmp` to `path` durably.
    ///
    /// # Errors
    /// I/O errors.
    pub fn commit(&self, tmp: &Path, path: &Path) -> Result<(), SnapshotFileError> {
        fs::rename(tmp, path).map_err(io(path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))
    }
}

/// Reads the snapshot at `path` through, checking its digest, its structure and `key_ok` on
/// every key; returns its metadata and number of pairs.
///
/// # Errors
/// [`SnapshotFileError::Malformed`] for any defect.
pub fn verify(
    path: &Path,
    key_ok: impl Fn(&[u8]) -> bool,
) -> Result<(Meta, u64), SnapshotFileError> {
    let mut hash = Sha256::new();
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io(path))?);
    let meta = read_header(&mut r, path, &mut hash)?;
    let mut count = 0u64;
    loop {
        match read_pair(&mut r, path, &mut hash)? {
            Item::Pair(k, _) => {
                if !key_ok(&k) {
                    return Err(malformed(path, "a key outside the shard"));
                }
                count += 1;
            }
            Item::End(n) => {
                if n != count {
                    return Err(malformed(path, &format!("{count} pairs, the end says {n}")));
                }
                break;
            }
        }
    }
    let mut digest = [0u8; 32];
    r.read_exact(&mut digest).map_err(|_| malformed(path, "no digest"))?;
    if digest[..] != hash.finalize()[..] {
        return Err(malformed(path, "the digest does not match the content"));
    }
    if r.read(&mut [0u8; 1]).map_err(io(path))? != 0 {
        return Err(malformed(path, "bytes after the digest"));
    }
    Ok((meta, count))
}

/// The pairs of a snapshot file already checked by [`verify`], in order.
///
/// # Errors
/// I/O errors.
pub fn pairs(
    path: &Path,
) -> Result<impl Iterator<Item = Result<Pair, SnapshotFileError>>, SnapshotFileError> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io(path))?);
    let mut hash = Sha256::new();
    read_header(&mut r, path, &mut hash)?;
    let path = path.to_owned();
    let mut done = false;
    Ok(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match read_pair(&mut r, &path, &mut hash) {
            Ok(Item::Pair(k, v)) => Some(Ok((k, v))),
            Ok(Item::End(_)) => {
                done = true;
                None
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    }))
}

enum Item {
    Pair(Vec<u8>, Vec<u8>),
    End(u64),
}

fn read_header(
    r: &mut impl Read,
    path: &Path,
    hash: &mut Sha256,
) -> Result<Meta, SnapshotFileError> {
    let mut magic = [0u8; 8];
    read(r, &mut magic, path, hash)?;
    if &magic != MAGIC {
        return Err(malformed(path, "not a BlockDB snapshot"));
    }
    let len = read_u32(r, path, hash)?;
    if len > META_LEN_MAX {
        return Err(malformed(path, "metadata too long"));
    }
    let mut json = vec![0u8; len as usize];
    read(r, &mut json, path, hash)?;
    serde_json::from_slice(&json).map_err(|e| malformed(path, &format!("metadata: {e}")))
}

fn read_pair(r: &mut impl Read, path: &Path, hash: &mut Sha256) -> Result<Item, SnapshotFileError> {
    let mut tag = [0u8; 1];
    read(r, &mut tag, path, hash)?;
    match tag[0] {
        TAG_PAIR => {
            let k = read_item(r, path, hash)?;
            let v = read_item(r, path, hash)?;
            Ok(Item::Pair(k, v))
        }
        TAG_END => {
            let mut n = [0u8; 8];
            read(r, &mut n, path, hash)?;
            Ok(Item::End(u64::from_be_bytes(n)))
        }
        t => Err(malformed(path, &format!("unknown tag {t}"))),
    }
}

fn read_item(
    r: &mut impl Read,
    path: &Path,
    hash: &mut Sha256,
) -> Result<Vec<u8>, SnapshotFileError> {
    let len = read_u32(r, path, hash)?;
    if len > ITEM_LEN_MAX {
        return Err(malformed(path, "an item is too long"));
    }
    let mut out = vec![0u8; len as usize];
    read(r, &mut out, path, hash)?;
    Ok(out)
}

fn read_u32(r: &mut impl Read, path: &Path, hash: &mut Sha256) -> Result<u32, SnapshotFileError> {
    let mut b = [0u8; 4];
    read(r, &mut b, path, hash)?;
    Ok(u32::from_be_bytes(b))
}

fn read(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
    hash: &mut Sha256,
) -> Result<(), SnapshotFileError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => malformed(path, "cut short"),
        _ => SnapshotFileError::Io { path: path.to_owned(), source: e },
    })?;
    hash.update(&*buf);
    Ok(())
}

fn put(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("item over 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SnapshotFileError + '_ {
    move |source| SnapshotFileError::Io { path: path.to_owned(), source }
}

fn malformed(path: &Path, reason: &str) -> SnapshotFileError {
    SnapshotFileError::Malformed { path: path.to_owned(), reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};

    use super::*;

    fn meta(index: u64) -> Meta {
        let members = std::collections::BTreeMap::from([(1, BasicNode::new("127.0.0.1:1"))]);
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), index)),
            last_membership: StoredMembership::new(
                None,
                Membership::new(vec![[1u64].into_iter().collect()], members),
            ),
            snapshot_id: format!("0-{index}"),
        }
    }

    fn sample() -> Vec<Result<Pair, std::io::Error>> {
        (0..1000u32)
            .map(|i| Ok((i.to_be_bytes().to_vec(), vec![i as u8; (i % 50) as usize])))
            .collect()
    }

    #[test]
    fn a_snapshot_round_trips_and_only_the_newest_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("s")).unwrap();
        let old = dir.write(&meta(10), sample().into_iter()).unwrap();
        let path = dir.write(&meta(200), sample().into_iter()).unwrap();
        let (m, n) = verify(&path, |_| true).unwrap();
        assert_eq!((m, n), (meta(200), 1000));
        let back: Vec<_> = pairs(&path).unwrap().map(Result::unwrap).collect();
        let want: Vec<_> = sample().into_iter().map(Result::unwrap).collect();
        assert_eq!(back, want);
        assert_eq!(dir.latest().unwrap().unwrap(), (meta(200), path.clone()));
        dir.remove_older(&path).unwrap();
        assert!(!old.exists() && path.exists());
        assert!(verify(&path, |k| k != 7u32.to_be_bytes()).is_err(), "a key outside the shard");
    }

    #[test]
    fn every_flipped_or_cut_byte_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path()).unwrap();
        let few: Vec<Result<_, std::io::Error>> = vec![Ok((b"k".to_vec(), b"v".to_vec()))];
        let path = dir.write(&meta(3), few.into_iter()).unwrap();
        let bytes = fs::read(&path).unwrap();
        let bad = tmp.path().join("bad");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            fs::write(&bad, &b).unwrap();
            assert!(verify(&bad, |_| true).is_err(), "flip at {i}");
            fs::write(&bad, &bytes[..i]).unwrap();
            assert!(verify(&bad, |_| true).is_err(), "cut at {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        fs::write(&bad, &longer).unwrap();
        assert!(verify(&bad, |_| true).is_err());
    }

    #[test]
    fn temporary_files_are_cleared_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("recv-1.tmp"), b"half").unwrap();
        SnapshotDir::open(tmp.path()).unwrap();
        assert!(!tmp.path().join("recv-1.tmp").exists());
    }
}
