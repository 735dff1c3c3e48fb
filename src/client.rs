//! A small blocking Kafka client for scripted conversations: the conformance
//! runner's only way to talk to a broker.
//!
//! One [`Connection`] is one TCP connection with connect, read and write
//! timeouts. It numbers requests with correlation ids, remembers which
//! requests wait for a response (Kafka answers in order on a connection,
//! protocol guide "Network": "the server guarantees that on a single TCP
//! connection, requests will be processed in the order they are sent and
//! responses will return in that order as well"), and checks that every
//! response carries the id it expects. It can also send bytes that are not a
//! valid request and report how the broker reacted (a response, a close, or
//! silence), and authenticate with SASL PLAIN or SCRAM (KIP-43, KIP-84,
//! KIP-152) in [`sasl`].
//!
//! A connection runs over TLS when [`ConnectOptions::tls`] says so
//! ([`tls`]): the handshake is part of connecting, and everything else
//! sees the decrypted Kafka bytes.
//!
//! Every byte sent or received can be handed to a [`Tap`]; [`pcap::PcapTap`]
//! turns them into synthetic Ethernet/IP/TCP packets so a run can be opened
//! in `kwire read` or Wireshark (over TLS, the decrypted bytes). Nothing
//! here loops without a bound: reads stop at a deadline and at the
//! frame-size limit.

pub mod pcap;
pub mod sasl;
pub mod tls;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{DecodeOptions, EncodeError};
use crate::frame::{self, DecodedFrame, Deframe};
use crate::schema;
use crate::value::{Struct, Value};
use tls::{Stream, TlsConfig};

/// The largest response frame the client accepts by default: well above
/// what a conformance case fetches, well below memory trouble.
pub const DEFAULT_MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// How a connection is opened and how long it waits.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Longest wait for the TCP handshake, per resolved address, and
    /// then for the TLS handshake.
    pub connect_timeout: Duration,
    /// Longest wait for a response (or for a write to drain).
    pub io_timeout: Duration,
    /// The `client_id` of every request header.
    pub client_id: String,
    /// Largest frame accepted from the broker, length prefix excluded.
    pub max_frame: usize,
    /// Receives a copy of every byte, for `--record`.
    pub tap: Option<Arc<dyn Tap>>,
    /// Run every connection over TLS with these settings.
    pub tls: Option<TlsConfig>,
}

