//! Export from the TUI: the packets of chosen exchanges to a pcap file (a
//! second pass over the capture file, as `kwire read --write` does), and
//! one exchange as JSON (the `kwire read --json` form, pretty-printed).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use crate::capture::{parse_tcp, CaptureError, CaptureReader, PcapWriter};
use crate::codec::DecodeOptions;

use super::index::Store;

/// What an export wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub exchanges: usize,
    pub packets: u64,
}

/// Writes to `out` the packets that carried `rows`, plus the SYN, FIN and
/// RST packets (without payload) of their connections, so that a reader of
/// the output sees where each connection starts and ends. Packets keep
/// their order and timestamps.
pub fn export_pcap(
    source: &Path,
    out: &Path,
    store: &Store,
    rows: &[u32],
) -> Result<Written, CaptureError> {
    if same_file(source, out) {
        return Err(CaptureError::Write {
            path: out.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "this is the capture being read: choose another name",
            ),
        });
    }
    let mut packets: Vec<u64> = Vec::new();
    let mut connections: HashSet<(SocketAddr, SocketAddr)> = HashSet::new();
    for index in rows {
        if let Some(row) = store.row(*index as usize) {
            packets.extend_from_slice(store.packets(row));
            connections.insert(store.endpoints(row));
        }
    }
    packets.sort_unstable();
    packets.dedup();
    let mut reader = CaptureReader::open(source)?;
    let link = reader.link_type();
    let mut writer = PcapWriter::create(out, link, 0)?;
    let mut written = 0u64;
    while let Some(next) = reader.next_packet() {
        let packet = match next {
            Ok(packet) => packet,
            // A growing live file ends in the middle of a record; the
            // first pass reported any damage.
            Err(CaptureError::Read { .. }) => break,
            Err(error) => return Err(error),
        };
        let keep = packets.binary_search(&packet.index).is_ok()
            || parse_tcp(link, &packet).is_ok_and(|segment| {
                (segment.syn || segment.fin || segment.rst)
                    && segment.payload.is_empty()
                    && (connections.contains(&(segment.src, segment.dst))
                        || connections.contains(&(segment.dst, segment.src)))
            });
        if keep {
            writer.write(&packet)?;
            written += 1;
        }
    }
    writer.finish()?;
    Ok(Written {
        exchanges: rows.len(),
        packets: written,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The JSON of one exchange, as `kwire read --json` prints it.
pub fn exchange_json(
    store: &Store,
    row: usize,
    options: &DecodeOptions,
    first_ns: i64,
) -> Option<serde_json::Value> {
    let exchange = store.exchange(row, options)?;
    let summary = exchange.summary();
    Some(crate::display::exchange_json(&exchange, &summary, first_ns))
}

/// Writes one exchange's JSON to `out`.
pub fn write_json(
    out: &Path,
    store: &Store,
    row: usize,
    options: &DecodeOptions,
    first_ns: i64,
) -> std::io::Result<()> {
    let json = exchange_json(store, row, options, first_ns)
        .ok_or_else(|| std::io::Error::other("the bytes of this exchange were not kept"))?;
    let mut text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(out, text)
}
