//! Reading plain pcap and pcapng files without libpcap, for speed.
//!
//! libpcap reads a capture file through stdio and copies every record into
//! a buffer of its own, which kwire must copy again because libpcap reuses
//! it. For the common cases, a regular file holding classic pcap
//! (pcap-savefile(5)) or pcapng with a single interface (RFC draft
//! draft-ietf-opsawg-pcapng), this module reads the records itself: the
//! file is read in large blocks and each packet is handed out as a slice
//! of its block, so no packet byte is copied on the way in.
//!
//! It takes only what it reads exactly as libpcap 1.10 does. A file header
//! it does not take (another version, an unknown link type, pcapng
//! options it does not follow) leaves the whole file to libpcap. A pcapng
//! block it does not follow in the middle of a file (a second interface,
//! an odd length) stops it with [`Stop::Handover`]: the caller reopens the
//! file with libpcap and skips the packets already read, so the output
//! never depends on which reader ran. Classic pcap record errors carry
//! libpcap's own messages.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;

use bytes::{Buf, Bytes};

use super::LinkType;

/// Size of the blocks the file is read in. A packet slice keeps its whole
/// block alive, so this also bounds what one retained packet holds on to.
const BLOCK_SIZE: usize = 64 * 1024;
/// Records larger than this are read into an allocation of their own, so
/// that a block holds many packets.
const OWN_ALLOCATION_MIN: usize = BLOCK_SIZE / 4;

const CLASSIC_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// libpcap's largest snapshot length for the link types taken here
/// (`MAXIMUM_SNAPLEN` in its pcap-int.h); larger records are errors.
const MAX_SNAPLEN: u32 = 262_144;

/// pcapng block types (draft-ietf-opsawg-pcapng section 11.1).
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const OBSOLETE_PACKET: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;
/// The section header's byte-order magic, as written by the file's host.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Largest pcapng block read here; libpcap allows somewhat more, and
/// decides about those itself.
const MAX_BLOCK: u32 = MAX_SNAPLEN + 64 * 1024;
/// Interface description options (section 4.2).
const OPT_END: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// One record, as libpcap would hand it out.
#[derive(Debug)]
pub(super) struct Record {
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Length of the packet on the wire.
    pub origlen: u32,
    pub data: Bytes,
}

/// Why no record came.
#[derive(Debug)]
pub(super) enum Stop {
    /// The file is damaged here; libpcap's message for the fault.
    Error(String),
    /// libpcap must read the file from here on (see the module comment).
    Handover,
}

/// A capture file being read record by record.
#[derive(Debug)]
pub(super) struct Savefile {
    file: File,
    /// Where the capture starts in `file`.
    start: u64,
    /// Bytes read from the file and not handed out yet.
    block: Bytes,
    big_endian: bool,
    /// The snapshot length as libpcap adjusts it.
    snapshot: u32,
    link: LinkType,
    format: Format,
}

#[derive(Clone, Copy, Debug)]
enum Format {
    /// Classic pcap; `nanos`: timestamps hold nanoseconds (magic
    /// `a1b23c4d`), not microseconds.
    Classic { nanos: bool },
    /// pcapng; timestamps count `units` per second.
    Pcapng { units: u64 },
}

impl Savefile {
    /// Reads the file header of a regular file. When the file is not one
    /// this reader takes, it is handed back at the position it was given
    /// at, for libpcap.
    pub(super) fn open(mut file: File) -> Result<Savefile, File> {
        let regular = file.metadata().is_ok_and(|metadata| metadata.is_file());
        let Some(start) = regular.then(|| file.stream_position().ok()).flatten() else {
            return Err(file);
        };
        let mut reader = Savefile {
            file,
            start,
            block: Bytes::new(),
            big_endian: false,
            snapshot: MAX_SNAPLEN,
            link: LinkType::Ethernet,
            format: Format::Classic { nanos: false },
        };
        match reader.read_header() {
            Some(()) => Ok(reader),
            None => Err(reader.into_file()),
        }
    }