impl ConnectOptions {
    /// How reports name the transport: `plaintext` or `TLS` (with notes).
    pub fn transport(&self) -> String {
        self.tls
            .as_ref()
            .map_or_else(|| "plaintext".to_owned(), TlsConfig::describe)
    }
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
            client_id: "kwire".to_owned(),
            max_frame: DEFAULT_MAX_RESPONSE,
            tap: None,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("client_id", &self.client_id)
            .field("max_frame", &self.max_frame)
            .field("tap", &self.tap.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

/// The two ends of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// Who sent some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Observes the traffic of every connection that carries it. Calls for one
/// connection come in order; calls for different connections may
/// interleave (and come from different threads).
pub trait Tap: Send + Sync {
    /// The TCP handshake completed.
    fn opened(&self, flow: Flow);
    /// `data` went from `from` to the other side.
    fn data(&self, flow: Flow, from: Side, data: &[u8]);
    /// The connection ended; `by` closed it first (the broker when a read
    /// saw end-of-stream, the client otherwise).
    fn closed(&self, flow: Flow, by: Side);
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot resolve {addr}: {reason}")]
    Resolve { addr: String, reason: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// The TLS handshake failed, or a plaintext connection met a TLS
    /// listener; `reason` says which and what to do.
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("no answer within {} ms while {what}", .after.as_millis())]
    Timeout { what: &'static str, after: Duration },
    /// The broker closed the connection (end-of-stream or reset);
    /// `partial` bytes of an unfinished frame had arrived.
    #[error("the broker closed the connection{}", partial_note(*.partial))]
    Closed { partial: usize },
    #[error("the broker sent a frame length of {0}, which is negative or over the limit")]
    BadLength(i32),
    #[error("connection error: {0}")]
    Io(#[source] io::Error),
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    #[error("API key {0} is unknown to kwire")]
    UnknownApi(i16),
    /// A response whose correlation id is not the one of the oldest
    /// request waiting: Kafka answers in order, so this is a broker bug.
    #[error("response correlation id {} where {expected} was due{}", show_id(*.actual),
        if *.answers_no_response { " (it answers a request sent expecting no response)" } else { "" })]
    CorrelationMismatch {
        expected: i32,
        actual: Option<i32>,
        /// The id is one of a request sent with [`Connection::send_no_response`]:
        /// the broker answered what it should not have (Produce acks=0).
        answers_no_response: bool,
        frame: Box<DecodedFrame>,
    },
    #[error("no request on this connection is waiting for a response")]
    NothingPending,
    /// The broker answered something kwire cannot use.
    #[error("{0}")]
    Protocol(String),
    #[error("SASL {mechanism}: {reason}")]
    Sasl { mechanism: String, reason: String },
}

fn partial_note(partial: usize) -> String {
    if partial == 0 {
        String::new()
    } else {
        format!(" after {partial} bytes of an unfinished frame")
    }
}

fn show_id(id: Option<i32>) -> String {
    id.map_or_else(|| "(none)".to_owned(), |id| id.to_string())
}

impl ClientError {
    /// Whether the error means the connection is gone.
    pub fn is_closed(&self) -> bool {
        matches!(self, ClientError::Closed { .. })
    }
}

/// A request that waits for its response.
#[derive(Clone, Copy, Debug)]
struct Pending {
    correlation_id: i32,
    api_key: i16,
    /// The version in the request header.
    api_version: i16,
}

/// What the broker did after some bytes: see [`Connection::wait_for_reaction`].
#[derive(Debug)]
pub enum Reaction {
    /// A whole frame arrived (length prefix included).
    Frame(Bytes),
    /// The connection was closed (or reset) by the broker.
    Closed,
    /// Nothing happened before the deadline; the connection is still open.
    Silence,
}

/// One TCP connection to a broker, plaintext or TLS.
pub struct Connection {
    stream: Stream,
    flow: Flow,
    /// The address as given (`host:port`), for messages.
    addr: String,
    options: ConnectOptions,
    next_correlation_id: i32,
    pending: VecDeque<Pending>,
    /// The latest correlation ids sent expecting no response.
    unanswered: VecDeque<i32>,
    /// Bytes received and not yet cut into frames.
    buffer: Vec<u8>,
    closed: bool,
    /// Who closed first, once known.
    closed_by: Option<Side>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("flow", &self.flow)
            .field("pending", &self.pending.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// How many no-response correlation ids a connection remembers.
const MAX_UNANSWERED: usize = 64;

/// Largest read per system call.
const READ_CHUNK: usize = 64 * 1024;

impl Connection {
    /// Connects to `addr` (`host:port`), trying each address it resolves to
    /// in turn, each within the connect timeout.
    pub fn connect(addr: &str, options: ConnectOptions) -> Result<Connection, ClientError> {
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|error| ClientError::Resolve {
                addr: addr.to_owned(),
                reason: error.to_string(),
            })?
            .collect();
        let mut last_error = None;
        for target in resolved {
            match TcpStream::connect_timeout(&target, options.connect_timeout) {
                Ok(stream) => return Connection::from_stream(stream, addr, options),
                Err(error) => last_error = Some(error),
            }
        }
        Err(ClientError::Connect {
            addr: addr.to_owned(),
            source: last_error.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address")
            }),
        })
    }

    fn from_stream(
        tcp: TcpStream,
        addr: &str,
        options: ConnectOptions,
    ) -> Result<Connection, ClientError> {
        let connect_error = |source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        };
        tcp.set_nodelay(true).map_err(connect_error)?;
        let flow = Flow {
            client: tcp.local_addr().map_err(connect_error)?,
            server: tcp.peer_addr().map_err(connect_error)?,
        };
        let stream = match &options.tls {
            Some(tls) => tls
                .handshake(tcp, addr, options.connect_timeout)
                .map_err(|reason| ClientError::Tls {
                    addr: addr.to_owned(),
                    reason,
                })?,
            None => Stream::Plain(tcp),
        };
        stream
            .tcp()
            .set_write_timeout(Some(nonzero(options.io_timeout)))
            .map_err(connect_error)?;
        if let Some(tap) = &options.tap {
            tap.opened(flow);
        }
        Ok(Connection {
            stream,
            flow,
            addr: addr.to_owned(),
            options,
            next_correlation_id: 1,
            pending: VecDeque::new(),
            unanswered: VecDeque::new(),
            buffer: Vec::new(),
            closed: false,
            closed_by: None,
        })
    }

    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// The address this connection was opened to, as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a read or write has seen the broker close the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many requests still wait for their response.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn io_timeout(&self) -> Duration {
        self.options.io_timeout
    }

    /// Sends a request and queues it for [`Connection::receive`]. Returns
    /// its correlation id.
    pub fn send(&mut self, api_key: i16, version: i16, body: &Struct) -> Result<i32, ClientError> {
        self.send_versioned(api_key, version, version, body, true)
    }

    /// Sends a request for which the broker sends no response (a Produce
    /// with acks=0, protocol guide "Produce API"). It is not queued.
    pub fn send_no_response(
        &mut self,
        api_key: i16,
        version: i16,
        body: &Struct,
    ) -> Result<i32, ClientError> {
        self.send_versioned(api_key, version, version, body, false)
    }

    /// Sends a request whose header says `header_version` while the body is
    /// encoded at `body_version`: the way to ask for a version kwire cannot
    /// encode (above a broker's maximum, to provoke UNSUPPORTED_VERSION).
    pub fn send_versioned(
        &mut self,
        api_key: i16,
        header_version: i16,
        body_version: i16,
        body: &Struct,
        expect_response: bool,
    ) -> Result<i32, ClientError> {
        if schema::api(api_key).is_none() {
            return Err(ClientError::UnknownApi(api_key));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut header = Struct::default();
        header.push("correlation_id", Value::Int(i64::from(correlation_id)));
        header.push("client_id", Value::String(self.options.client_id.clone()));
        let mut bytes = frame::encode_request(api_key, body_version, &header, body)?;
        if header_version != body_version {
            // Length (4 bytes), then request_api_key (2), then
            // request_api_version (2): the same place in every header version.
            if let Some(slot) = bytes.get_mut(6..8) {
                slot.copy_from_slice(&header_version.to_be_bytes());
            }
        }
        self.write_all(&bytes)?;
        if expect_response {
            self.pending.push_back(Pending {
                correlation_id,
                api_key,
                api_version: header_version,
            });
        } else {
            if self.unanswered.len() >= MAX_UNANSWERED {
                self.unanswered.pop_front();
            }
            self.unanswered.push_back(correlation_id);
        }
        Ok(correlation_id)
    }

    /// Sends bytes as they are: no framing, no correlation bookkeeping.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write_all(bytes)
    }

    /// Closes the sending half: the broker reads end-of-stream after what
    /// was sent (a truncated frame then stays truncated).
    pub fn shutdown_write(&mut self) -> Result<(), ClientError> {
        self.stream.shutdown_write().map_err(ClientError::Io)
    }

    /// Receives the response to the oldest request still waiting for one,
    /// within the I/O timeout.
    pub fn receive(&mut self) -> Result<DecodedFrame, ClientError> {
        self.receive_within(self.options.io_timeout)
    }

    /// [`Connection::receive`] with its own timeout.
    pub fn receive_within(&mut self, timeout: Duration) -> Result<DecodedFrame, ClientError> {
        let pending = *self.pending.front().ok_or(ClientError::NothingPending)?;
        let deadline = Instant::now() + timeout;
        let raw = self.read_frame(deadline, "waiting for a response")?;
        self.pending.pop_front();
        let decoded = decode_response(raw, pending.api_key, pending.api_version);
        if decoded.correlation_id != Some(pending.correlation_id) {
            let answers_no_response = decoded
                .correlation_id
                .is_some_and(|id| self.unanswered.contains(&id));
            return Err(ClientError::CorrelationMismatch {
                expected: pending.correlation_id,
                actual: decoded.correlation_id,
                answers_no_response,
                frame: Box::new(decoded),
            });
        }
        Ok(decoded)
    }

    /// Sends a request and receives its response.
    pub fn request(
        &mut self,
        api_key: i16,
        version: i16,
        body: &Struct,
    ) -> Result<DecodedFrame, ClientError> {
        self.send(api_key, version, body)?;
        self.receive()
    }

    /// Waits up to `timeout` for the broker to answer or close. Used after
    /// malformed input, and after requests the broker should refuse by
    /// closing (KIP-152: requests before authentication).
    pub fn wait_for_reaction(&mut self, timeout: Duration) -> Result<Reaction, ClientError> {
        let deadline = Instant::now() + timeout;
        match self.read_frame(deadline, "waiting for the broker to react") {
            Ok(frame) => {
                self.pending.pop_front();
                Ok(Reaction::Frame(frame))
            }
            Err(ClientError::Closed { .. }) => Ok(Reaction::Closed),
            Err(ClientError::Timeout { .. }) => Ok(Reaction::Silence),
            Err(error) => Err(error),
        }
    }

    /// Reads one whole frame, length prefix included, before `deadline`.
    fn read_frame(&mut self, deadline: Instant, what: &'static str) -> Result<Bytes, ClientError> {
        let started = Instant::now();
        let mut chunk = vec![0u8; READ_CHUNK];
        // Each turn either returns or appends at least one byte, and the
        // frame is bounded by max_frame; the deadline bounds waiting.
        loop {
            match frame::next_frame(&self.buffer, self.options.max_frame) {
                Deframe::Frame(size) => {
                    let rest = self.buffer.split_off(size);
                    let frame = std::mem::replace(&mut self.buffer, rest);
                    return Ok(Bytes::from(frame));
                }
                Deframe::Malformed(_)
                    if !self.stream.is_tls() && tls::looks_like_tls(&self.buffer) =>
                {
                    return Err(ClientError::Tls {
                        addr: self.addr.clone(),
                        reason: "the broker answered with a TLS record: it is a TLS listener \
                                 (add --tls)"
                            .to_owned(),
                    })
                }
                Deframe::Malformed(claimed) => return Err(ClientError::BadLength(claimed)),
                Deframe::NeedMore(_) => {}
            }
            if self.closed {
                return Err(ClientError::Closed {
                    partial: self.buffer.len(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    what,
                    after: now - started,
                });
            }
            self.stream
                .tcp()
                .set_read_timeout(Some(nonzero(deadline - now)))
                .map_err(ClientError::Io)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => self.mark_closed(Side::Server),
                Ok(read) => {
                    let data = chunk.get(..read).unwrap_or_default();
                    if let Some(tap) = &self.options.tap {
                        tap.data(self.flow, Side::Server, data);
                    }
                    self.buffer.extend_from_slice(data);
                }
                Err(error) if is_timeout(&error) => {
                    return Err(ClientError::Timeout {
                        what,
                        after: started.elapsed(),
                    })
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if is_reset(&error) => self.mark_closed(Side::Server),
                Err(error) => return Err(self.io_error(error)),
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed { partial: 0 });
        }
        match self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
        {
            Ok(()) => {
                if let Some(tap) = &self.options.tap {
                    tap.data(self.flow, Side::Client, bytes);
                }
                Ok(())
            }
            Err(error) if is_reset(&error) => {
                self.mark_closed(Side::Server);
                Err(ClientError::Closed { partial: 0 })
            }
            Err(error) if is_timeout(&error) => Err(ClientError::Timeout {
                what: "sending",
                after: self.options.io_timeout,
            }),
            Err(error) => Err(self.io_error(error)),
        }
    }

    /// An I/O error, explained when TLS is behind it.
    fn io_error(&self, error: io::Error) -> ClientError {
        match tls::explain_stream_error(&error) {
            Some(reason) => ClientError::Tls {
                addr: self.addr.clone(),
                reason,
            },
            None => ClientError::Io(error),
        }
    }

    fn mark_closed(&mut self, by: Side) {
        if !self.closed {
            self.closed = true;
            self.closed_by = Some(by);
            if let Some(tap) = &self.options.tap {
                tap.closed(self.flow, by);
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The socket closes when the stream drops; the tap hears of it.
        self.mark_closed(Side::Client);
    }
}

/// Decodes a response at the version the request carried, or at the
/// highest version kwire knows when the request asked for more (the body
/// of an UNSUPPORTED_VERSION answer is then read as its fallback layout).
fn decode_response(raw: Bytes, api_key: i16, api_version: i16) -> DecodedFrame {
    let known_max = schema::api(api_key).map_or(api_version, |api| api.response.valid.max);
    let mut decoded = frame::decode_response(
        raw,
        api_key,
        api_version.min(known_max),
        &DecodeOptions::default(),
    );
    decoded.api_version = api_version;
    decoded
}

fn nonzero(duration: Duration) -> Duration {
    duration.max(Duration::from_millis(1))
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// The API versions a broker advertises, from its ApiVersions response.
pub type Advertised = std::collections::BTreeMap<i16, schema::Versions>;

/// Asks the broker at `addr` which API versions it supports: ApiVersions
/// at the highest version kwire knows, taking the list a KIP-511
/// UNSUPPORTED_VERSION answer carries, and falling back to v0 on a new
/// connection when the broker closed instead of answering.
pub fn api_versions(addr: &str, options: &ConnectOptions) -> Result<Advertised, ClientError> {
    let api = schema::api(schema::API_VERSIONS_KEY)
        .ok_or(ClientError::UnknownApi(schema::API_VERSIONS_KEY))?;
    let mut connection = Connection::connect(addr, options.clone())?;
    let mut last_error = None;
    for version in [api.request.valid.max, 0] {
        if connection.is_closed() {
            connection = Connection::connect(addr, options.clone())?;
        }
        let body = api_versions_body(version)?;
        let frame = match connection.request(schema::API_VERSIONS_KEY, version, &body) {
            Ok(frame) => frame,
            Err(error) if error.is_closed() => {
                last_error = Some(error);
                continue;
            }
            Err(error) => return Err(error),
        };
        let advertised = advertised_from(&frame);
        if !advertised.is_empty() {
            // error_code NONE, or UNSUPPORTED_VERSION with the list filled
            // in (KIP-511): either way the list is the broker's.
            return Ok(advertised);
        }
        last_error = Some(ClientError::Protocol(format!(
            "the ApiVersions v{version} response lists no API{}",
            frame
                .error
                .as_ref()
                .map(|error| format!(" ({error})"))
                .unwrap_or_default()
        )));
    }
    Err(last_error.unwrap_or(ClientError::NothingPending))
}

/// The request body kwire sends as ApiVersions: the client software fields
/// of v3+ (KIP-511) name kwire.
pub fn api_versions_body(version: i16) -> Result<Struct, ClientError> {
    let api = schema::api(schema::API_VERSIONS_KEY)
        .ok_or(ClientError::UnknownApi(schema::API_VERSIONS_KEY))?;
    let json = serde_json::json!({
        "client_software_name": "kwire",
        "client_software_version": env!("CARGO_PKG_VERSION"),
    });
    Ok(crate::codec::message_from_json(
        api.request,
        version,
        &json,
    )?)
}

/// The `api_keys` list of an ApiVersions response.
pub fn advertised_from(frame: &DecodedFrame) -> Advertised {
    let mut out = Advertised::new();
    let Some(body) = frame.body.as_ref() else {
        return out;
    };
    for entry in body
        .get("api_keys")
        .map(Value::as_array)
        .unwrap_or_default()
    {
        let Some(entry) = entry.as_struct() else {
            continue;
        };
        let field = |name| entry.int(name).and_then(|value| i16::try_from(value).ok());
        if let (Some(key), Some(min), Some(max)) =
            (field("api_key"), field("min_version"), field("max_version"))
        {
            out.insert(key, schema::Versions::new(min, max));
        }
    }
    out
}
