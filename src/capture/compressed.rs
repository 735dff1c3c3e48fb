//! Capture files compressed whole, read as tshark reads them: a pcap or
//! pcapng file run through gzip (`capture.pcap.gz`) or zstd
//! (`capture.pcapng.zst`). The compression is told by the file's first
//! bytes, not by its name. A thread of its own decompresses the file into
//! a local socket, and libpcap reads the other end as it reads standard
//! input, so memory stays at the socket's and the decoder's buffers
//! whatever size the file expands to.
//!
//! A decompression error (a file cut short, a corrupt stream) ends the
//! capture there: what was decompressed before it is read as usual, and
//! the error is what the reader reports, with the format's name, instead
//! of libpcap's view of the shortened stream.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError};

/// A compression a capture file may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression `file` starts with, if any: gzip's two magic bytes
    /// (RFC 1952 section 2.3.1) or a zstd frame's four (RFC 8878 section
    /// 3.1.1). No pcap or pcapng magic begins with either.
    pub(super) fn of(file: &File) -> Option<Compression> {
        let mut magic = [0; 4];
        let read = file.read_at(&mut magic, 0).ok()?;
        match magic.get(..read)? {
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd] => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A file being decompressed on its own thread. Dropping it stops the
/// thread, wherever it is.
#[derive(Debug)]
pub(super) struct Decompression {
    compression: Compression,
    /// Why the thread stopped short, set before it closes its end.
    failure: Arc<Mutex<Option<String>>>,
    /// The reading end, kept to shut the connection down: the thread's
    /// next write then fails, even while libpcap holds its own descriptor.
    control: OwnedFd,
}

/// Bytes the decompressing thread reads from the file at a time.
const READ_BUFFER: usize = 64 * 1024;

impl Decompression {
    /// Starts decompressing `file`; the end to read the capture from comes
    /// with it. The two ends are a Unix stream socket pair rather than a
    /// pipe so that dropping the [`Decompression`] can shut them down.
    pub(super) fn start(file: File, compression: Compression) -> io::Result<(Decompression, File)> {
        let (reader, mut writer) = socket_pair()?;
        let control = reader.try_clone()?;
        let failure = Arc::new(Mutex::new(None));
        let failed = Arc::clone(&failure);
        std::thread::Builder::new()
            .name(format!("kwire {}", compression.name()))
            .spawn(move || {
                let file = BufReader::with_capacity(READ_BUFFER, file);
                let copied = match compression {
                    // A gzip file may hold several members back to back
                    // (`cat a.gz b.gz`), which gunzip reads as one.
                    Compression::Gzip => {
                        io::copy(&mut flate2::bufread::MultiGzDecoder::new(file), &mut writer)
                    }
                    Compression::Zstd => zstd::stream::read::Decoder::with_buffer(file)
                        .and_then(|mut decoder| io::copy(&mut decoder, &mut writer)),
                };
                match copied.and_then(|_| writer.flush()) {
                    // A reader that stopped early waits for nothing more.
                    Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
                        *failed.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(error.to_string());
                    }
                    _ => {}
                }
                // `writer` closes here, after the failure is set: a reader
                // that sees the end sees the failure too.
            })?;
        let decompression = Decompression {
            compression,
            failure,
            control: OwnedFd::from(control),
        };
        Ok((decompression, reader))
    }

    /// Why the decompression stopped short, once the reader has seen the
    /// end of what it gave; `None` if it did not.
    pub(super) fn failure(&self) -> Option<String> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.compression.name();
        failure
            .as_ref()
            .map(|message| format!("{name} decompression failed: {message}"))
    }

    /// The compression's name, for messages.
    pub(super) fn name(&self) -> &'static str {
        self.compression.name()
    }
}

impl Drop for Decompression {
    fn drop(&mut self) {
        // SAFETY: `control` is an open socket descriptor this owns.
        unsafe { libc::shutdown(self.control.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// A connected pair of Unix stream sockets, both closed on exec.
fn socket_pair() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let made = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if made != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded, so both are open descriptors that
    // nothing else owns.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(reader), File::from(writer)))
}
