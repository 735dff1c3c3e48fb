//! SASL messages as Kafka carries them: raw size-prefixed tokens after a
//! SaslHandshake v0 (KIP-43), or the `auth_bytes` of SaslAuthenticate
//! (KIP-152). This module turns one token into a small structure for the
//! mechanisms whose messages are text (PLAIN, RFC 4616; SCRAM, RFC 5802 and
//! KIP-84; OAUTHBEARER, RFC 7628 and KIP-255) and keeps everything else
//! opaque. Passwords, proofs, server signatures and bearer tokens are
//! redacted unless the caller asks to see them; user names, nonces, salts
//! and mechanism names are not secret and are always shown.

use std::fmt;

use serde::{Serialize, Serializer};

/// A credential, or its size only when secrets are hidden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    Redacted { len: usize },
    Shown(String),
}

impl Secret {
    fn new(bytes: &[u8], show: bool) -> Secret {
        if show {
            Secret::Shown(String::from_utf8_lossy(bytes).into_owned())
        } else {
            Secret::Redacted { len: bytes.len() }
        }
    }

    /// Opaque bytes are shown as hex: they are rarely text.
    fn hex(bytes: &[u8], show: bool) -> Secret {
        if show {
            Secret::Shown(crate::value::hex(bytes))
        } else {
            Secret::Redacted { len: bytes.len() }
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Redacted { len } => write!(f, "<redacted {len} bytes>"),
            Secret::Shown(text) => f.write_str(text),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Who sent a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Client,
    Server,
}

/// One decoded SASL token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum SaslMessage {
    /// A zero-length token: the server's answer to a PLAIN or OAUTHBEARER
    /// client message when authentication succeeds.
    Empty,
    /// PLAIN: `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2).
    Plain {
        authzid: Option<String>,
        user: String,
        password: Secret,
    },
    /// SCRAM client-first-message (RFC 5802 section 7).
    ScramClientFirst {
        /// The GS2 channel-binding flag: `n`, `y` or `p=name`.
        channel_binding: String,
        authzid: Option<String>,
        user: String,
        nonce: String,
        /// Extensions, such as Kafka's `tokenauth=true` (KIP-48).
        extensions: Vec<String>,
    },
    ScramServerFirst {
        nonce: String,
        /// Base64, as sent: a salt is public.
        salt: String,
        iterations: u32,
        extensions: Vec<String>,
    },
    ScramClientFinal {
        channel_binding: String,
        nonce: String,
        proof: Secret,
    },
    ScramServerFinal {
        verifier: Option<Secret>,
        error: Option<String>,
    },
    /// OAUTHBEARER initial client response (RFC 7628 section 3.1).
    OauthBearerClient {
        authzid: Option<String>,
        token: Secret,
        /// Other key=value pairs: SASL extensions (KIP-342).
        extensions: Vec<String>,
    },
    /// OAUTHBEARER server error: a JSON status document (RFC 7628
    /// section 3.2.2).
    OauthBearerError { status: String },
    /// GSSAPI, unknown mechanisms, and tokens that do not parse.
    Opaque { bytes: Secret },
}

/// A SASL step as one exchange: a client token and the server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SaslExchange {
    /// From the connection's SaslHandshake, when it is in the capture.
    pub mechanism: Option<String>,
    pub framing: SaslFraming,
    pub client: Option<SaslMessage>,
    pub server: Option<SaslMessage>,
}

/// How the tokens travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaslFraming {
    /// Size-prefixed tokens without Kafka headers, after SaslHandshake v0.
    Raw,
    /// Inside SaslAuthenticate requests and responses.
    Authenticate,
}

impl SaslExchange {
    /// `PLAIN user=alice password=<redacted 6 bytes> -> empty`.
    pub fn line(&self) -> String {
        let mut out = self.mechanism.clone().unwrap_or_else(|| "SASL".into());
        if let Some(client) = &self.client {
            out.push(' ');
            out.push_str(&client.line());
        }
        if let Some(server) = &self.server {
            out.push_str(" -> ");
            out.push_str(&server.line());
        }
        out
    }
}

