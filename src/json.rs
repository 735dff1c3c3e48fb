//! kwire's JSON output, written by hand for speed. Every JSON form kwire
//! prints (an exchange of `read --json` and `live --json`, a frame of
//! `decode --json`, the TUI's export, a record set) is described once, as a
//! function that walks the decoded data and calls a [`JsonSink`]; the sink
//! decides what becomes of it. [`JsonWriter`] writes compact JSON text
//! straight into a buffer it passes on to a stream every
//! [`JsonWriter::FLUSH_AT`] bytes (so output is never held whole), with
//! escaping checked a block of bytes at a time and integers and hex written
//! without the formatting machinery; [`ValueBuilder`] builds a
//! `serde_json::Value` for the callers that want one (the text tree, the
//! TUI, the conformance runner, `Serialize`). Both agree by construction,
//! and the text is byte for byte what `serde_json`'s compact serializer
//! writes for the same value (floats go through its own formatter).

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::io;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde_json::ser::Formatter as _;
use serde_json::{Map, Value as Json};

/// Receives a JSON document as a stream of events: containers opened and
/// closed, keys, scalars. Keys are given before each value of an object;
/// separators are the sink's business.
pub trait JsonSink {
    /// Whether the sink keeps anything: a walk that describes values only
    /// when asked to may skip the work for one that does not ([`Discard`]).
    const KEEPS: bool = true;
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    fn key(&mut self, name: &str);
    /// A key known when kwire is built; see the crate's `key!` macro.
    fn known_key(&mut self, key: Key) {
        self.key(key.name());
    }
    fn str(&mut self, text: &str);
    /// A string of bytes that [`is_plain`]: nothing to check or escape.
    fn plain_str(&mut self, text: &[u8]);
    fn int(&mut self, n: i64);
    fn uint(&mut self, n: u64);
    /// A finite float, or null for NaN and infinities (as `serde_json`).
    fn float(&mut self, x: f64);
    fn bool(&mut self, b: bool);
    fn null(&mut self);
    /// Bytes as a string of lowercase hex digits.
    fn hex(&mut self, bytes: &[u8]);
    /// What `value`'s `Display` writes, as a string.
    fn display(&mut self, value: &dyn Display);
    /// The string `write` appends to the empty one it is given (which a
    /// sink may reuse from one call to the next).
    fn built_str(&mut self, write: &mut dyn FnMut(&mut String)) {
        let mut text = String::new();
        write(&mut text);
        self.str(&text);
    }
    /// Anything `Serialize`, as `serde_json` writes it.
    fn serde<T: Serialize + ?Sized>(&mut self, value: &T);
    /// A whole value already written as JSON text by a [`JsonWriter`].
    fn json_text(&mut self, text: &[u8]);
    /// A point between two values where a streaming sink may pass on what
    /// it holds, so that a large document is not held whole.
    fn checkpoint(&mut self) {}

    /// A string, or null.
    fn opt_str(&mut self, text: Option<&str>) {
        match text {
            Some(text) => self.str(text),
            None => self.null(),
        }
    }
}

/// An object key known when kwire is built, with its JSON text (quoted,
/// and the colon), so that writing it is a copy: no check, no escaping.
/// Made by the crate's `key!` macro.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// `"name":` (the name is what lies between the quotes).
    text: &'static str,
}

impl Key {
    /// `text` must be `name` quoted and followed by a colon, and `name`
    /// must need no escaping; in a constant (as the crate's `key!` macro
    /// makes it), a wrong pair fails the build.
    pub const fn new(name: &'static str, text: &'static str) -> Key {
        let (name_bytes, text_bytes) = (name.as_bytes(), text.as_bytes());
        assert!(text_bytes.len() == name_bytes.len() + 3);
        assert!(text_bytes[0] == b'"');
        let mut at = 0;
        while at < name_bytes.len() {
            assert!(plain(name_bytes[at]) && text_bytes[at + 1] == name_bytes[at]);
            at += 1;
        }
        assert!(text_bytes[at + 1] == b'"' && text_bytes[at + 2] == b':');
        Key { text }
    }

    pub fn name(self) -> &'static str {
        // The text is ASCII: the quotes and colon are one byte each.
        self.text
            .get(1..self.text.len().saturating_sub(2))
            .unwrap_or_default()
    }

    /// The key for a name known only at run time (a schema field's): its
    /// text is made once per name and kept for the life of the process, so
    /// there are as many as there are distinct names. `None` for a name
    /// that would need escaping.
    pub fn of_name(name: &'static str) -> Option<Key> {
        static TEXTS: Mutex<BTreeMap<&'static str, &'static str>> = Mutex::new(BTreeMap::new());
        if !name.bytes().all(plain) {
            return None;
        }
        let mut texts = TEXTS.lock().unwrap_or_else(PoisonError::into_inner);
        let text = texts
            .entry(name)
            .or_insert_with(|| Box::leak(format!("\"{name}\":").into_boxed_str()));
        Some(Key { text })
    }
}

