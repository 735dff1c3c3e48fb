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

use std::fmt::{Display, Write as _};
use std::io;

use serde::Serialize;
use serde_json::ser::Formatter as _;
use serde_json::{Map, Value as Json};

/// Receives a JSON document as a stream of events: containers opened and
/// closed, keys, scalars. Keys are given before each value of an object;
/// separators are the sink's business.
pub trait JsonSink {
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    fn key(&mut self, name: &str);
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
    /// Anything `Serialize`, as `serde_json` writes it.
    fn serde<T: Serialize + ?Sized>(&mut self, value: &T);
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
    /// Reused for `display`.
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
        JsonWriter {
            buf: Vec::new(),
            comma: false,
            sink: None,
            error: None,
            scratch: String::new(),
        }
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

    #[inline]
    fn str(&mut self, text: &str) {
        self.separate();
        write_string(&mut self.buf, text.as_bytes());
        self.comma = true;
    }

    #[inline]
    fn plain_str(&mut self, text: &[u8]) {
        debug_assert!(is_plain(text));
        self.separate();
        self.buf.reserve(text.len() + 2);
        self.buf.push(b'"');
        self.buf.extend_from_slice(text);
        self.buf.push(b'"');
        self.comma = true;
    }

    #[inline]
    fn int(&mut self, n: i64) {
        self.separate();
        if n < 0 {
            self.buf.push(b'-');
        }
        write_uint(&mut self.buf, n.unsigned_abs());
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
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let _ = write!(scratch, "{value}");
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
fn plain(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte) & (byte != b'"') & (byte != b'\\')
}

/// Whether any byte of `text` is `wanted`: 16 bytes at a time without
/// branching per byte, so that each block is a few vector instructions,
/// and the last block overlapping the one before.
#[inline(always)]
fn any_byte(text: &[u8], wanted: impl Fn(u8) -> bool + Copy) -> bool {
    if text.len() < 16 {
        return text.iter().fold(false, |found, &byte| found | wanted(byte));
    }
    let mut blocks = text.chunks_exact(16);
    for block in blocks.by_ref() {
        if let Ok(block) = <&[u8; 16]>::try_from(block) {
            if block_has(block, wanted) {
                return true;
            }
        }
    }
    if blocks.remainder().is_empty() {
        return false;
    }
    match text.get(text.len() - 16..).map(<&[u8; 16]>::try_from) {
        Some(Ok(last)) => block_has(last, wanted),
        _ => false,
    }
}

/// Whether any byte of `text` needs escaping: [`any_byte`] with
/// `needs_escape`, and for the short strings most keys and names are, a
/// few word-wide tests instead of a loop (SWAR, "Bit Twiddling Hacks":
/// "determine if a word has a byte less than n", exact for n <= 128).
#[inline(always)]
fn any_escape(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word_has = |word: u64| {
        let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
        (below(word, 0x20) | below(word ^ (ONES * 0x22), 1) | below(word ^ (ONES * 0x5c), 1)) != 0
    };
    let len = text.len();
    let word_at = |at: usize, width: usize| -> u64 {
        // `width` bytes at `at`, the rest of the word spaces (plain).
        let mut word = [b' '; 8];
        if let (Some(to), Some(from)) = (word.get_mut(..width), text.get(at..at + width)) {
            to.copy_from_slice(from);
        }
        u64::from_le_bytes(word)
    };
    match len {
        0 => false,
        1..=3 => text
            .iter()
            .fold(false, |found, &byte| found | needs_escape(byte)),
        4..=7 => word_has(word_at(0, 4)) | word_has(word_at(len - 4, 4)),
        8..=15 => word_has(word_at(0, 8)) | word_has(word_at(len - 8, 8)),
        _ => any_byte(text, needs_escape),
    }
}

#[inline(always)]
fn block_has(block: &[u8; 16], wanted: impl Fn(u8) -> bool) -> bool {
    // Or-ing bytes rather than bools keeps the vector code simple.
    block
        .iter()
        .fold(0u8, |found, &byte| found | u8::from(wanted(byte)))
        != 0
}

/// Whether `text` is printable ASCII with nothing to escape in JSON: the
/// test for [`JsonSink::plain_str`].
pub fn is_plain(text: &[u8]) -> bool {
    !any_byte(text, |byte| !plain(byte))
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
        out.extend_from_slice(text);
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

/// Two decimal digits for each number below 100.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// `n` in decimal, four digits at a time.
#[inline]
pub fn write_uint(out: &mut Vec<u8>, mut n: u64) {
    // Most numbers in Kafka trees are small: counts, flags, -1's digit.
    if n < 10 {
        // Below 10: the cast keeps it whole.
        out.push(b'0' + n as u8);
        return;
    }
    // Room for the longest number is appended (a store of fixed size, not a
    // call to memset), the digits written into it from the right, and the
    // rest cut. Writing them in place rather than into a local array then
    // copied avoids reading back wide what was just written narrow, which
    // stalls (store forwarding fails).
    let len = n.checked_ilog10().map_or(1, |log| log as usize + 1);
    let start = out.len();
    out.extend_from_slice(&[0u8; 20]);
    if let Some(digits) = out.get_mut(start..start + len) {
        let mut at = len;
        let mut put_pair = |at: usize, pair: usize| {
            if let (Some(slot), Some(pair)) = (digits.get_mut(at..at + 2), DIGIT_PAIRS.get(pair)) {
                slot.copy_from_slice(pair);
            }
        };
        while n >= 10_000 {
            // Below 10000: the cast keeps it whole.
            let four = (n % 10_000) as usize;
            n /= 10_000;
            at -= 4;
            put_pair(at, four / 100);
            put_pair(at + 2, four % 100);
        }
        // Below 10000 now.
        let mut n = n as usize;
        if n >= 100 {
            at -= 2;
            put_pair(at, n % 100);
            n /= 100;
        }
        if n >= 10 {
            put_pair(0, n);
        } else if let Some(first) = digits.first_mut() {
            *first = b'0' + n as u8;
        }
    }
    out.truncate(start + len);
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
        // to past two blocks: the word-wide tests, the blocks and their
        // overlapping tails.
        for len in 1..=40 {
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