impl SaslMessage {
    /// A short text form: the step and its non-secret fields.
    pub fn line(&self) -> String {
        match self {
            SaslMessage::Empty => "empty".into(),
            SaslMessage::Plain {
                authzid,
                user,
                password,
            } => {
                let authzid = authzid
                    .as_ref()
                    .map(|id| format!(" authzid={id}"))
                    .unwrap_or_default();
                format!("plain user={user}{authzid} password={password}")
            }
            SaslMessage::ScramClientFirst { user, nonce, .. } => {
                format!("client-first user={user} nonce={nonce}")
            }
            SaslMessage::ScramServerFirst {
                salt, iterations, ..
            } => format!("server-first salt={salt} iterations={iterations}"),
            SaslMessage::ScramClientFinal { proof, .. } => format!("client-final proof={proof}"),
            SaslMessage::ScramServerFinal { verifier, error } => match (error, verifier) {
                (Some(error), _) => format!("server-final error={error}"),
                (None, Some(verifier)) => format!("server-final verifier={verifier}"),
                (None, None) => "server-final".into(),
            },
            SaslMessage::OauthBearerClient { authzid, token, .. } => {
                let authzid = authzid
                    .as_ref()
                    .map(|id| format!(" authzid={id}"))
                    .unwrap_or_default();
                format!("bearer{authzid} token={token}")
            }
            SaslMessage::OauthBearerError { status } => format!("error {status}"),
            SaslMessage::Opaque { bytes } => format!("token {bytes}"),
        }
    }
}