/// A [`Key`] from a string literal, checked when kwire is built:
/// `w.known_key(key!("offset"))`.
macro_rules! key {
    ($name:literal) => {{
        const KEY: $crate::json::Key = $crate::json::Key::new($name, concat!("\"", $name, "\":"));
        KEY
    }};
}
pub(crate) use key;

/// Compact JSON text: buffered, and passed on to a stream (when it has one)
/// at checkpoints once the buffer holds [`JsonWriter::FLUSH_AT`] bytes.
///
/// Writing into the buffer cannot fail; the first error of the stream is
/// kept, later output is dropped, and the error is returned by
/// [`JsonWriter::end_line`] and [`JsonWriter::flush`].
pub struct JsonWriter<'a> {
    buf: Vec<u8>,
    /// A value was just written: the next key or element needs a comma.
    comma: bool,
    sink: Option<&'a mut dyn io::Write>,
    error: Option<io::Error>,
    /// Reused for `display` and `built_str`.
    scratch: String,
}

impl<'a> JsonWriter<'a> {
    /// Bytes buffered before they are written to the stream.
    pub const FLUSH_AT: usize = 256 * 1024;

    /// A writer passing its text on to `stream`.
    pub fn to_stream(stream: &'a mut dyn io::Write) -> JsonWriter<'a> {
        JsonWriter {
            buf: Vec::with_capacity(Self::FLUSH_AT + Self::FLUSH_AT / 4),
            comma: false,
            sink: Some(stream),
            error: None,
            scratch: String::new(),
        }
    }

    /// A writer keeping all its text, for [`JsonWriter::into_bytes`].
    pub fn in_memory() -> JsonWriter<'static> {
        JsonWriter::in_memory_with_capacity(0)
    }

    /// [`JsonWriter::in_memory`] with room for `capacity` bytes made up
    /// front.
    pub fn in_memory_with_capacity(capacity: usize) -> JsonWriter<'static> {
        JsonWriter::in_buffer(Vec::with_capacity(capacity))
    }

    /// [`JsonWriter::in_memory`], writing after what `buf` holds (and into
    /// its room).
    pub fn in_buffer(buf: Vec<u8>) -> JsonWriter<'static> {
        JsonWriter {
            buf,
            comma: false,
            sink: None,
            error: None,
            scratch: String::new(),
        }
    }

    /// How many bytes the writer holds (not passed on yet).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The text of an in-memory writer (of a stream writer: what it has
    /// not passed on yet).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Ends a line of NDJSON: a newline, then the buffer is passed on if it
    /// is full. Returns the stream's first error, if any.
    pub fn end_line(&mut self) -> io::Result<()> {
        self.buf.push(b'\n');
        self.comma = false;
        self.checkpoint();
        self.take_error()
    }

    /// Writes whole NDJSON lines that another writer made, after what is
    /// buffered. Returns the stream's first error, if any.
    pub fn lines(&mut self, text: &[u8]) -> io::Result<()> {
        self.put_text(text);
        self.checkpoint();
        self.take_error()
    }

    /// Appends finished JSON text: a large one goes to the stream as it
    /// is, after what is buffered, rather than through the buffer.
    fn put_text(&mut self, text: &[u8]) {
        if text.len() < Self::FLUSH_AT / 4 || self.sink.is_none() {
            self.buf.extend_from_slice(text);
            return;
        }
        self.pass_on();
        if let (Some(sink), None) = (self.sink.as_mut(), &self.error) {
            if let Err(error) = sink.write_all(text) {
                self.error = Some(error);
            }
        }
    }

    /// Passes on everything buffered and flushes the stream.
    pub fn flush(&mut self) -> io::Result<()> {
        self.pass_on();
        if let (Some(sink), None) = (self.sink.as_mut(), &self.error) {
            if let Err(error) = sink.flush() {
                self.error = Some(error);
            }
        }
        self.take_error()
    }

    fn take_error(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(error) => {
                // Keep failing: a broken stream stays broken.
                self.error = Some(io::Error::new(error.kind(), error.to_string()));
                Err(error)
            }
            None => Ok(()),
        }
    }

    fn pass_on(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.error.is_none() {
            if let Err(error) = sink.write_all(&self.buf) {
                self.error = Some(error);
            }
        }
        self.buf.clear();
    }

    #[inline]
    fn separate(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    /// Writes a literal that needs no escaping, as a whole value.
    #[inline]
    fn literal(&mut self, text: &[u8]) {
        self.separate();
        self.buf.extend_from_slice(text);
        self.comma = true;
    }
}

