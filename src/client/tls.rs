//! TLS for the conformance client: what a connection's bytes travel over.
//!
//! A [`Stream`] is either a plain TCP socket or rustls (ring provider) over
//! one. Both are blocking and keep the socket's read and write timeouts:
//! rustls reads and writes the socket itself, so a timeout surfaces as the
//! same `WouldBlock`/`TimedOut` error as on a plain socket, and what the
//! [`super::Connection`] reads and writes (and hands to its tap) is the
//! decrypted Kafka bytes. [`TlsConfig`] is built once per run from
//! [`TlsOptions`] (CA bundle or the system's roots, server name, client
//! certificate, or no verification at all) and shared by every connection.
//! Handshake failures are explained in one line that names the likely
//! cause (RFC 8446 section 6.2 alerts, certificate checks by webpki).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme, StreamOwned,
};

/// What the command line asked for.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// A PEM bundle of CA certificates to trust instead of the system's.
    pub ca: Option<PathBuf>,
    /// The name to verify the broker's certificate against (and send as
    /// SNI) instead of the host of each address.
    pub server_name: Option<String>,
    /// A client certificate chain (PEM) for mutual TLS, with its key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Accept any certificate: encryption without authentication.
    pub insecure: bool,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read {}: {reason}", .path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{} holds no PEM {what}", .path.display())]
    Empty { path: PathBuf, what: &'static str },
    #[error("no CA certificate in {}: {reason}", .path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("no system CA certificates found ({0}): install ca-certificates or pass a CA bundle")]
    NoSystemRoots(String),
    #[error("the client certificate needs its key, and the key its certificate")]
    HalfClientIdentity,
    #[error("{name:?} is not a valid TLS server name (a DNS name or an IP address)")]
    BadServerName { name: String },
    #[error("cannot use the client certificate: {0}")]
    ClientCert(rustls::Error),
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// Ready-to-use TLS settings, cheap to clone (one per connection).
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    insecure: bool,
    client_cert: bool,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl TlsConfig {
    pub fn new(options: &TlsOptions) -> Result<TlsConfig, TlsConfigError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Setup)?;
        let builder = if options.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            builder.with_root_certificates(roots(options.ca.as_deref())?)
        };
        let mut config = match (&options.cert, &options.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .map_err(TlsConfigError::ClientCert)?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsConfigError::HalfClientIdentity),
        };
        // Every connection starts with a full handshake: a case's outcome
        // then never depends on a session an earlier case left behind,
        // and servers that mishandle resumption under client
        // authentication (OpenSSL without a session id context answers
        // internal_error) still work.
        config.resumption = rustls::client::Resumption::disabled();
        let server_name = match &options.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|_| TlsConfigError::BadServerName { name: name.clone() })?,
            ),
            None => None,
        };
        Ok(TlsConfig {
            config: Arc::new(config),
            server_name,
            insecure: options.insecure,
            client_cert: options.cert.is_some(),
        })
    }

    /// How reports name this transport.
    pub fn describe(&self) -> String {
        let mut text = "TLS".to_owned();
        if self.client_cert {
            text.push_str(", client certificate");
        }
        if self.insecure {
            text.push_str(", certificate NOT verified: --tls-insecure");
        }
        text
    }

    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The name to verify for `addr` (`host:port`): the configured one,
    /// else the host.
    fn server_name(&self, addr: &str) -> Result<ServerName<'static>, String> {
        if let Some(name) = &self.server_name {
            return Ok(name.clone());
        }
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_owned()).map_err(|_| {
            format!("{host:?} is not a valid TLS server name: give one with --tls-server-name")
        })
    }

    /// Runs the TLS handshake on a connected socket, within `timeout`.
    pub fn handshake(
        &self,
        mut tcp: TcpStream,
        addr: &str,
        timeout: Duration,
    ) -> Result<Stream, String> {
        let name = self.server_name(addr)?;
        let shown = show_name(&name);
        let mut tls = ClientConnection::new(self.config.clone(), name)
            .map_err(|error| format!("cannot start TLS: {error}"))?;
        let deadline = Instant::now() + timeout;
        // Each turn sends or receives handshake records; the deadline
        // bounds the waiting.
        while tls.is_handshaking() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(no_answer(timeout));
            }
            for set in [TcpStream::set_read_timeout, TcpStream::set_write_timeout] {
                set(&tcp, Some(left)).map_err(|error| error.to_string())?;
            }
            if let Err(error) = tls.complete_io(&mut tcp) {
                return Err(explain_handshake(&error, &shown, timeout));
            }
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(tls, tcp))))
    }
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in read_certs(path)? {
                store.add(cert).map_err(|error| TlsConfigError::BadCa {
                    path: path.to_owned(),
                    reason: error.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "the store is empty".to_owned(), ToString::to_string);
                return Err(TlsConfigError::NoSystemRoots(why));
            }
        }
    }
    Ok(store)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let read_error = |error: rustls::pki_types::pem::Error| TlsConfigError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    if certs.is_empty() {
        return Err(TlsConfigError::Empty {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::Empty {
            path: path.to_owned(),
            what: "private key",
        },
        error => TlsConfigError::Read {
            path: path.to_owned(),
            reason: error.to_string(),
        },
    })
}

fn show_name(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

fn no_answer(timeout: Duration) -> String {
    format!(
        "no TLS answer within {} ms: is this a plaintext listener? (drop --tls)",
        timeout.as_millis()
    )
}

/// Why a read or write on an established TLS connection failed, when
/// TLS is the reason (an alert from the broker, a corrupt record). Under
/// TLS 1.3 a broker that wants a client certificate says so only after
/// the client's side of the handshake is done: on the first read.
pub fn explain_stream_error(error: &io::Error) -> Option<String> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|tls| explain_tls(tls, ""))
}

