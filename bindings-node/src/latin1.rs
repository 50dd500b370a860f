//! The Latin-1 text of a sandbox → Node tape: where each Latin-1 string
//! `decode` makes lies, and the Node strings it slices them from.
//!
//! `decode` sees one text, read front to back, and gets it as chunks (Node
//! strings) with the offset where each ends. That text is made of pieces
//! of two kinds: ranges of V8's serialized form of the value (the wire,
//! see `Sink::begin_wire`), whose strings are used where they lie, tags and
//! lengths between them included, instead of being copied out one by one
//! first; and ranges of `own`, text copied here because it is nowhere else
//! (strings from the walk, keys written from numbers). With the runs of
//! `Sink::latin1_strings`, this took 57k strings (1.1 MB) out from
//! 5.19–5.45 to 4.50–4.80 ms a call, median (isolated-vm: 4.47–4.69; the
//! old and new addons in one process, timed in turns).
//!
//! Pieces are cut at string boundaries into chunks of about
//! [`LATIN1_CHUNK`] bytes, or, past [`LARGE_TEXT`], of an eighth of the
//! text before them; not made as one string. V8 makes a string over
//! 128 KiB in fresh memory of its own (the first touch of every page was
//! 14% of taking 0.3 MB of strings out), while a smaller one is made in
//! the young generation, whose collections copy it for as long as it
//! lives: the growing chunks of megabytes of text are made in V8's
//! large-object space, which is not copied. And a string sliced from a
//! chunk keeps only that chunk alive. From 1 MiB of text an eighth is past
//! 128 KiB, the large-object size: with the growing chunks starting at
//! 4 MiB instead, 57k strings (1.1 MB) out took 4.0–4.5 ms against
//! isolated-vm's 2.9–4.0, then 2.8 against 2.7–2.8 (timed in turns); 100k
//! strings 10.1–11.8 ms → 7.6–7.8 (isolated-vm 6.1–7.4).

use std::ptr;

use crate::raw::{self, napi_call, Env, Val};

const LATIN1_CHUNK: usize = 32 << 10;
const LARGE_TEXT: usize = 1 << 20;

/// The most bytes between two strings of the wire that one piece spans
/// (tags and lengths, a record's numbers and keys seen before): they are
/// copied along, in the chunk's one copy, and kept alive by the strings
/// sliced from it. Past it, the next string begins a piece of its own.
/// 1 MB of records out (6k records, ~45 bytes between their strings),
/// before and after the wire's pieces and runs: 17.0 / 24.4 → 14.9 / 21.1
/// ms in two runs each of `bench_data.js` (isolated-vm in the same runs:
/// 18.2 / 30.7, then 19.8 / 22.9).
const MAX_GAP: usize = 64;

/// Pieces shorter than this are copied together into one chunk; longer
/// ones are made into chunks of their own, from where they lie.
const DIRECT: usize = 4 << 10;

/// A range of the wire or of `own`, next in the text.
#[derive(Clone, Copy)]
struct Piece {
    wire: bool,
    from: usize,
    to: usize,
}

#[derive(Default)]
pub struct Latin1Text {
    own: Vec<u8>,
    /// Pieces not yet made into chunks.
    pieces: Vec<Piece>,
    /// Short pieces copied together (see [`DIRECT`]).
    staged: Vec<u8>,
    /// Chunks made (Node strings) and where each ends in the text.
    chunks: Vec<Val>,
    ends: Vec<f64>,
    /// The text's length so far.
    len: usize,
    /// Where the wire is while its events come (its address only: its
    /// bytes are read in `end_wire`, from the slice given there).
    wire: Option<(usize, usize)>,
}

/// A `Latin1Text`'s buffers, kept for the next one on the thread (see
/// `tape::Spare`).
#[derive(Default)]
pub struct Spare {
    pub own: Vec<u8>,
    pub staged: Vec<u8>,
    pub ends: Vec<f64>,
}

impl Latin1Text {
    pub fn new(spare: Spare) -> Latin1Text {
        Latin1Text { own: spare.own, staged: spare.staged, ends: spare.ends, ..Default::default() }
    }

    /// The buffers, for `tape::Spare`.
    pub fn spare(&mut self) -> Spare {
        Spare {
            own: std::mem::take(&mut self.own),
            staged: std::mem::take(&mut self.staged),
            ends: std::mem::take(&mut self.ends),
        }
    }

    /// Adds `b`; returns where it starts and ends in the text.
    #[inline]
    pub fn push(&mut self, b: &[u8]) -> (usize, usize) {
        let start = self.len;
        if b.is_empty() {
            return (start, start);
        }
        let at = b.as_ptr() as usize;
        let (wire, from) = match self.wire {
            Some((w, n)) if at >= w && at + b.len() <= w + n => (true, at - w),
            _ => {
                self.own.extend_from_slice(b);
                (false, self.own.len() - b.len())
            }
        };
        let limit = if self.len < LARGE_TEXT { LATIN1_CHUNK } else { self.len / 8 };
        match self.pieces.last_mut() {
            Some(p) if p.wire == wire && from >= p.to && from - p.to <= MAX_GAP && p.to - p.from < limit => {
                // The bytes between the two strings come along.
                self.len += from - p.to;
                p.to = from + b.len();
            }
            _ => self.pieces.push(Piece { wire, from, to: from + b.len() }),
        }
        let start = self.len;
        self.len += b.len();
        (start, self.len)
    }