impl JsonSink for JsonWriter<'_> {
    #[inline]
    fn begin_object(&mut self) {
        self.separate();
        self.buf.push(b'{');
        self.comma = false;
    }

    #[inline]
    fn end_object(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    #[inline]
    fn begin_array(&mut self) {
        self.separate();
        self.buf.push(b'[');
        self.comma = false;
    }

    #[inline]
    fn end_array(&mut self) {
        self.buf.push(b']');
        self.comma = true;
    }

    #[inline(always)]
    fn key(&mut self, name: &str) {
        self.separate();
        write_string(&mut self.buf, name.as_bytes());
        self.buf.push(b':');
        self.comma = false;
    }

    #[inline(always)]
    fn known_key(&mut self, key: Key) {
        self.separate();
        append(&mut self.buf, key.text.as_bytes());
        self.comma = false;
    }

    #[inline]
    fn str(&mut self, text: &str) {
        self.separate();
        write_string(&mut self.buf, text.as_bytes());
        self.comma = true;
    }

    #[inline]
    fn plain_str(&mut self, text: &[u8]) {
        self.separate();
        write_plain(&mut self.buf, text);
        self.comma = true;
    }

    #[inline]
    fn int(&mut self, n: i64) {
        self.separate();
        write_int(&mut self.buf, n);
        self.comma = true;
    }

    #[inline]
    fn uint(&mut self, n: u64) {
        self.separate();
        write_uint(&mut self.buf, n);
        self.comma = true;
    }

    fn float(&mut self, x: f64) {
        if !x.is_finite() {
            return self.null();
        }
        self.separate();
        // serde_json's own float formatting, so that the text is its text.
        // Writing into a Vec cannot fail.
        let _ = serde_json::ser::CompactFormatter.write_f64(&mut self.buf, x);
        self.comma = true;
    }

    #[inline]
    fn bool(&mut self, b: bool) {
        self.literal(if b { b"true" } else { b"false" });
    }

    #[inline]
    fn null(&mut self) {
        self.literal(b"null");
    }

    fn hex(&mut self, bytes: &[u8]) {
        self.separate();
        self.buf.push(b'"');
        write_hex(&mut self.buf, bytes);
        self.buf.push(b'"');
        self.comma = true;
    }

    fn display(&mut self, value: &dyn Display) {
        self.built_str(&mut |text| {
            let _ = write!(text, "{value}");
        });
    }

    fn built_str(&mut self, write: &mut dyn FnMut(&mut String)) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        write(&mut scratch);
        self.str(&scratch);
        self.scratch = scratch;
    }

    fn serde<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.separate();
        let start = self.buf.len();
        if serde_json::to_writer(&mut self.buf, value).is_err() {
            // As `serde_json::to_value(..).unwrap_or(Null)` would.
            self.buf.truncate(start);
            self.buf.extend_from_slice(b"null");
        }
        self.comma = true;
    }

    fn json_text(&mut self, text: &[u8]) {
        self.separate();
        self.put_text(text);
        self.comma = true;
    }

    #[inline]
    fn checkpoint(&mut self) {
        if self.buf.len() >= Self::FLUSH_AT && self.sink.is_some() {
            self.pass_on();
        }
    }
}

/// Builds a `serde_json::Value` from the events.
#[derive(Default)]
pub struct ValueBuilder {
    /// Open containers, each with the key it will be stored under.
    open: Vec<(Json, Option<String>)>,
    key: Option<String>,
    done: Option<Json>,
}

impl ValueBuilder {
    /// The value built (null if nothing was).
    pub fn finish(self) -> Json {
        self.done.unwrap_or(Json::Null)
    }

    fn put(&mut self, value: Json) {
        match self.open.last_mut() {
            None => self.done = Some(value),
            Some((Json::Object(map), _)) => {
                map.insert(self.key.take().unwrap_or_default(), value);
            }
            Some((Json::Array(items), _)) => items.push(value),
            Some(_) => {}
        }
    }

    fn close(&mut self) {
        if let Some((container, key)) = self.open.pop() {
            self.key = key;
            self.put(container);
        }
    }
}

impl JsonSink for ValueBuilder {
    fn begin_object(&mut self) {
        let key = self.key.take();
        self.open.push((Json::Object(Map::new()), key));
    }

    fn end_object(&mut self) {
        self.close();
    }

    fn begin_array(&mut self) {
        let key = self.key.take();
        self.open.push((Json::Array(Vec::new()), key));
    }