    /// The file, back at the start of the capture, for libpcap.
    pub(super) fn into_file(mut self) -> File {
        // Only a rewind that worked lets libpcap see the whole file; were
        // it to fail, libpcap reports what it finds.
        let _ = self.file.seek(SeekFrom::Start(self.start));
        self.file
    }

    /// The link type of the file.
    pub(super) fn link_type(&self) -> LinkType {
        self.link
    }

    /// The next record; `Ok(None)` at the end of the file.
    pub(super) fn next_record(&mut self) -> Result<Option<Record>, Stop> {
        match self.format {
            Format::Classic { nanos } => self.next_classic(nanos).map_err(Stop::Error),
            Format::Pcapng { units } => self.next_pcapng(units),
        }
    }

    fn read_header(&mut self) -> Option<()> {
        let magic = self.read(4).ok()?;
        if magic.as_ref() == SECTION_HEADER.to_le_bytes() {
            return self.read_pcapng_header();
        }
        let rest = self.read(CLASSIC_HEADER_LEN - 4).ok()?;
        self.read_classic_header(&[magic, rest].concat())
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    /// Takes the link type and snapshot length libpcap would, if the link
    /// type is one kwire knows and libpcap passes its packets unchanged.
    fn set_link(&mut self, linktype: u32, snaplen: u32) -> Option<()> {
        let link = LinkType::from_number(i32::try_from(linktype).ok()?);
        // libpcap rewrites the Linux cooked headers of byte-swapped files.
        let swapped = self.big_endian != cfg!(target_endian = "big");
        if matches!(link, LinkType::Other(_))
            || (swapped && matches!(link, LinkType::LinuxSll | LinkType::LinuxSll2))
        {
            return None;
        }
        self.link = link;
        // pcap_adjust_snapshot: a zero, negative (as a C int) or too large
        // snapshot length means the largest.
        self.snapshot = if snaplen == 0 || snaplen > MAX_SNAPLEN {
            MAX_SNAPLEN
        } else {
            snaplen
        };
        Some(())
    }

    fn read_classic_header(&mut self, header: &[u8]) -> Option<()> {
        let (big_endian, nanos) = match header.get(..4)? {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return None,
        };
        self.big_endian = big_endian;
        self.format = Format::Classic { nanos };
        // Other versions swap or may swap the length fields; libpcap
        // sorts those out.
        if (self.u16_at(header, 4)?, self.u16_at(header, 6)?) != (2, 4) {
            return None;
        }
        let snaplen = self.u32_at(header, 16)?;
        self.set_link(self.u32_at(header, 20)?, snaplen)
    }

    fn next_classic(&mut self, nanos: bool) -> Result<Option<Record>, String> {
        let (header, got) = self.read_small::<RECORD_HEADER_LEN>()?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_HEADER_LEN {
            return Err(format!(
                "truncated dump file; tried to read {RECORD_HEADER_LEN} header bytes, only got {got}"
            ));
        }
        let field = |at: usize| self.u32_at(&header, at).unwrap_or(0);
        // The time fields are signed 32-bit numbers in libpcap's record
        // header (`struct pcap_timeval`), but in a file of the other byte
        // order libpcap 1.10 swaps them as unsigned numbers, so there they
        // never go negative (the odd-timestamps cases in capture/tests.rs
        // hold this against libpcap).
        let swapped = self.big_endian != cfg!(target_endian = "big");
        let time = |at: usize| {
            if swapped {
                i64::from(field(at))
            } else {
                i64::from(i32::from_ne_bytes(field(at).to_ne_bytes()))
            }
        };
        let (seconds, fraction) = (time(0), time(4));
        let (caplen, origlen) = (field(8), field(12));
        let fraction_ns = if nanos { fraction } else { fraction * 1000 };
        let ts_ns = seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(fraction_ns);

        // For the link types taken here the snapshot length is at most
        // the largest, so libpcap words this error by the snapshot length.
        if caplen > MAX_SNAPLEN {
            return Err(format!(
                "invalid packet capture length {caplen}, bigger than snaplen of {}",
                self.snapshot
            ));
        }
        let mut data = self.read(to_usize(caplen))?;
        let got = data.len();
        // A record longer than the snapshot length is cut to it, the rest
        // read and dropped.
        let keep = caplen.min(self.snapshot);
        if got < to_usize(keep) {
            return Err(format!(
                "truncated dump file; tried to read {keep} captured bytes, only got {got}"
            ));
        }
        if got < to_usize(caplen) {
            return Err(format!(
                "truncated dump file; tried to read {caplen} captured bytes, only got {got}"
            ));
        }
        data.truncate(to_usize(keep));
        Ok(Some(Record {
            ts_ns,
            origlen,
            data,
        }))
    }

    /// The section header, and the interface description right after it.
    fn read_pcapng_header(&mut self) -> Option<()> {
        // The byte-order magic follows the length (section 4.1).
        let head = self.read(8).ok()?;
        self.big_endian = match head.get(4..8)? {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            _ => return None,
        };
        let total = self.u32_at(&head, 0)?;
        if !(28..=MAX_BLOCK).contains(&total) || total % 4 != 0 {
            return None;
        }
        let section = self.read(to_usize(total - 12)).ok()?;
        let version = (self.u16_at(&section, 0)?, self.u16_at(&section, 2)?);
        if self.u32_at(&head, 4)? != BYTE_ORDER_MAGIC || version != (1, 0) {
            return None;
        }
        let (kind, body) = self.next_block().ok()??;
        if kind != INTERFACE_DESCRIPTION {
            return None;
        }
        let units = self.interface_units(&body)?;
        self.format = Format::Pcapng { units };
        let (linktype, snaplen) = (self.u16_at(&body, 0)?, self.u32_at(&body, 4)?);
        self.set_link(u32::from(linktype), snaplen)
    }

    /// Timestamp units per second of an interface description block body:
    /// microseconds unless `if_tsresol` says nanoseconds. Other
    /// resolutions, offsets and malformed options are for libpcap.
    fn interface_units(&self, body: &[u8]) -> Option<u64> {
        let mut options = body.get(8..body.len().checked_sub(4)?)?;
        let mut units = None;
        while options.len() >= 4 {
            let code = self.u16_at(options, 0)?;
            let len = usize::from(self.u16_at(options, 2)?);
            let value = options.get(4..4 + len)?;
            match (code, value) {
                (OPT_END, []) => break,
                // libpcap refuses the file over this ("opt_endofopt option
                // with length"); so must it here.
                (OPT_END, _) => return None,
                (IF_TSRESOL, [6]) if units.is_none() => units = Some(1_000_000),
                (IF_TSRESOL, [9]) if units.is_none() => units = Some(1_000_000_000),
                (IF_TSRESOL | IF_TSOFFSET, _) => return None,
                _ => {}
            }
            options = options.get((4 + len).next_multiple_of(4)..)?;
        }
        Some(units.unwrap_or(1_000_000))
    }

    /// The next block's type and body (what follows the type and length,
    /// trailer included); `Ok(None)` at the end of the file.
    fn next_block(&mut self) -> Result<Option<(u32, Bytes)>, Stop> {
        let (head, got) = self.read_small::<8>().map_err(|_| Stop::Handover)?;
        if got == 0 {
            return Ok(None);
        }
        let head = head.get(..got).unwrap_or_default();
        let (Some(kind), Some(total)) = (self.u32_at(head, 0), self.u32_at(head, 4)) else {
            return Err(Stop::Handover);
        };
        if !(12..=MAX_BLOCK).contains(&total) || total % 4 != 0 {
            return Err(Stop::Handover);
        }
        let body = self.read(to_usize(total - 8)).map_err(|_| Stop::Handover)?;
        let trailer = body
            .len()
            .checked_sub(4)
            .and_then(|at| self.u32_at(&body, at));
        if trailer != Some(total) {
            return Err(Stop::Handover);
        }
        Ok(Some((kind, body)))
    }

    fn next_pcapng(&mut self, units: u64) -> Result<Option<Record>, Stop> {
        loop {
            let Some((kind, body)) = self.next_block()? else {
                return Ok(None);
            };
            match kind {
                ENHANCED_PACKET => return self.enhanced_packet(body, units).map(Some),
                SECTION_HEADER | INTERFACE_DESCRIPTION | OBSOLETE_PACKET | SIMPLE_PACKET => {
                    return Err(Stop::Handover);
                }
                // Statistics, name resolution and the like: libpcap skips
                // them too.
                _ => {}
            }
        }
    }

    /// An enhanced packet block (section 4.3) of the one interface.
    fn enhanced_packet(&self, body: Bytes, units: u64) -> Result<Record, Stop> {
        let field = |at: usize| self.u32_at(&body, at).ok_or(Stop::Handover);
        let (interface, high, low) = (field(0)?, field(4)?, field(8)?);
        let (caplen, origlen) = (field(12)?, field(16)?);
        let end = 20 + to_usize(caplen);
        if interface != 0 || caplen > self.snapshot || end > body.len().saturating_sub(4) {
            return Err(Stop::Handover);
        }
        let ticks = (u64::from(high) << 32) | u64::from(low);
        let seconds = i64::try_from(ticks / units).map_err(|_| Stop::Handover)?;
        let fraction_ns =
            i64::try_from((ticks % units) * (1_000_000_000 / units)).map_err(|_| Stop::Handover)?;
        // The packet is the body narrowed down: no new view to count.
        let mut data = body;
        data.truncate(end);
        data.advance(20);
        Ok(Record {
            ts_ns: seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(fraction_ns),
            origlen,
            data,
        })
    }

    /// The next `len` bytes of the file; fewer only at its end.
    fn read(&mut self, len: usize) -> Result<Bytes, String> {
        if self.block.len() < len {
            self.refill(len)?;
        }
        Ok(self.block.split_to(len.min(self.block.len())))
    }

    /// The next `N` bytes of the file copied out, and how many there were
    /// (fewer only at its end): for record headers, which need no view of
    /// the block kept.
    fn read_small<const N: usize>(&mut self) -> Result<([u8; N], usize), String> {
        // Nearly always whole in the block: copied as an array of known
        // size (a few moves), not through a memcpy call.
        if let Some(whole) = self
            .block
            .get(..N)
            .and_then(|head| <[u8; N]>::try_from(head).ok())
        {
            self.block.advance(N);
            return Ok((whole, N));
        }
        if self.block.len() < N {
            self.refill(N)?;
        }
        let got = self.block.len().min(N);
        let mut out = [0; N];
        if let (Some(to), Some(from)) = (out.get_mut(..got), self.block.get(..got)) {
            to.copy_from_slice(from);
        }
        self.block.advance(got);
        Ok((out, got))
    }

    /// Makes `block` hold the next `len` bytes of the file, or what is left
    /// of it.
    fn refill(&mut self, len: usize) -> Result<(), String> {
        let capacity = if len > OWN_ALLOCATION_MIN {
            len
        } else {
            BLOCK_SIZE
        };
        let mut block = Vec::with_capacity(capacity);
        block.extend_from_slice(&self.block);
        // The rest of the block in one read(2) where the file has it
        // (read_to_end would start at 8 KiB and double: four calls a
        // block), into the spare room without zeroing it first.
        while block.len() < capacity {
            let wanted = capacity - block.len();
            let Some(room) = block.spare_capacity_mut().get_mut(..wanted) else {
                break;
            };
            // SAFETY: read(2) writes at most `room.len()` bytes into
            // `room`, which the vector owns and does not use yet; it
            // returns how many it wrote, and only those are then counted
            // as initialised.
            let read =
                unsafe { libc::read(self.file.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
            match usize::try_from(read) {
                Ok(0) => break,
                // SAFETY: see above; `read` is at most the room.
                Ok(read) => unsafe { block.set_len(block.len() + read) },
                Err(_) => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(format!("error reading dump file: {}", os_message(&error)));
                    }
                }
            }
        }
        self.block = Bytes::from(block);
        Ok(())
    }
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// An error's text as libpcap shows it (`strerror`), without the
/// " (os error N)" Rust adds.
fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
        None => text,
    }
}
