//! Reading packets out of capture files and cutting them down to TCP.
//!
//! This module owns everything below the TCP byte stream: opening a pcap or
//! pcapng savefile (or standard input) through libpcap, handing out each
//! record as an owned [`RawPacket`] (classic pcap and single-interface
//! pcapng files are read without libpcap, in the private `savefile`
//! module; files compressed whole with gzip or zstd are decompressed on
//! the way, in the private `compressed` module), parsing the link, IP and
//! TCP headers of a packet into a [`TcpSegment`] (in [`link`]), and
//! writing chosen packets back out as a classic pcap file (in [`writer`]).
//! Reassembling segments into byte streams is the job of
//! [`crate::reassembly`]; nothing here keeps state across packets.

mod compressed;
pub mod link;
pub mod live;
mod savefile;
pub mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, IntoRawFd};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use compressed::{Compression, Decompression};
pub use link::{into_tcp, parse_tcp, SkipReason, TcpSegment};
use savefile::{Record, Stop};
pub use writer::PcapWriter;

/// One record of a capture file, copied out of libpcap's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawPacket {
    /// Position of the record in the file, counting from 0.
    pub index: u64,
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Bytes of the packet present in the file (`data.len()`).
    pub caplen: u32,
    /// Length of the packet on the wire; larger than `caplen` when the
    /// capture's snaplen cut it.
    pub origlen: u32,
    /// The captured bytes, starting with the link-layer header.
    pub data: Bytes,
}

/// The link-layer header type of a capture, from the DLT/LINKTYPE number in
/// its file header (<https://www.tcpdump.org/linktypes.html>).
///
/// Unknown numbers survive as [`LinkType::Other`] so that they can be shown
/// and written back unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II, possibly with 802.1Q/802.1ad tags.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture v1, 16-byte header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture v2, 20-byte header.
    LinuxSll2,
    /// `LINKTYPE_NULL` (0): BSD loopback, 4-byte address family in the
    /// capturing host's byte order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, address family in network
    /// byte order.
    Loop,
    /// `LINKTYPE_RAW` (101; DLT 12 or 14 depending on the platform): a bare
    /// IPv4 or IPv6 packet.
    RawIp,
    /// `LINKTYPE_IPV4` (228): a bare IPv4 packet.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): a bare IPv6 packet.
    Ipv6,
    /// Any other link type, by number.
    Other(i32),
}

impl LinkType {
    /// Maps a DLT number (as libpcap reports it) or a LINKTYPE number (as
    /// files store it) to a link type.
    pub fn from_number(number: i32) -> LinkType {
        match number {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            // DLT_RAW is 12 on most platforms and 14 on OpenBSD; files use
            // LINKTYPE_RAW, 101.
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The LINKTYPE number written into a pcap file header.
    pub fn linktype_number(self) -> i32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(number) => number,
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkType::Ethernet => f.write_str("ethernet"),
            LinkType::LinuxSll => f.write_str("linux cooked v1"),
            LinkType::LinuxSll2 => f.write_str("linux cooked v2"),
            LinkType::Null => f.write_str("bsd loopback"),
            LinkType::Loop => f.write_str("openbsd loopback"),
            LinkType::RawIp => f.write_str("raw ip"),
            LinkType::Ipv4 => f.write_str("raw ipv4"),
            LinkType::Ipv6 => f.write_str("raw ipv6"),
            LinkType::Other(number) => write!(f, "link type {number}"),
        }
    }
}

/// What went wrong reading or writing a capture file. Every message names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened at all.
    #[error("cannot open capture {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// libpcap refused the file header: not pcap/pcapng, or damaged.
    #[error("cannot read {} as a pcap or pcapng capture: {message}", path.display())]
    Format { path: PathBuf, message: String },
    /// libpcap failed in the middle of the file, typically a truncated last
    /// record or a corrupt record header.
    #[error("{}: cannot read packet {packet}: {message}", path.display())]
    Read {
        path: PathBuf,
        packet: u64,
        message: String,
    },
    /// Creating or writing an output capture failed.
    #[error("cannot write capture {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A packet cannot be represented in the classic pcap format.
    #[error("cannot write packet {packet} to {}: {reason}", path.display())]
    Unwritable {
        path: PathBuf,
        packet: u64,
        reason: String,
    },
}

/// The compression a capture file comes in (`gzip`, `zstd`), which
/// [`CaptureReader::open`] undoes; `None` for a plain file or one that
/// cannot be opened. Its size then says nothing of how much there is to
/// read.
pub fn compression_of(path: &Path) -> Option<&'static str> {
    let file = File::open(path).ok()?;
    Compression::of(&file).map(Compression::name)
}

