//! Live capture through libpcap, and the privileges it takes.
//!
//! [`LiveCapture`] opens an interface in immediate mode (each packet is
//! handed over as it arrives, not when a buffer fills) with a short read
//! timeout, so that the thread reading it can notice it should stop. Its
//! drop counters come from libpcap's statistics and are kept apart: drops
//! in the kernel's buffer (`ps_drop`) and drops by the interface or its
//! driver (`ps_ifdrop`). Drops on kwire's own queue are counted by whoever
//! owns the queue.
//!
//! Capturing needs the CAP_NET_RAW capability (CAP_NET_ADMIN too on some
//! interfaces). Without it the error says so and gives the `setcap` line.
//! Once the capture is open, [`drop_privileges`] gives up every capability
//! (capabilities are per thread: call it before starting other threads).

use std::fmt;

use bytes::Bytes;

use super::{LinkType, RawPacket};

/// The command that lets kwire capture without running as root.
pub const SETCAP_HINT: &str = "sudo setcap cap_net_raw,cap_net_admin=eip $(which kwire)";

/// How to open a live capture.
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    /// The interface; None picks [`default_interface`].
    pub interface: Option<String>,
    /// A BPF filter expression (`tcp port 9092`); None captures all TCP.
    pub bpf: Option<String>,
    /// Bytes kept of each packet; 0 keeps them whole.
    pub snaplen: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No permission to capture: names what is missing and how to grant it.
    #[error(
        "cannot capture on {interface}: permission denied ({message}).\n\
         Capturing needs the CAP_NET_RAW capability (and CAP_NET_ADMIN on some \
         interfaces). Run kwire as root, or grant them to the binary once:\n  {SETCAP_HINT}"
    )]
    Permission { interface: String, message: String },
    #[error("no interface to capture on ({0}); name one with -i")]
    NoInterface(String),
    #[error("cannot open interface {interface}: {message}")]
    Open { interface: String, message: String },
    #[error("invalid capture filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("capture on {interface} failed: {message}")]
    Read { interface: String, message: String },
}

/// Packets libpcap dropped, each cause apart, since the capture opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapDrops {
    pub received: u64,
    /// Dropped because the kernel's buffer was full (`ps_drop`).
    pub kernel: u64,
    /// Dropped by the interface or its driver (`ps_ifdrop`).
    pub interface: u64,
}

/// An open live capture.
pub struct LiveCapture {
    capture: pcap::Capture<pcap::Active>,
    interface: String,
    link: LinkType,
    next_index: u64,
    /// libpcap's counters are 32 bits: the last values read, and the sums.
    last: (u32, u32, u32),
    drops: PcapDrops,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("link", &self.link)
            .finish()
    }
}

fn pcap_message(error: pcap::Error) -> String {
    match error {
        pcap::Error::PcapError(message) => message,
        other => other.to_string(),
    }
}

fn is_permission(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("permission") || lower.contains("not permitted")
}

/// The interface kwire captures on when none is named: `any` on Linux when
/// libpcap offers it (every interface, loopback included), else the first
/// interface that is up and not loopback, else the first that is up.
pub fn default_interface() -> Result<String, LiveError> {
    let devices =
        pcap::Device::list().map_err(|error| LiveError::NoInterface(pcap_message(error)))?;
    if cfg!(target_os = "linux") && devices.iter().any(|d| d.name == "any") {
        return Ok("any".to_owned());
    }
    let up = |d: &&pcap::Device| d.flags.is_up();
    devices
        .iter()
        .filter(up)
        .find(|d| !d.flags.is_loopback())
        .or_else(|| devices.iter().find(up))
        .map(|d| d.name.clone())
        .ok_or_else(|| LiveError::NoInterface("libpcap lists no interface that is up".to_owned()))
}

