//! Integrity framing for bytes we hand to V8's deserialisers.
//!
//! V8 checks a code cache's or snapshot's header, but in release builds it
//! does not verify the payload checksum (`--verify-snapshot-checksum` is off),
//! so flipped bytes in the middle can crash the process. Every code cache and
//! snapshot polyracer produces is therefore wrapped in a small header with a
//! CRC-32 of the payload, the V8 version and the engine's flags, and checked
//! before V8 sees it.

use crate::error::{Error, Result};

/// magic, format, engine fingerprint, V8 cache tag, subject, length, CRC.
pub(crate) const HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8 + 8 + 4;

/// What the bytes are for; a code cache is not accepted as a snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    CodeCache,
    Snapshot,
}

impl Kind {
    fn magic(self) -> &'static [u8; 4] {
        match self {
            Kind::CodeCache => b"PRCC",
            Kind::Snapshot => b"PRSN",
        }
    }
}

/// The framing format version; bump when the layout changes.
const FORMAT: u32 = 1;

/// A fingerprint of what must match between producer and consumer: the V8
/// version and the flags V8 was started with (flags change code and heap
/// layout).
pub(crate) fn fingerprint() -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(v8::V8::get_version().as_bytes());
    if let Some(opts) = crate::engine::options() {
        let mut flags = opts.flags.clone();
        flags.sort();
        for f in flags {
            h.update(f.as_bytes());
            h.update(b"\0");
        }
        h.update(&[u8::from(opts.single_threaded)]);
    }
    h.finalize()
}

/// What a code cache was made from: V8 checks little more than the source
/// length, so a cache for another source of the same length would run the
/// wrong code. Snapshots use 0.
pub(crate) fn subject(source: &str) -> u64 {
    ((source.len() as u64) << 32) | u64::from(crc32fast::hash(source.as_bytes()))
}

pub(crate) fn wrap(kind: Kind, subject: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(kind.magic());
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&fingerprint().to_le_bytes());
    out.extend_from_slice(&v8::script_compiler::cached_data_version_tag().to_le_bytes());
    out.extend_from_slice(&subject.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why framed bytes were refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    NotOurs,
    OtherFormat,
    OtherEngine,
    OtherSource,
    Corrupt,
}

impl Refused {
    pub(crate) fn describe(&self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Refused::NotOurs, Kind::Snapshot) => "these bytes are not a polyracer snapshot",
            (Refused::NotOurs, Kind::CodeCache) => "these bytes are not a polyracer code cache",
            (Refused::OtherFormat, _) => "made by an incompatible polyracer version",
            (Refused::OtherEngine, _) => "made by a different V8 version or with different V8 flags",
            (Refused::OtherSource, _) => "made from a different source",
            (Refused::Corrupt, _) => "corrupt: length or checksum mismatch",
        }
    }
}

/// Checks the header and checksum and returns the payload.
pub(crate) fn unwrap(kind: Kind, subject: u64, bytes: &[u8]) -> Result<&[u8], Refused> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != kind.magic() {
        return Err(Refused::NotOurs);
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    if u32_at(4) != FORMAT {
        return Err(Refused::OtherFormat);
    }
    if u32_at(8) != fingerprint() || u32_at(12) != v8::script_compiler::cached_data_version_tag() {
        return Err(Refused::OtherEngine);
    }
    if u64::from_le_bytes(bytes[16..24].try_into().unwrap()) != subject {
        return Err(Refused::OtherSource);
    }
    let len = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len || crc32fast::hash(payload) != u32_at(32) {
        return Err(Refused::Corrupt);
    }
    Ok(payload)
}

pub(crate) fn snapshot_payload(bytes: &[u8]) -> Result<&[u8]> {
    unwrap(Kind::Snapshot, 0, bytes)
        .map_err(|r| Error::InvalidArgument(format!("snapshot refused: {}", r.describe(Kind::Snapshot))))
}