/// The text of a libpcap error without the crate's "libpcap error: " prefix.
fn pcap_message(error: pcap::Error) -> String {
    match error {
        pcap::Error::PcapError(message) => message,
        other => other.to_string(),
    }
}

/// Reads the packets of a pcap or pcapng file, in file order.
///
/// Timestamps are always delivered in nanoseconds: the file is opened with
/// nanosecond precision, so libpcap scales microsecond files up and keeps
/// nanosecond files (and pcapng `if_tsresol`) exact.
pub struct CaptureReader {
    source: Source,
    path: PathBuf,
    link: LinkType,
    next_index: u64,
    done: bool,
    /// Where small packets are copied to; see [`copy_packet`].
    chunk: BytesMut,
    /// The decompression feeding libpcap, for a compressed file.
    decompression: Option<Decompression>,
}

/// Where the records come from.
enum Source {
    /// A classic pcap file, read directly.
    Savefile(savefile::Savefile),
    /// Anything else, through libpcap.
    Libpcap(pcap::Capture<pcap::Offline>),
    /// Nothing more to read.
    Closed,
}

/// Size of the chunks small packets are copied into.
const CHUNK_SIZE: usize = 16 * 1024;
/// Packets larger than this get an allocation of their own.
const CHUNK_PACKET_MAX: usize = CHUNK_SIZE / 8;

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("link", &self.link)
            .field("next_index", &self.next_index)
            .field("done", &self.done)
            .finish()
    }
}

impl CaptureReader {
    /// Opens a capture file; the path `-` means standard input.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        if path == Path::new("-") {
            // Duplicate the descriptor: libpcap takes ownership of what it
            // is given and closes it when the capture is dropped, and the
            // process's own stdin must stay open.
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| CaptureError::Open {
                    path: PathBuf::from("<stdin>"),
                    source,
                })?;
            return CaptureReader::from_file(File::from(fd), Path::new("<stdin>"));
        }
        // Opening it ourselves first turns "no such file" and "permission
        // denied" into plain io errors instead of libpcap strings.
        let open_error = |source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let Some(compression) = Compression::of(&file) else {
            return CaptureReader::from_file(file, path);
        };
        let (decompression, decompressed) =
            Decompression::start(file, compression).map_err(open_error)?;
        match CaptureReader::from_file(decompressed, path) {
            Ok(mut reader) => {
                reader.decompression = Some(decompression);
                Ok(reader)
            }
            // What broke the stream, when it broke before a capture's
            // header came through; else what libpcap made of the header.
            Err(CaptureError::Format { path, message }) => Err(CaptureError::Format {
                path,
                message: decompression.failure().unwrap_or_else(|| {
                    format!("{message} (after {} decompression)", decompression.name())
                }),
            }),
            Err(other) => Err(other),
        }
    }

    /// Reads a capture from an already open file (or pipe); `name` is only
    /// used in messages.
    pub fn from_file(file: File, name: &Path) -> Result<CaptureReader, CaptureError> {
        let file = match savefile::Savefile::open(file) {
            Ok(savefile) => {
                return Ok(CaptureReader::with_source(Source::Savefile(savefile), name))
            }
            Err(file) => file,
        };
        let capture = libpcap_from_file(file).map_err(|error| CaptureError::Format {
            path: name.to_path_buf(),
            message: pcap_message(error),
        })?;
        Ok(CaptureReader::with_capture(capture, name))
    }

    fn with_capture(capture: pcap::Capture<pcap::Offline>, path: &Path) -> CaptureReader {
        CaptureReader::with_source(Source::Libpcap(capture), path)
    }

    fn with_source(source: Source, path: &Path) -> CaptureReader {
        let link = match &source {
            Source::Savefile(savefile) => savefile.link_type(),
            Source::Libpcap(capture) => LinkType::from_number(capture.get_datalink().0),
            Source::Closed => LinkType::Other(-1),
        };
        CaptureReader {
            source,
            path: path.to_path_buf(),
            link,
            next_index: 0,
            done: false,
            chunk: BytesMut::new(),
            decompression: None,
        }
    }

    /// The link type of the file (of its first interface, for pcapng).
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// The path the reader was opened with (`<stdin>` for standard input).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next packet; `None` at the end of the file.
    ///
    /// When libpcap reports an error (a truncated last record, a corrupt
    /// record header) it is returned once as `Some(Err(..))` and every later
    /// call returns `None`: libpcap cannot resynchronise inside a savefile.
    pub fn next_packet(&mut self) -> Option<Result<RawPacket, CaptureError>> {
        if self.done {
            return None;
        }
        let mut next = self.next_record();
        if matches!(next, Err(Stop::Handover)) {
            next = self.hand_over().and_then(|()| self.next_record());
        }
        match next {
            Ok(Some(record)) => {
                let index = self.next_index;
                self.next_index = self.next_index.saturating_add(1);
                Some(Ok(RawPacket {
                    index,
                    ts_ns: record.ts_ns,
                    caplen: u32::try_from(record.data.len()).unwrap_or(u32::MAX),
                    origlen: record.origlen,
                    data: record.data,
                }))
            }
            Ok(None) => self.end(None),
            Err(stop) => self.end(Some(stop)),
        }
    }

    /// The end of the records: an error when one stopped them (`stop`) or
    /// when the decompression feeding libpcap broke off, which libpcap may
    /// take for the file's end at a record boundary; then nothing more.
    #[cold]
    fn end(&mut self, stop: Option<Stop>) -> Option<Result<RawPacket, CaptureError>> {
        self.done = true;
        let failure = self.decompression.as_ref().and_then(Decompression::failure);
        let message = match (failure, stop) {
            // Rather than libpcap's view of the stream it cut.
            (Some(failure), _) => failure,
            (None, Some(Stop::Error(message))) => message,
            (None, Some(Stop::Handover)) => "libpcap cannot take the capture over".to_owned(),
            (None, None) => return None,
        };
        Some(Err(CaptureError::Read {
            path: self.path.clone(),
            packet: self.next_index,
            message,
        }))
    }
}