impl LiveCapture {
    pub fn open(options: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let interface = match &options.interface {
            Some(name) => name.clone(),
            None => default_interface()?,
        };
        let failed = |error: pcap::Error| {
            let message = pcap_message(error);
            if is_permission(&message) {
                LiveError::Permission {
                    interface: interface.clone(),
                    message,
                }
            } else {
                LiveError::Open {
                    interface: interface.clone(),
                    message,
                }
            }
        };
        let snaplen = match options.snaplen {
            0 => 262_144,
            n => i32::try_from(n).unwrap_or(262_144),
        };
        let mut capture = pcap::Capture::from_device(interface.as_str())
            .map_err(failed)?
            .immediate_mode(true)
            .promisc(false)
            .snaplen(snaplen)
            .buffer_size(32 << 20)
            .precision(pcap::Precision::Nano)
            // Reads return at least every 100 ms, so that the reading
            // thread sees a request to stop.
            .timeout(100)
            .open()
            .map_err(failed)?
            // Linux ignores the timeout in immediate mode and a read could
            // block for ever on a quiet interface: reads do not block, and
            // `next_packet` waits on the descriptor with its own timeout.
            .setnonblock()
            .map_err(failed)?;
        let filter = options.bpf.clone().unwrap_or_else(|| "tcp".to_owned());
        capture
            .filter(&filter, true)
            .map_err(|error| LiveError::Filter {
                filter,
                message: pcap_message(error),
            })?;
        let link = LinkType::from_number(capture.get_datalink().0);
        Ok(LiveCapture {
            capture,
            interface,
            link,
            next_index: 0,
            last: (0, 0, 0),
            drops: PcapDrops::default(),
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// The next packet, or None when none came within 100 ms.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket>, LiveError> {
        for attempt in 0..2 {
            match self.capture.next_packet() {
                Ok(packet) => {
                    let header = *packet.header;
                    let data = Bytes::copy_from_slice(packet.data);
                    let index = self.next_index;
                    self.next_index = self.next_index.saturating_add(1);
                    // With Precision::Nano the "usec" field holds nanoseconds.
                    #[allow(clippy::useless_conversion)]
                    let (seconds, nanos) =
                        (i64::from(header.ts.tv_sec), i64::from(header.ts.tv_usec));
                    return Ok(Some(RawPacket {
                        index,
                        ts_ns: seconds.saturating_mul(1_000_000_000).saturating_add(nanos),
                        caplen: u32::try_from(data.len()).unwrap_or(header.caplen),
                        origlen: header.len,
                        data,
                    }));
                }
                Err(pcap::Error::TimeoutExpired) if attempt == 0 => self.wait_readable(100),
                Err(pcap::Error::TimeoutExpired) => return Ok(None),
                Err(error) => {
                    return Err(LiveError::Read {
                        interface: self.interface.clone(),
                        message: pcap_message(error),
                    })
                }
            }
        }
        Ok(None)
    }

    /// Waits until the capture's descriptor is readable, at most `ms`.
    fn wait_readable(&self, ms: i32) {
        use std::os::fd::AsRawFd;
        let mut fds = libc::pollfd {
            fd: self.capture.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        unsafe {
            libc::poll(&mut fds, 1, ms);
        }
    }

    /// libpcap's drop counters, summed across their 32-bit wraps.
    pub fn drops(&mut self) -> PcapDrops {
        if let Ok(stat) = self.capture.stats() {
            let (received, dropped, if_dropped) = self.last;
            self.drops.received += u64::from(stat.received.wrapping_sub(received));
            self.drops.kernel += u64::from(stat.dropped.wrapping_sub(dropped));
            self.drops.interface += u64::from(stat.if_dropped.wrapping_sub(if_dropped));
            self.last = (stat.received, stat.dropped, stat.if_dropped);
        }
        self.drops
    }
}

/// What [`drop_privileges`] did, to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivilegeReport {
    /// Capabilities were held and are now all given up.
    pub dropped: bool,
    /// Running as root: the capabilities are gone but the user id stays 0.
    pub root: bool,
    /// Why dropping failed, if it did.
    pub error: Option<String>,
}

impl fmt::Display for PrivilegeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, self.dropped, self.root) {
            (Some(error), _, _) => write!(f, "could not give up capabilities: {error}"),
            (None, true, true) => f.write_str(
                "capture open; every capability given up (still user id 0: run as a \
                 user with setcap rather than as root)",
            ),
            (None, true, false) => f.write_str("capture open; every capability given up"),
            (None, false, _) => f.write_str("capture open; no capability held"),
        }
    }
}

#[cfg(target_os = "linux")]
mod caps {
    /// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit words.
    const VERSION_3: u32 = 0x2008_0522;
    /// The highest capability number current kernels know, with room.
    const LAST_CAP: libc::c_ulong = 63;

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// The calling thread's permitted set is not empty.
    pub fn held() -> Result<bool, String> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget writes two `Data` entries for version 3, which
        // `data` has room for; `header` is a valid, initialised struct.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(data.iter().any(|d| d.permitted != 0 || d.effective != 0))
    }

    /// Gives up every capability of the calling thread, for good.
    pub fn drop_all() -> Result<(), String> {
        // SAFETY: prctl with integer arguments only; failures are reported
        // through the return value and do not touch memory.
        unsafe {
            // Exec'd programs cannot gain privileges back (setuid, file caps).
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            );
            // The bounding set needs CAP_SETPCAP; without it this fails,
            // harmlessly: the sets below are what matters.
            for cap in 0..=LAST_CAP {
                libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
            }
        }
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let data = [Data::default(); 2];
        // SAFETY: capset reads two `Data` entries for version 3.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(())
    }
}

/// Gives up every capability once the capture is open: reading an open
/// capture needs none. Capabilities are per thread, so this must run
/// before kwire starts its other threads (they inherit the empty sets).
pub fn drop_privileges() -> PrivilegeReport {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    #[cfg(target_os = "linux")]
    {
        match caps::held() {
            Ok(false) => PrivilegeReport {
                dropped: false,
                root,
                error: None,
            },
            Ok(true) => match caps::drop_all() {
                Ok(()) => PrivilegeReport {
                    dropped: !caps::held().unwrap_or(true),
                    root,
                    error: None,
                },
                Err(error) => PrivilegeReport {
                    dropped: false,
                    root,
                    error: Some(error),
                },
            },
            Err(error) => PrivilegeReport {
                dropped: false,
                root,
                error: Some(error),
            },
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        PrivilegeReport {
            dropped: false,
            root,
            error: root.then(|| "giving up root is not supported on this system".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_name_the_capability_and_the_setcap_line() {
        let error = LiveError::Permission {
            interface: "eth0".to_owned(),
            message: "socket: Operation not permitted".to_owned(),
        };
        let text = error.to_string();
        assert!(text.contains("CAP_NET_RAW"), "{text}");
        assert!(text.contains(SETCAP_HINT), "{text}");
        assert!(is_permission("socket: Operation not permitted"));
        assert!(is_permission(
            "You don't have permission to capture on that device"
        ));
        assert!(!is_permission("No such device exists"));
    }
}