    /// Adds each of `items`, and where each starts and ends to `out`.
    pub fn push_all(&mut self, items: &[&[u8]], out: &mut Vec<f64>) {
        out.reserve(2 * items.len());
        let mut i = 0;
        while i < items.len() {
            i += self.extend_wire_piece(&items[i..], out);
            if let Some(b) = items.get(i) {
                let (start, end) = self.push(b);
                out.push(start as f64);
                out.push(end as f64);
                i += 1;
            }
        }
    }

    /// `push` for as many of `items` as continue the last piece, if it
    /// is of the wire (an array's strings, one after another in it): how
    /// many that was.
    fn extend_wire_piece(&mut self, items: &[&[u8]], out: &mut Vec<f64>) -> usize {
        let (Some((w, n)), Some(p)) = (self.wire, self.pieces.last_mut()) else {
            return 0;
        };
        if !p.wire {
            return 0;
        }
        let limit = if self.len < LARGE_TEXT { LATIN1_CHUNK } else { self.len / 8 };
        let (mut to, mut len) = (p.to, self.len);
        let mut taken = 0;
        for b in items {
            let at = b.as_ptr() as usize;
            if b.is_empty() || at < w + to || at + b.len() > w + n || at - (w + to) > MAX_GAP || to - p.from >= limit {
                break;
            }
            len += at - (w + to);
            out.push(len as f64);
            len += b.len();
            out.push(len as f64);
            to = at - w + b.len();
            taken += 1;
        }
        p.to = to;
        self.len = len;
        taken
    }

    /// Strings given from here to `end_wire` may lie in `wire`.
    pub fn begin_wire(&mut self, wire: &[u8]) {
        self.wire = Some((wire.as_ptr() as usize, wire.len()));
    }

    /// Makes the chunks of the text so far, while `wire` is alive.
    pub fn end_wire(&mut self, e: Env, wire: &[u8]) -> napi::Result<()> {
        self.wire = None;
        self.make(e, wire)
    }

    /// The chunks (a JS array) and where each ends in the text.
    pub fn finish(&mut self, e: Env) -> napi::Result<(Val, &[f64])> {
        self.make(e, &[])?;
        if self.chunks.is_empty() {
            // `decode` looks for a chunk even for an empty string.
            new_chunk(e, &[], &mut self.chunks, &mut self.ends)?;
        }
        let arr = raw::array(e, self.chunks.len())?;
        for (i, &c) in self.chunks.iter().enumerate() {
            raw::set_element(e, arr, i as u32, c)?;
        }
        Ok((arr, &self.ends))
    }

    /// Forgets everything given.
    pub fn clear(&mut self) {
        self.own.clear();
        self.pieces.clear();
        self.staged.clear();
        self.chunks.clear();
        self.ends.clear();
        self.len = 0;
        self.wire = None;
    }

    /// Makes the pending pieces into chunks (`wire`: the wire, if any of
    /// them lies in it).
    fn make(&mut self, e: Env, wire: &[u8]) -> napi::Result<()> {
        for p in self.pieces.drain(..) {
            let src = if p.wire { wire } else { &self.own };
            let Some(text) = src.get(p.from..p.to) else {
                return Err(napi::Error::from_reason("polyracer: text outside the wire"));
            };
            if text.len() >= DIRECT {
                if !self.staged.is_empty() {
                    new_chunk(e, &self.staged, &mut self.chunks, &mut self.ends)?;
                    self.staged.clear();
                }
                new_chunk(e, text, &mut self.chunks, &mut self.ends)?;
                continue;
            }
            self.staged.extend_from_slice(text);
            let end = self.ends.last().map_or(0, |&x| x as usize) + self.staged.len();
            if self.staged.len() >= if end < LARGE_TEXT { LATIN1_CHUNK } else { end / 8 } {
                new_chunk(e, &self.staged, &mut self.chunks, &mut self.ends)?;
                self.staged.clear();
            }
        }
        if !self.staged.is_empty() {
            new_chunk(e, &self.staged, &mut self.chunks, &mut self.ends)?;
            self.staged.clear();
        }
        Ok(())
    }
}

/// A Node string of `text`, the next chunk.
fn new_chunk(e: Env, text: &[u8], chunks: &mut Vec<Val>, ends: &mut Vec<f64>) -> napi::Result<()> {
    let mut s = ptr::null_mut();
    napi_call!(napi_create_string_latin1(e, text.as_ptr().cast(), text.len() as isize, &mut s))?;
    let end = ends.last().map_or(0.0, |&x| x) + text.len() as f64;
    chunks.push(s);
    ends.push(end);
    Ok(())
}
