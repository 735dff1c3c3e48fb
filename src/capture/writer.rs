//! Writing packets back out as a classic pcap file.
//!
//! `kwire read --write OUT.pcap` keeps the packets that matter. The format is
//! written by hand rather than through libpcap's dumper so that nanosecond
//! timestamps survive: the file uses the nanosecond magic `0xa1b23c4d`
//! (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html>,
//! section 4), version 2.4, in little-endian byte order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{CaptureError, LinkType, RawPacket};

/// Magic number of a pcap file whose record timestamps are seconds plus
/// nanoseconds.
pub const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// The largest snaplen libpcap accepts when reading (MAXIMUM_SNAPLEN).
pub const MAX_SNAPLEN: u32 = 262_144;

/// A pcap file being written.
#[derive(Debug)]
pub struct PcapWriter {
    out: BufWriter<File>,
    path: PathBuf,
    snaplen: u32,
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes the file header. A `snaplen`
    /// of 0 means the largest libpcap accepts; packets longer than the
    /// snaplen are cut to it, as a capture with that snaplen would have.
    pub fn create(path: &Path, link: LinkType, snaplen: u32) -> Result<PcapWriter, CaptureError> {
        let snaplen = if snaplen == 0 { MAX_SNAPLEN } else { snaplen };
        let file = File::create(path).map_err(|source| CaptureError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let mut writer = PcapWriter {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            snaplen,
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&PCAP_MAGIC_NANOS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&link.linktype_number().to_le_bytes());
        writer.put(&header)?;
        Ok(writer)
    }

    /// Appends one packet record.
    pub fn write(&mut self, packet: &RawPacket) -> Result<(), CaptureError> {
        let seconds = packet.ts_ns.div_euclid(1_000_000_000);
        let nanos = packet.ts_ns.rem_euclid(1_000_000_000);
        let seconds = u32::try_from(seconds).map_err(|_| CaptureError::Unwritable {
            path: self.path.clone(),
            packet: packet.index,
            reason: format!("timestamp {} ns is outside 1970..2106", packet.ts_ns),
        })?;
        // rem_euclid keeps it in 0..1e9, which fits.
        let nanos = u32::try_from(nanos).unwrap_or(0);
        let held = u32::try_from(packet.data.len()).unwrap_or(u32::MAX);
        let caplen = held.min(self.snaplen);
        let data = usize::try_from(caplen)
            .ok()
            .and_then(|n| packet.data.get(..n))
            .unwrap_or_default();
        // The original length can never be less than what was captured.
        let origlen = packet.origlen.max(held);
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&nanos.to_le_bytes());
        record[8..12].copy_from_slice(&caplen.to_le_bytes());
        record[12..16].copy_from_slice(&origlen.to_le_bytes());
        self.put(&record)?;
        self.put(data)
    }

    /// Pushes buffered records to the file, so that a reader of the file
    /// while it grows (the TUI's export during a live capture) sees them.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|source| CaptureError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        let path = self.path.clone();
        self.out
            .flush()
            .map_err(|source| CaptureError::Write { path, source })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), CaptureError> {
        self.out
            .write_all(bytes)
            .map_err(|source| CaptureError::Write {
                path: self.path.clone(),
                source,
            })
    }
}
