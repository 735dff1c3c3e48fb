//! The `.frames` text format kwire's corpus keeps real frames in: one frame a
//! line, `<req|resp|sasl-raw> <api_key> <api_version> <connection> <hex>`,
//! where the hex is the whole frame with its length prefix, a response
//! carries its request's API key and version, and `#` starts a comment.

use bytes::Bytes;

use crate::codec::DecodeOptions;
use crate::frame::{self, DecodedFrame, Direction};
use crate::value::parse_hex;

/// What a line holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Request,
    Response,
    /// SASL bytes sent without Kafka headers after SaslHandshake v0.
    SaslRaw,
}

#[derive(Clone, Debug)]
pub struct FrameLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub kind: LineKind,
    pub api_key: i16,
    pub api_version: i16,
    pub connection: u32,
    pub bytes: Bytes,
}

impl FrameLine {
    /// Decodes the frame as what it is; None for raw SASL bytes.
    pub fn decode(&self, options: &DecodeOptions) -> Option<DecodedFrame> {
        match self.kind {
            LineKind::Request => Some(frame::decode_request(self.bytes.clone(), options)),
            LineKind::Response => Some(frame::decode_response(
                self.bytes.clone(),
                self.api_key,
                self.api_version,
                options,
            )),
            LineKind::SaslRaw => None,
        }
    }

    pub fn direction(&self) -> Option<Direction> {
        match self.kind {
            LineKind::Request => Some(Direction::Request),
            LineKind::Response => Some(Direction::Response),
            LineKind::SaslRaw => None,
        }
    }
}

/// Parses a `.frames` file; an error names the line.
pub fn parse(text: &str) -> Result<Vec<FrameLine>, String> {
    let mut frames = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let [kind, api_key, api_version, connection, hex] = fields[..] else {
            return Err(format!(
                "line {line_number}: expected 5 fields, found {}",
                fields.len()
            ));
        };
        let kind = match kind {
            "req" => LineKind::Request,
            "resp" => LineKind::Response,
            "sasl-raw" => LineKind::SaslRaw,
            other => return Err(format!("line {line_number}: unknown kind {other:?}")),
        };
        let number = |text: &str, what: &str| -> Result<i64, String> {
            text.parse::<i64>()
                .map_err(|_| format!("line {line_number}: invalid {what} {text:?}"))
        };
        frames.push(FrameLine {
            line: line_number,
            kind,
            api_key: i16::try_from(number(api_key, "api key")?)
                .map_err(|_| format!("line {line_number}: api key out of range"))?,
            api_version: i16::try_from(number(api_version, "api version")?)
                .map_err(|_| format!("line {line_number}: api version out of range"))?,
            connection: u32::try_from(number(connection, "connection")?)
                .map_err(|_| format!("line {line_number}: connection out of range"))?,
            bytes: Bytes::from(
                parse_hex(hex).map_err(|error| format!("line {line_number}: {error}"))?,
            ),
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_skips_comments() {
        let text =
            "# a comment\nreq 18 3 0 00000001ff\n\nresp 18 3 0 0000000100\nsasl-raw -1 -1 2 00\n";
        let frames = parse(text).expect("parses");
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].line, 2);
        assert_eq!(frames[1].kind, LineKind::Response);
        assert_eq!(frames[2].kind, LineKind::SaslRaw);
        assert_eq!(&frames[0].bytes[..], &[0, 0, 0, 1, 0xff]);
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("req 1 2 3").unwrap_err().starts_with("line 1:"));
        assert!(parse("\nfoo 1 2 3 00").unwrap_err().starts_with("line 2:"));
        assert!(parse("req 1 2 3 0g").unwrap_err().contains("hex"));
    }
}