impl CaptureReader {
    fn next_record(&mut self) -> Result<Option<Record>, Stop> {
        match &mut self.source {
            Source::Savefile(savefile) => savefile.next_record(),
            Source::Libpcap(capture) => {
                libpcap_record(capture, &mut self.chunk).map_err(Stop::Error)
            }
            Source::Closed => Ok(None),
        }
    }

    /// Goes on with libpcap where the direct reader cannot: reopens the
    /// file with it and skips the packets already read.
    fn hand_over(&mut self) -> Result<(), Stop> {
        let Source::Savefile(savefile) = std::mem::replace(&mut self.source, Source::Closed) else {
            return Ok(());
        };
        let mut capture =
            libpcap_from_file(savefile.into_file()).map_err(|e| Stop::Error(pcap_message(e)))?;
        for _ in 0..self.next_index {
            capture
                .next_packet()
                .map_err(|e| Stop::Error(pcap_message(e)))?;
        }
        self.source = Source::Libpcap(capture);
        Ok(())
    }
}

/// A libpcap reader of an open file (or pipe).
fn libpcap_from_file(file: File) -> Result<pcap::Capture<pcap::Offline>, pcap::Error> {
    let fd = file.into_raw_fd();
    // SAFETY: `fd` comes from `into_raw_fd`, so it is open and nothing
    // else owns it; libpcap takes it over (fdopen) and closes it when the
    // capture is dropped.
    unsafe { pcap::Capture::from_raw_fd_with_precision(fd, pcap::Precision::Nano) }
}

/// The next record libpcap reads; `Ok(None)` at the end of the file.
fn libpcap_record(
    capture: &mut pcap::Capture<pcap::Offline>,
    chunk: &mut BytesMut,
) -> Result<Option<Record>, String> {
    match capture.next_packet() {
        Ok(packet) => {
            let header = *packet.header;
            // With Precision::Nano the "usec" field holds nanoseconds.
            // time_t and suseconds_t are 32 bits on some targets.
            #[allow(clippy::useless_conversion)]
            let (seconds, nanos) = (i64::from(header.ts.tv_sec), i64::from(header.ts.tv_usec));
            Ok(Some(Record {
                ts_ns: seconds.saturating_mul(1_000_000_000).saturating_add(nanos),
                origlen: header.len,
                data: copy_packet(chunk, packet.data),
            }))
        }
        Err(pcap::Error::NoMorePackets) => Ok(None),
        Err(error) => Err(pcap_message(error)),
    }
}

/// A copy of a packet's bytes, which libpcap reuses for the next packet.
///
/// Small packets, nearly all of them, are copied back to back into
/// shared chunks, one allocation for dozens of packets instead of one
/// each. A chunk is freed once no slice of any of its packets remains,
/// so a slice kept for long (a partial frame of an idle connection)
/// keeps at most `CHUNK_SIZE` bytes alive.
fn copy_packet(chunk: &mut BytesMut, data: &[u8]) -> Bytes {
    if data.len() > CHUNK_PACKET_MAX {
        return Bytes::copy_from_slice(data);
    }
    if chunk.capacity() < data.len() {
        *chunk = BytesMut::with_capacity(CHUNK_SIZE);
    }
    chunk.extend_from_slice(data);
    chunk.split().freeze()
}

impl Iterator for CaptureReader {
    type Item = Result<RawPacket, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}