    fn end_array(&mut self) {
        self.close();
    }

    fn key(&mut self, name: &str) {
        self.key = Some(name.to_owned());
    }

    fn str(&mut self, text: &str) {
        self.put(Json::from(text));
    }

    fn plain_str(&mut self, text: &[u8]) {
        self.put(Json::String(String::from_utf8_lossy(text).into_owned()));
    }

    fn int(&mut self, n: i64) {
        self.put(Json::from(n));
    }

    fn uint(&mut self, n: u64) {
        self.put(Json::from(n));
    }

    fn float(&mut self, x: f64) {
        // Null for NaN and infinities.
        self.put(Json::from(x));
    }

    fn bool(&mut self, b: bool) {
        self.put(Json::Bool(b));
    }

    fn null(&mut self) {
        self.put(Json::Null);
    }

    fn hex(&mut self, bytes: &[u8]) {
        self.put(Json::String(crate::value::hex(bytes)));
    }

    fn display(&mut self, value: &dyn Display) {
        self.put(Json::String(value.to_string()));
    }

    fn serde<T: Serialize + ?Sized>(&mut self, value: &T) {
        self.put(serde_json::to_value(value).unwrap_or(Json::Null));
    }

    fn json_text(&mut self, text: &[u8]) {
        self.put(serde_json::from_slice(text).unwrap_or(Json::Null));
    }
}

/// A sink that keeps nothing: for walks that describe a value only when
/// asked to (a skim that is not also writing JSON).
pub struct Discard;