/// One line on why a handshake failed, with what to do about it.
fn explain_handshake(error: &io::Error, name: &str, timeout: Duration) -> String {
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return explain_tls(tls, name);
    }
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => no_answer(timeout),
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => {
            "the broker closed the connection during the TLS handshake: \
             is this a plaintext listener (drop --tls), or does it want a client \
             certificate (--tls-cert, --tls-key)?"
                .to_owned()
        }
        _ => format!("connection error during the TLS handshake: {error}"),
    }
}

fn explain_tls(error: &rustls::Error, name: &str) -> String {
    use rustls::Error as E;
    match error {
        E::InvalidCertificate(certificate) => explain_certificate(certificate, name),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::PeerSentOversizedRecord => {
            format!("the broker did not answer in TLS ({error}): is this a plaintext listener? (drop --tls)")
        }
        E::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::HandshakeFailure
            | AlertDescription::AccessDenied),
        ) => format!(
            "the broker refused the handshake (alert {alert:?}): it may want a client \
             certificate it trusts (--tls-cert, --tls-key)"
        ),
        E::AlertReceived(alert) => format!("the broker refused the handshake (alert {alert:?})"),
        E::PeerIncompatible(why) => {
            format!("the broker offers no TLS version or cipher kwire supports ({why:?})")
        }
        other => format!("TLS error: {other}"),
    }
}

fn explain_certificate(error: &CertificateError, name: &str) -> String {
    use CertificateError as C;
    match error {
        C::UnknownIssuer => "the broker's certificate is signed by an unknown issuer: \
             pass its CA bundle with --tls-ca FILE"
            .to_owned(),
        C::NotValidForName => {
            format!(
                "the broker's certificate is not valid for {name:?}: use --tls-server-name NAME"
            )
        }
        C::NotValidForNameContext { presented, .. } => format!(
            "the broker's certificate is not valid for {name:?} (it names {}): \
             use --tls-server-name NAME",
            presented
                .iter()
                .map(|name| show_presented(name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        C::Expired | C::ExpiredContext { .. } => {
            format!("the broker's certificate has expired ({error})")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            format!("the broker's certificate is not valid yet ({error})")
        }
        other => format!("the broker's certificate is not acceptable: {other}"),
    }
}

/// A name as webpki reports it (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`), without the wrapping.
fn show_presented(name: &str) -> &str {
    for (open, close) in [("DnsName(\"", "\")"), ("IpAddress(", ")")] {
        if let Some(inner) = name
            .strip_prefix(open)
            .and_then(|rest| rest.strip_suffix(close))
        {
            return inner;
        }
    }
    name
}

/// A connection's byte stream: plain TCP, or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket underneath, for timeouts and addresses.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Ends the sending half. Over TLS a close_notify alert goes first
    /// (RFC 8446 section 6.1), so the broker sees a clean end of data.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            tls.conn.send_close_notify();
            tls.flush()?;
        }
        self.tcp().shutdown(Shutdown::Write)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// Whether bytes a plaintext connection received start like a TLS record
/// (RFC 8446 section 5.1: content type 21 alert or 22 handshake, then a
/// legacy version 3.x): the broker expected a TLS client.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [21 | 22, 3, 0..=4, ..])
}

/// `--tls-insecure`: trusts any certificate, but still checks that the
/// handshake is signed by the key of the certificate presented.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_comes_from_the_host_unless_given() {
        let config = TlsConfig::new(&TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        })
        .expect("config");
        let name = |addr| config.server_name(addr).map(|name| show_name(&name));
        assert_eq!(name("127.0.0.1:9093").as_deref(), Ok("127.0.0.1"));
        assert_eq!(name("[::1]:9093").as_deref(), Ok("::1"));
        assert_eq!(
            name("broker-1.example:9093").as_deref(),
            Ok("broker-1.example")
        );
        assert!(name("bad_name!:9093").is_err());
        let named = TlsConfig::new(&TlsOptions {
            insecure: true,
            server_name: Some("kafka.example".to_owned()),
            ..TlsOptions::default()
        })
        .expect("config");
        assert_eq!(
            named
                .server_name("127.0.0.1:1")
                .map(|name| show_name(&name)),
            Ok("kafka.example".to_owned())
        );
    }

    #[test]
    fn bad_settings_say_which_file_and_why() {
        let missing = TlsConfig::new(&TlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        });
        let text = missing.map(|_| ()).unwrap_err().to_string();
        assert!(
            text.starts_with("cannot read /nonexistent/ca.pem"),
            "{text}"
        );
        let half = TlsConfig::new(&TlsOptions {
            insecure: true,
            cert: Some("/nonexistent/cert.pem".into()),
            ..TlsOptions::default()
        });
        assert!(matches!(half, Err(TlsConfigError::HalfClientIdentity)));
        let dir = std::env::temp_dir().join(format!("kwire-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let text = TlsConfig::new(&TlsOptions {
            ca: Some(empty.clone()),
            ..TlsOptions::default()
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert_eq!(
            text,
            format!("{} holds no PEM certificate", empty.display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(show_presented("DnsName(\"localhost\")"), "localhost");
        assert_eq!(show_presented("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(show_presented("URI(x)"), "URI(x)");
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(looks_like_tls(&[21, 3, 3, 0, 2, 2, 70]));
        assert!(looks_like_tls(&[22, 3, 1, 0, 200]));
        // A Kafka frame of 1 KiB.
        assert!(!looks_like_tls(&[0, 0, 4, 0]));
        assert!(!looks_like_tls(&[21]));
    }
}