/// Decodes one token. `mechanism` comes from the handshake; without it the
/// token's shape decides, and what matches no shape stays opaque.
pub fn decode(
    mechanism: Option<&str>,
    sender: Sender,
    token: &[u8],
    show_secrets: bool,
) -> SaslMessage {
    if token.is_empty() {
        return SaslMessage::Empty;
    }
    let family = mechanism.map(Family::of).unwrap_or(Family::Unknown);
    let parsed = match (family, sender) {
        (Family::Plain, Sender::Client) => plain(token, show_secrets),
        (Family::Scram, Sender::Client) => scram_client(token, show_secrets),
        (Family::Scram, Sender::Server) => scram_server(token, show_secrets),
        (Family::OauthBearer, Sender::Client) => oauth_client(token, show_secrets),
        (Family::OauthBearer, Sender::Server) => oauth_server(token),
        (Family::Unknown, Sender::Client) => scram_client(token, show_secrets)
            .or_else(|| oauth_client(token, show_secrets))
            .or_else(|| plain(token, show_secrets)),
        (Family::Unknown, Sender::Server) => scram_server(token, show_secrets),
        (Family::Plain | Family::Other, _) => None,
    };
    parsed.unwrap_or_else(|| SaslMessage::Opaque {
        bytes: Secret::hex(token, show_secrets),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Plain,
    Scram,
    OauthBearer,
    /// A named mechanism whose tokens are binary (GSSAPI) or unknown.
    Other,
    Unknown,
}

impl Family {
    fn of(mechanism: &str) -> Family {
        let upper = mechanism.to_ascii_uppercase();
        if upper == "PLAIN" {
            Family::Plain
        } else if upper.starts_with("SCRAM-") {
            Family::Scram
        } else if upper == "OAUTHBEARER" {
            Family::OauthBearer
        } else {
            Family::Other
        }
    }
}

/// RFC 4616: `[authzid] UTF8NUL authcid UTF8NUL passwd`, each part free of
/// NULs, authcid and passwd not empty.
fn plain(token: &[u8], show: bool) -> Option<SaslMessage> {
    let mut parts = token.splitn(3, |&byte| byte == 0);
    let authzid = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    if user.is_empty() || password.is_empty() || password.contains(&0) {
        return None;
    }
    let authzid = std::str::from_utf8(authzid).ok()?;
    let user = std::str::from_utf8(user).ok()?;
    Some(SaslMessage::Plain {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        user: user.to_owned(),
        password: Secret::new(password, show),
    })
}

/// The `key=value` attributes of a SCRAM message (RFC 5802 section 5.1).
/// Values may contain `=` (base64), never `,`.
fn attributes(text: &str) -> Option<Vec<(&str, &str)>> {
    text.split(',')
        .map(|part| part.split_once('=').filter(|(key, _)| !key.is_empty()))
        .collect()
}

/// `=2C` and `=3D` stand for `,` and `=` in SCRAM user names.
fn unescape_name(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

fn scram_client(token: &[u8], show: bool) -> Option<SaslMessage> {
    let text = std::str::from_utf8(token).ok()?;
    // client-first: gs2-header (cbind-flag "," [authzid] ",") then bare.
    let gs2 = ["n,", "y,", "p="]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    if gs2 {
        let (flag, rest) = text.split_once(',')?;
        let (authzid, bare) = rest.split_once(',')?;
        let authzid = match authzid {
            "" => None,
            id => Some(unescape_name(id.strip_prefix("a=")?)),
        };
        let attributes = attributes(bare)?;
        let user = attribute(&attributes, "n")?;
        let nonce = attribute(&attributes, "r")?;
        return Some(SaslMessage::ScramClientFirst {
            channel_binding: flag.to_owned(),
            authzid,
            user: unescape_name(user),
            nonce: nonce.to_owned(),
            extensions: others(&attributes, &["n", "r", "m"]),
        });
    }
    let attributes = attributes(text)?;
    if attributes.first()?.0 != "c" {
        return None;
    }
    let proof = attribute(&attributes, "p")?;
    Some(SaslMessage::ScramClientFinal {
        channel_binding: attribute(&attributes, "c")?.to_owned(),
        nonce: attribute(&attributes, "r")?.to_owned(),
        proof: Secret::new(proof.as_bytes(), show),
    })
}

fn scram_server(token: &[u8], show: bool) -> Option<SaslMessage> {
    let text = std::str::from_utf8(token).ok()?;
    let attributes = attributes(text)?;
    match attributes.first()?.0 {
        "r" | "m" => Some(SaslMessage::ScramServerFirst {
            nonce: attribute(&attributes, "r")?.to_owned(),
            salt: attribute(&attributes, "s")?.to_owned(),
            iterations: attribute(&attributes, "i")?.parse().ok()?,
            extensions: others(&attributes, &["r", "s", "i", "m"]),
        }),
        "v" => Some(SaslMessage::ScramServerFinal {
            verifier: attribute(&attributes, "v").map(|v| Secret::new(v.as_bytes(), show)),
            error: None,
        }),
        "e" => Some(SaslMessage::ScramServerFinal {
            verifier: None,
            error: attribute(&attributes, "e").map(str::to_owned),
        }),
        _ => None,
    }
}

fn attribute<'a>(attributes: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, value)| *value)
}

fn others(attributes: &[(&str, &str)], known: &[&str]) -> Vec<String> {
    attributes
        .iter()
        .filter(|(name, _)| !known.contains(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// RFC 7628 section 3.1: `gs2-header %x01 *(key=value %x01) %x01`, where
/// `auth=Bearer <token>` carries the token. A lone %x01 is the client's
/// answer to a server error.
fn oauth_client(token: &[u8], show: bool) -> Option<SaslMessage> {
    let text = std::str::from_utf8(token).ok()?;
    if text == "\u{1}" {
        return Some(SaslMessage::Empty);
    }
    let (gs2, rest) = text.split_once('\u{1}')?;
    let mut header = gs2.splitn(3, ',');
    let flag = header.next()?;
    if !matches!(flag, "n" | "y") && !flag.starts_with("p=") {
        return None;
    }
    let authzid = match header.next()? {
        "" => None,
        id => Some(unescape_name(id.strip_prefix("a=")?)),
    };
    let mut bearer = None;
    let mut extensions = Vec::new();
    for pair in rest.split('\u{1}').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        if key == "auth" {
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .unwrap_or(value);
            bearer = Some(Secret::new(token.as_bytes(), show));
        } else {
            extensions.push(format!("{key}={value}"));
        }
    }
    Some(SaslMessage::OauthBearerClient {
        authzid,
        token: bearer?,
        extensions,
    })
}

fn oauth_server(token: &[u8]) -> Option<SaslMessage> {
    let text = std::str::from_utf8(token).ok()?;
    text.trim_start()
        .starts_with('{')
        .then(|| SaslMessage::OauthBearerError {
            status: text.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hides_the_password() {
        let message = decode(Some("PLAIN"), Sender::Client, b"\0alice\0secret", false);
        assert_eq!(
            message,
            SaslMessage::Plain {
                authzid: None,
                user: "alice".into(),
                password: Secret::Redacted { len: 6 },
            }
        );
        assert_eq!(
            message.line(),
            "plain user=alice password=<redacted 6 bytes>"
        );
        let shown = decode(Some("plain"), Sender::Client, b"admin\0alice\0secret", true);
        assert_eq!(
            shown.line(),
            "plain user=alice authzid=admin password=secret"
        );
    }

    #[test]
    fn plain_with_missing_parts_is_opaque() {
        let message = decode(Some("PLAIN"), Sender::Client, b"alice\0", false);
        assert_eq!(
            message,
            SaslMessage::Opaque {
                bytes: Secret::Redacted { len: 6 }
            }
        );
    }

    #[test]
    fn scram_round_trip_redacts_proof_and_signature() {
        let mechanism = Some("SCRAM-SHA-256");
        let first = decode(
            mechanism,
            Sender::Client,
            b"n,,n=us=2Cer,r=fyko+d2lbbFgONRv9qkxdawL",
            false,
        );
        assert_eq!(
            first,
            SaslMessage::ScramClientFirst {
                channel_binding: "n".into(),
                authzid: None,
                user: "us,er".into(),
                nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
                extensions: vec![],
            }
        );
        let server_first = decode(
            mechanism,
            Sender::Server,
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            false,
        );
        assert_eq!(
            server_first.line(),
            "server-first salt=QSXCR+Q6sek8bf92 iterations=4096"
        );
        let client_final = decode(
            mechanism,
            Sender::Client,
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            false,
        );
        assert_eq!(
            client_final.line(),
            "client-final proof=<redacted 28 bytes>"
        );
        let server_final = decode(
            mechanism,
            Sender::Server,
            b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            false,
        );
        assert_eq!(
            server_final.line(),
            "server-final verifier=<redacted 28 bytes>"
        );
        let failed = decode(mechanism, Sender::Server, b"e=invalid-proof", false);
        assert_eq!(failed.line(), "server-final error=invalid-proof");
    }

    #[test]
    fn scram_token_extension_and_authzid_are_kept() {
        let message = decode(
            Some("SCRAM-SHA-512"),
            Sender::Client,
            b"n,a=admin,n=alice,r=abc,tokenauth=true",
            false,
        );
        assert_eq!(
            message,
            SaslMessage::ScramClientFirst {
                channel_binding: "n".into(),
                authzid: Some("admin".into()),
                user: "alice".into(),
                nonce: "abc".into(),
                extensions: vec!["tokenauth=true".into()],
            }
        );
    }

    #[test]
    fn oauthbearer_hides_the_token() {
        let message = decode(
            Some("OAUTHBEARER"),
            Sender::Client,
            b"n,,\x01auth=Bearer eyJhbGciOi\x01traceId=42\x01\x01",
            false,
        );
        assert_eq!(
            message,
            SaslMessage::OauthBearerClient {
                authzid: None,
                token: Secret::Redacted { len: 10 },
                extensions: vec!["traceId=42".into()],
            }
        );
        let error = decode(
            Some("OAUTHBEARER"),
            Sender::Server,
            br#"{"status":"invalid_token"}"#,
            false,
        );
        assert!(error.line().contains("invalid_token"));
    }

    #[test]
    fn shape_decides_without_a_mechanism() {
        assert!(matches!(
            decode(None, Sender::Client, b"n,,n=bob,r=xyz", false),
            SaslMessage::ScramClientFirst { .. }
        ));
        assert!(matches!(
            decode(None, Sender::Client, b"\0bob\0pw", false),
            SaslMessage::Plain { .. }
        ));
        assert!(matches!(
            decode(None, Sender::Server, b"r=a,s=b,i=1", false),
            SaslMessage::ScramServerFirst { .. }
        ));
        assert_eq!(decode(None, Sender::Server, b"", false), SaslMessage::Empty);
    }

    #[test]
    fn gssapi_tokens_stay_opaque_and_hidden() {
        let message = decode(Some("GSSAPI"), Sender::Client, &[0x60, 0x82, 0x01], false);
        assert_eq!(message.line(), "token <redacted 3 bytes>");
        let shown = decode(Some("GSSAPI"), Sender::Client, &[0x60, 0x82, 0x01], true);
        assert_eq!(shown.line(), "token 608201");
    }

    #[test]
    fn garbage_never_panics() {
        for token in [
            &b"n,"[..],
            b"n,,",
            b"p=",
            b"c=",
            b"r=,s=,i=x",
            b"\xff\xfe",
            b"\x01",
            b"n,a=,\x01auth\x01",
            b"=,=",
        ] {
            for mechanism in [
                None,
                Some("PLAIN"),
                Some("SCRAM-SHA-256"),
                Some("OAUTHBEARER"),
            ] {
                for sender in [Sender::Client, Sender::Server] {
                    let _ = decode(mechanism, sender, token, false).line();
                }
            }
        }
    }
}