impl JsonSink for Discard {
    const KEEPS: bool = false;
    #[inline(always)]
    fn begin_object(&mut self) {}
    #[inline(always)]
    fn end_object(&mut self) {}
    #[inline(always)]
    fn begin_array(&mut self) {}
    #[inline(always)]
    fn end_array(&mut self) {}
    #[inline(always)]
    fn key(&mut self, _: &str) {}
    #[inline(always)]
    fn known_key(&mut self, _: Key) {}
    #[inline(always)]
    fn str(&mut self, _: &str) {}
    #[inline(always)]
    fn plain_str(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn int(&mut self, _: i64) {}
    #[inline(always)]
    fn uint(&mut self, _: u64) {}
    #[inline(always)]
    fn float(&mut self, _: f64) {}
    #[inline(always)]
    fn bool(&mut self, _: bool) {}
    #[inline(always)]
    fn null(&mut self) {}
    #[inline(always)]
    fn hex(&mut self, _: &[u8]) {}
    #[inline(always)]
    fn display(&mut self, _: &dyn Display) {}
    #[inline(always)]
    fn built_str(&mut self, _: &mut dyn FnMut(&mut String)) {}
    #[inline(always)]
    fn serde<T: Serialize + ?Sized>(&mut self, _: &T) {}
    #[inline(always)]
    fn json_text(&mut self, _: &[u8]) {}
}

/// The value `write` describes, built with a [`ValueBuilder`].
pub fn to_value(write: impl FnOnce(&mut ValueBuilder)) -> Json {
    let mut builder = ValueBuilder::default();
    write(&mut builder);
    builder.finish()
}

/// Whether a byte must be escaped in a JSON string: controls, quote and
/// backslash (RFC 8259 section 7).
#[inline]
fn needs_escape(byte: u8) -> bool {
    (byte < 0x20) | (byte == b'"') | (byte == b'\\')
}

/// Whether a byte goes into a JSON string as it is and is printable ASCII.
#[inline]
const fn plain(byte: u8) -> bool {
    (byte >= 0x20) & (byte < 0x7f) & (byte != b'"') & (byte != b'\\')
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is below `n` (n <= 128), or is zero for
/// n = 1 ("Bit Twiddling Hacks": "determine if a word has a byte less than
/// n"; exact as a yes or no, though not per byte).
#[inline(always)]
fn has_below(word: u64, n: u64) -> bool {
    word.wrapping_sub(ONES * n) & !word & HIGH != 0
}

/// [`needs_escape`] for any byte of a word.
#[inline(always)]
fn word_needs_escape(word: u64) -> bool {
    has_below(word, 0x20) | has_below(word ^ (ONES * 0x22), 1) | has_below(word ^ (ONES * 0x5c), 1)
}

/// Not [`plain`] for some byte of a word: [`word_needs_escape`], or a byte
/// of 0x7f and up (adding one to each byte sets the top bit of 0x7f; a
/// carry out of a byte needs a top bit already set).
#[inline(always)]
fn word_not_plain(word: u64) -> bool {
    (word | word.wrapping_add(ONES)) & HIGH != 0 || word_needs_escape(word)
}

/// Whether any byte of `text` is `wanted`. Short texts, the keys and names
/// most strings are, take a word-wide test (`word_has`) on one or two
/// overlapping words, with spaces (plain, never wanted) as padding; longer
/// ones are read a block at a time without branching per byte, so that
/// each block is a few vector instructions, and the last block overlaps
/// the one before.
#[inline(always)]
fn any_byte(
    text: &[u8],
    wanted: impl Fn(u8) -> bool + Copy,
    word_has: impl Fn(u64) -> bool,
) -> bool {
    let len = text.len();
    let word_at = |at: usize, width: usize| -> u64 {
        // `width` bytes at `at`, the rest of the word spaces.
        let mut word = [b' '; 8];
        if let (Some(to), Some(from)) = (word.get_mut(..width), text.get(at..at + width)) {
            to.copy_from_slice(from);
        }
        u64::from_le_bytes(word)
    };
    match len {
        0 => false,
        1..=3 => text.iter().fold(false, |found, &byte| found | wanted(byte)),
        4..=7 => word_has((word_at(0, 4) & 0xffff_ffff) | (word_at(len - 4, 4) << 32)),
        8..=15 => word_has(word_at(0, 8)) | word_has(word_at(len - 8, 8)),
        16..=63 => blocks_have::<16>(text, wanted),
        // Record values: wider blocks, fewer reductions of a block to one
        // answer.
        _ => blocks_have::<64>(text, wanted),
    }
}

/// [`any_byte`] for texts of at least `N` bytes, `N` at a time.
#[inline(always)]
fn blocks_have<const N: usize>(text: &[u8], wanted: impl Fn(u8) -> bool + Copy) -> bool {
    let mut blocks = text.chunks_exact(N);
    for block in blocks.by_ref() {
        if let Ok(block) = <&[u8; N]>::try_from(block) {
            if block_has(block, wanted) {
                return true;
            }
        }
    }
    if blocks.remainder().is_empty() {
        return false;
    }
    match text.get(text.len() - N..).map(<&[u8; N]>::try_from) {
        Some(Ok(last)) => block_has(last, wanted),
        _ => false,
    }
}

#[inline(always)]
fn block_has<const N: usize>(block: &[u8; N], wanted: impl Fn(u8) -> bool) -> bool {
    // Or-ing bytes rather than bools keeps the vector code simple.
    block
        .iter()
        .fold(0u8, |found, &byte| found | u8::from(wanted(byte)))
        != 0
}

/// Whether any byte of `text` needs escaping.
#[inline(always)]
fn any_escape(text: &[u8]) -> bool {
    any_byte(text, needs_escape, word_needs_escape)
}

/// Whether `text` is printable ASCII with nothing to escape in JSON: the
/// test for [`JsonSink::plain_str`].
#[inline]
pub fn is_plain(text: &[u8]) -> bool {
    !any_byte(text, |byte| !plain(byte), word_not_plain)
}

/// `text`, which [`is_plain`], as a JSON string.
#[inline]
pub fn write_plain(out: &mut Vec<u8>, text: &[u8]) {
    debug_assert!(is_plain(text));
    out.reserve(text.len() + 2);
    out.push(b'"');
    append(out, text);
    out.push(b'"');
}

/// Appends `text` to `out`. Texts of 4 to 32 bytes, most keys, names and
/// short values, are copied as two overlapping moves of a fixed size
/// instead of by a call to `memcpy`, whose call costs more than the copy.
#[inline(always)]
fn append(out: &mut Vec<u8>, text: &[u8]) {
    /// Copies the first and the last `N` bytes of `text` (`N <= len <=
    /// 2N`), which together are all of it, to `to`.
    ///
    /// # Safety
    /// `to` must be valid for `text.len()` bytes of writes.
    #[inline(always)]
    unsafe fn two_moves<const N: usize>(text: &[u8], to: *mut u8) {
        let len = text.len();
        let from = text.as_ptr();
        let head = std::ptr::read_unaligned(from.cast::<[u8; N]>());
        let tail = std::ptr::read_unaligned(from.add(len - N).cast::<[u8; N]>());
        std::ptr::write_unaligned(to.cast::<[u8; N]>(), head);
        std::ptr::write_unaligned(to.add(len - N).cast::<[u8; N]>(), tail);
    }
    let len = text.len();
    if !(4..=32).contains(&len) {
        out.extend_from_slice(text);
        return;
    }
    out.reserve(len);
    let at = out.len();
    // SAFETY: `len` bytes were reserved after the contents; each move
    // reads within `text` (N <= len) and writes within the `len` bytes
    // reserved (its last byte at `len - 1`), and together they write all
    // `len` bytes before the length is set.
    unsafe {
        let to = out.as_mut_ptr().add(at);
        match len {
            4..=8 => two_moves::<4>(text, to),
            9..=16 => two_moves::<8>(text, to),
            _ => two_moves::<16>(text, to),
        }
        out.set_len(at + len);
    }
}

/// `text` as a quoted JSON string, escaped as `serde_json` escapes:
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other controls as `\u00XX`;
/// everything else (UTF-8 included) as it is.
#[inline(always)]
pub fn write_string(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    if any_escape(text) {
        write_escaped(out, text);
    } else {
        append(out, text);
    }
    out.push(b'"');
}

/// The body of a string that has something to escape.
fn write_escaped(out: &mut Vec<u8>, text: &[u8]) {
    // Start of the bytes not yet copied.
    let mut pending = 0;
    for (here, &byte) in text.iter().enumerate() {
        if needs_escape(byte) {
            out.extend_from_slice(text.get(pending..here).unwrap_or_default());
            write_escape(out, byte);
            pending = here + 1;
        }
    }
    out.extend_from_slice(text.get(pending..).unwrap_or_default());
}

fn write_escape(out: &mut Vec<u8>, byte: u8) {
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let digits = HEX_PAIRS[usize::from(byte)];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&digits);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// `n` in decimal.
#[inline]
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_uint(out, n.unsigned_abs());
}

/// `n` in decimal, eight digits at a time.
#[inline]
pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    const E8: u64 = 100_000_000;
    // Most numbers in Kafka trees are small: counts, flags, -1's digit.
    if n < 10 {
        // Below 10: the cast keeps it whole.
        out.push(b'0' + n as u8);
        return;
    }
    // Room for the most digits and the eight-byte stores below, checked
    // once rather than at each store.
    out.reserve(24);
    let mut digits = Digits { out };
    if n < E8 {
        digits.leading(n);
    } else if n < E8 * E8 {
        // Timestamps in milliseconds: thirteen digits.
        digits.leading(n / E8);
        digits.eight(n % E8);
    } else {
        digits.leading(n / (E8 * E8));
        digits.eight(n / E8 % E8);
        digits.eight(n % E8);
    }
}

/// Writes `n` in decimal with leading zeros up to `width` digits, as
/// `{n:0width$}` would (for widths up to 20, all a `u64` needs).
pub fn write_uint_zero_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    // Up to eight digits (nearly every padded number), one store.
    if n < 100_000_000 && width <= 8 {
        out.reserve(8);
        let keep = decimal_len(n).max(width);
        // Leading digits are the low bytes: shift out the ones not kept.
        Digits { out }.store(eight_digits(n) >> (8 * (8 - keep)), keep);
        return;
    }
    let (digits, len) = decimal_digits(n);
    let start = digits.len().saturating_sub(len.max(width));
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Writes digits, eight bytes at a time, into room already reserved:
/// `write_uint` reserves 24 bytes for up to three stores,
/// `write_uint_zero_padded` 8 for one.
struct Digits<'a> {
    out: &'a mut Vec<u8>,
}

impl Digits<'_> {
    /// Stores eight bytes after the vector's contents and keeps `keep`
    /// of them (the rest are spare room, overwritten later).
    #[inline(always)]
    fn store(&mut self, word: u64, keep: usize) {
        let len = self.out.len();
        debug_assert!(self.out.capacity() - len >= 8 && keep <= 8);
        // SAFETY: `write_uint` reserved 24 bytes and stores at most
        // 8 + 8 + 8 bytes, `write_uint_zero_padded` reserved 8 and stores
        // 8, each store kept at most 8 bytes long, so the eight bytes at
        // `len` are within the allocation; the kept ones are initialised
        // by this store.
        unsafe {
            let at = self.out.as_mut_ptr().add(len);
            std::ptr::write_unaligned(at.cast::<[u8; 8]>(), word.to_le_bytes());
            self.out.set_len(len + keep);
        }
    }

    /// The digits of `0 < n < 10^8` without leading zeros: all eight are
    /// stored and the zeros cut, which is cheaper than counting first.
    #[inline(always)]
    fn leading(&mut self, n: u64) {
        let digits = eight_digits(n);
        // Leading zeros are the low bytes; `n > 0` keeps a non-zero digit.
        let zeros = (digits ^ ZERO_DIGITS).trailing_zeros() / 8;
        self.store(digits >> (8 * zeros), 8 - zeros as usize);
    }

    /// All eight digits of `n < 10^8`.
    #[inline(always)]
    fn eight(&mut self, n: u64) {
        self.store(eight_digits(n), 8);
    }
}

/// The decimal digits of `n`, right-aligned in twenty bytes with zeros
/// before them, and how many there are (at least one): for writers that
/// pad with zeros or write into text.
#[inline]
fn decimal_digits(n: u64) -> ([u8; 20], usize) {
    const E8: u64 = 100_000_000;
    let mut digits = [b'0'; 20];
    let (high, low) = digits.split_at_mut(12);
    low.copy_from_slice(&eight_digits(n % E8).to_le_bytes());
    if n >= E8 {
        let (top, middle) = high.split_at_mut(4);
        middle.copy_from_slice(&eight_digits(n / E8 % E8).to_le_bytes());
        // Below 2^64, the top is at most four digits.
        top.copy_from_slice(&eight_digits(n / (E8 * E8)).to_le_bytes()[4..]);
    }
    (digits, decimal_len(n))
}

/// How many decimal digits `n` has.
pub fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Eight ASCII zeros.
const ZERO_DIGITS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `n < 10^8` (leading zeros included) as
/// ASCII in a word whose bytes, little-endian, are in writing order. The
/// digits are split in SIMD-within-a-register fashion: two halves of four
/// digits in 32-bit lanes, each split into two of two in 16-bit lanes,
/// each into two digits in bytes; a quotient by 100 or 10 is a multiply
/// and shift, exact over the range of its lane (10486 / 2^20 for
/// n < 10^4, 103 / 2^10 for n < 100).
#[inline(always)]
fn eight_digits(n: u64) -> u64 {
    let high = n / 10_000;
    let fours = high | ((n - high * 10_000) << 32);
    let hundreds = ((fours * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let twos = hundreds | ((fours - hundreds * 100) << 16);
    let tens = ((twos * 103) >> 10) & 0x000f_000f_000f_000f;
    let ones = tens | ((twos - tens * 10) << 8);
    ones | ZERO_DIGITS
}

/// Two lowercase hex digits for each byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut n = 0;
    while n < 256 {
        pairs[n] = [DIGITS[n >> 4], DIGITS[n & 0xf]];
        n += 1;
    }
    pairs
};

/// `bytes` in lowercase hex, unquoted.
pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    if let Some(room) = out.get_mut(start..) {
        for (pair, &byte) in room.chunks_exact_mut(2).zip(bytes) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut JsonWriter<'static>)) -> String {
        let mut writer = JsonWriter::in_memory();
        write(&mut writer);
        String::from_utf8(writer.into_bytes()).expect("utf-8")
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = (0..=0x7fu8)
            .map(|byte| format!("a{}b", char::from(byte)))
            .collect();
        cases.extend(
            [
                "",
                "plain",
                "caf\u{e9} \u{1f600} \u{2028}",
                "\"quoted\\\"",
                "\u{7f}\u{85}",
            ]
            .map(String::from),
        );
        // Every ASCII byte at every position of strings of every length up
        // to past two blocks, and around the wider blocks: the word-wide
        // tests, the blocks and their overlapping tails.
        for len in (1..=40).chain([63, 64, 65, 100, 129]) {
            for at in 0..len {
                for byte in 0..0x80u8 {
                    let mut text = vec![b'y'; len];
                    if let Some(slot) = text.get_mut(at) {
                        *slot = byte;
                    }
                    cases.push(String::from_utf8(text).expect("ascii"));
                }
            }
            cases.push("\u{e9}".repeat(len));
        }
        cases.push("\n".repeat(70));
        for case in cases {
            let mut out = Vec::new();
            write_string(&mut out, case.as_bytes());
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(&case).expect("json"),
                "{case:?}"
            );
        }
    }

    #[test]
    fn appending_copies_every_length_exactly() {
        let text: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len in 0..=text.len() {
            for before in [0, 1, 7] {
                let mut out = vec![b'-'; before];
                out.shrink_to_fit();
                append(&mut out, &text[..len]);
                let mut expected = vec![b'-'; before];
                expected.extend_from_slice(&text[..len]);
                assert_eq!(out, expected, "{len} bytes after {before}");
            }
        }
    }

    #[test]
    fn plain_is_checked_for_every_byte_at_every_position() {
        // Word-wide tests, blocks of 16 and of 64 and their overlapping tails.
        for len in (1..=40).chain([63, 64, 65, 100, 127, 128, 129, 200]) {
            for at in 0..len {
                for byte in 0..=0xffu8 {
                    let mut text = vec![b'y'; len];
                    if let Some(slot) = text.get_mut(at) {
                        *slot = byte;
                    }
                    assert_eq!(
                        is_plain(&text),
                        text.iter().all(|&byte| plain(byte)),
                        "{byte:#04x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(is_plain(b""));
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let ints = [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            12_345,
            -1,
            -10,
            -100,
            i64::MIN,
            i64::MAX,
        ];
        for n in ints {
            assert_eq!(written(|w| w.int(n)), n.to_string());
        }
        for n in [0, 7, 10, 999, 1_000, u64::MAX] {
            assert_eq!(written(|w| w.uint(n)), n.to_string());
        }
        // Every number of digits, and its edges, in each eight-digit part.
        let mut power = 1u64;
        for _ in 0..20 {
            for n in [power - 1, power, power + 1, power.wrapping_mul(7) / 3] {
                let mut out = b"x".to_vec();
                write_uint(&mut out, n);
                assert_eq!(out, format!("x{n}").into_bytes());
            }
            power = power.saturating_mul(10);
        }
        for n in (0..200_000u64).chain((0..100_000).map(|n| n * 9_999_991)) {
            let mut out = Vec::new();
            write_uint(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for x in [
            0.0,
            -0.0,
            1.5,
            0.000_054_231,
            1e21,
            1e-7,
            123_456.789,
            f64::NAN,
        ] {
            assert_eq!(
                written(|w| w.float(x)),
                serde_json::to_string(&x).expect("json")
            );
        }
        assert_eq!(written(|w| w.hex(&[0, 0xab, 0xff])), "\"00abff\"");
    }

    #[test]
    fn zero_padded_numbers_are_what_format_pads() {
        let mut power = 1u64;
        for _ in 0..20 {
            for n in [0, power - 1, power, power + 1, power.wrapping_mul(7) / 3] {
                for width in [0, 1, 2, 6, 8, 9, 12, 20] {
                    let mut out = b"x".to_vec();
                    write_uint_zero_padded(&mut out, n, width);
                    assert_eq!(out, format!("x{n:0width$}").into_bytes(), "{n} {width}");
                }
            }
            power = power.saturating_mul(10);
        }
        let mut out = Vec::new();
        write_uint_zero_padded(&mut out, u64::MAX, 3);
        assert_eq!(out, u64::MAX.to_string().into_bytes());
    }

    /// One document through both sinks: the text parses to the value built.
    #[test]
    fn writer_and_builder_agree() {
        fn describe<S: JsonSink>(w: &mut S) {
            w.begin_object();
            w.key("a");
            w.begin_array();
            w.int(-3);
            w.uint(4);
            w.begin_object();
            w.end_object();
            w.begin_array();
            w.end_array();
            w.null();
            w.end_array();
            w.key("b\n");
            w.opt_str(Some("x\"y"));
            w.key("c");
            w.float(0.25);
            w.key("d");
            w.display(
                &"127.0.0.1:9092"
                    .parse::<std::net::SocketAddr>()
                    .expect("addr"),
            );
            w.key("e");
            w.serde(&vec![Some(1), None]);
            w.key("f");
            w.bool(false);
            w.key("g");
            w.hex(b"\x01");
            w.end_object();
        }
        let text = written(describe);
        assert_eq!(
            text,
            r#"{"a":[-3,4,{},[],null],"b\n":"x\"y","c":0.25,"d":"127.0.0.1:9092","e":[1,null],"f":false,"g":"01"}"#
        );
        let parsed: Json = serde_json::from_str(&text).expect("parses");
        assert_eq!(parsed, to_value(describe));
    }

    #[test]
    fn a_stream_writer_passes_text_on_in_bounded_pieces() {
        let mut stream = Vec::new();
        let mut writer = JsonWriter::to_stream(&mut stream);
        let mut peak = 0;
        writer.begin_array();
        for n in 0..200_000 {
            writer.str("some text to make the output grow");
            writer.uint(n);
            writer.checkpoint();
            peak = peak.max(writer.buf.len());
        }
        writer.end_array();
        writer.end_line().expect("written");
        writer.flush().expect("flushed");
        drop(writer);
        assert!(peak < JsonWriter::FLUSH_AT + 100, "buffer grew to {peak}");
        let parsed: Json = serde_json::from_slice(&stream).expect("parses");
        assert_eq!(parsed.as_array().map(Vec::len), Some(400_000));
    }

    #[test]
    fn a_failing_stream_reports_its_error() {
        struct Broken;
        impl io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut broken = Broken;
        let mut writer = JsonWriter::to_stream(&mut broken);
        writer.str("x");
        assert_eq!(
            writer.flush().map_err(|error| error.kind()),
            Err(io::ErrorKind::BrokenPipe)
        );
        writer.str("y");
        assert!(writer.end_line().is_err(), "the error sticks");
        assert!(writer.flush().is_err());
    }
}
