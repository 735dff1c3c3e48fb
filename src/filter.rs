//! The filter language: a small expression over exchanges that `kwire read
//! --filter` and the TUI use to choose which exchanges to show. This module
//! owns its lexer, parser, error positions and evaluation.
//!
//! # Language
//!
//! ```text
//! expr       := or
//! or         := and ( ("or" | "||") and )*
//! and        := unary ( ("and" | "&&") unary )*
//! unary      := ("not" | "!") unary | "(" expr ")" | comparison
//! comparison := FIELD OP VALUE
//! OP         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
//! VALUE      := bare-word | "double quoted" | 'single quoted'
//! ```
//!
//! `not` binds tightest, then `and`, then `or`; keywords are
//! case-insensitive. A bare word runs until whitespace, a parenthesis, a
//! quote or an operator character; quote a value that holds one of those or
//! is a keyword (`topic="and"`). In quotes, `\"`, `\'` and `\\` escape. An
//! empty (or all-blank) filter keeps every exchange.
//!
//! Fields (aliases after the slash):
//!
//! | field               | value                                   | operators              |
//! |---------------------|-----------------------------------------|------------------------|
//! | `api`               | name (`Produce`, any case) or key (`0`) | all; `~` on the name, `<` `>` on the key |
//! | `version`           | integer                                 | `= != < <= > >=`       |
//! | `correlation`/`corr`| integer                                 | `= != < <= > >=`       |
//! | `topic`             | topic name (or topic id)                | `= != ~ !~`            |
//! | `partition`         | integer                                 | `= != < <= > >=`       |
//! | `client`/`client_id`| client id                               | `= != ~ !~`            |
//! | `error`             | `NONE`, a name (`NOT_LEADER_OR_FOLLOWER`, any case) or a code | `= != ~ !~` |
//! | `conn`/`connection` | index, `addr:port`, `addr`, or `:port`  | `= != ~ !~`; `< <= > >=` with an index |
//! | `latency`           | duration: `ns`, `us`, `µs`, `ms`, `s`; bare = ms | `= != < <= > >=` |
//! | `size`              | request + response bytes: `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`; bare = B | `= != < <= > >=` |
//! | `records`           | record count of the exchange            | `= != < <= > >=`       |
//! | `state`             | see below                               | `= !=`                 |
//!
//! Semantics:
//!
//! - `a != b` is exactly `not (a = b)`, and `a !~ b` is `not (a ~ b)`, for
//!   every field.
//! - A field with several values (an exchange can name several topics,
//!   partitions and error codes) matches when any one of them does:
//!   `topic=orders` keeps an exchange that touches `orders`, and
//!   `topic!=orders` keeps those that do not touch it.
//! - `error=NONE` (or `error=0`) keeps exchanges without any non-zero error
//!   code, so `error!=NONE` keeps those with at least one.
//! - `~` is an ASCII case-insensitive substring test; a leading `^` anchors
//!   it at the start and a trailing `$` at the end (`topic~^orders`).
//! - `conn=127.0.0.1:9092` matches either end of the connection;
//!   `conn=:9092` matches a port at either end; `conn=3` is connection 3.
//! - An exchange without a latency (no response) fails every `latency`
//!   comparison, so `latency<5ms` does not keep it.
//! - `state` is one of `complete`, `no_response` (a Produce with acks=0),
//!   `response_missing`, `request_missing`, `missing` (either side),
//!   `inferred` (the response's API was inferred), `undecodable` (either
//!   side failed to decode), `lost` (bytes of the exchange fell in a
//!   capture gap) and `bad_crc` (a record batch's CRC does not match its
//!   bytes); `-` and `_` are interchangeable.
//!
//! Examples: `api=Produce and topic=orders`, `error!=NONE`, `latency>50ms`,
//! `not (api=Metadata or api=ApiVersions)`, `client~rdkafka and size>1MiB`.
//!
//! Matching is cheap: the exchange summary (topics, errors, records) is only
//! computed when the expression needs it, at most once per exchange, and a
//! caller that already has it can pass it to [`Filter::matches_with`].
//! Evaluation asks its questions through [`Subject`], so a caller that keeps
//! a compact copy of each exchange (the TUI's index) filters without
//! decoding anything: [`Filter::matches_subject`].

use std::cell::OnceCell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::exchange::{error_name, Exchange, ExchangeState, Summary};
use crate::schema;

/// A parsed filter, ready to match exchanges.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// None for the empty filter, which keeps everything.
    root: Option<Node>,
    needs_summary: bool,
}

/// Why a filter did not parse, and where: `position` is a byte offset into
/// the filter text, where the TUI puts its caret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {position}: {kind}")]
pub struct FilterError {
    pub position: usize,
    pub kind: FilterErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterErrorKind {
    /// The parser wanted something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("unknown field `{0}`; fields are {FIELD_LIST}")]
    UnknownField(String),
    #[error("`{field}` does not take `{op}`; it takes {allowed}")]
    Operator {
        field: &'static str,
        op: &'static str,
        allowed: &'static str,
    },
    #[error("invalid value `{value}` for `{field}`: {reason}")]
    Value {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("unterminated quoted string")]
    UnterminatedString,
}

/// The field names the language knows, aliases included, for completion.
pub const FIELD_NAMES: &[&str] = &[
    "api",
    "version",
    "correlation",
    "corr",
    "topic",
    "partition",
    "client",
    "client_id",
    "error",
    "conn",
    "connection",
    "latency",
    "size",
    "records",
    "state",
];

const FIELD_LIST: &str = "api, version, correlation (corr), topic, partition, client (client_id), \
error, conn (connection), latency, size, records, state";

/// Parses a filter expression.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, next: 0 };
    if parser.peek().kind == TokenKind::Eof {
        return Ok(Filter {
            root: None,
            needs_summary: false,
        });
    }
    let root = parser.parse_or()?;
    let token = parser.peek();
    if token.kind != TokenKind::Eof {
        return Err(parser.expected("`and`, `or` or the end of the filter"));
    }
    let needs_summary = root.needs_summary();
    Ok(Filter {
        root: Some(root),
        needs_summary,
    })
}

impl Filter {
    /// The filter that keeps every exchange.
    pub fn all() -> Filter {
        Filter {
            root: None,
            needs_summary: false,
        }
    }

    /// Whether the exchange passes the filter.
    pub fn matches(&self, exchange: &Exchange) -> bool {
        self.matches_with(exchange, None)
    }

    /// Like [`Filter::matches`], with the exchange's summary when the caller
    /// already has it (it is computed here otherwise, only if needed).
    pub fn matches_with(&self, exchange: &Exchange, summary: Option<&Summary>) -> bool {
        let Some(root) = &self.root else {
            return true;
        };
        let context = Context {
            exchange,
            given: summary,
            lazy: OnceCell::new(),
        };
        root.eval(&context)
    }

    /// Whether something that answers the filter's questions passes it.
    pub fn matches_subject(&self, subject: &dyn Subject) -> bool {
        match &self.root {
            None => true,
            Some(root) => root.eval(subject),
        }
    }

    /// Whether matching looks at topics, partitions, errors or records,
    /// which need the exchange's summary.
    pub fn needs_summary(&self) -> bool {
        self.needs_summary
    }

    /// Whether this is the empty filter, which keeps everything.
    pub fn is_all(&self) -> bool {
        self.root.is_none()
    }
}

/// The canonical form: every binary operation parenthesised, which shows
/// how the filter was understood.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            None => Ok(()),
            Some(root) => root.fmt(f),
        }
    }
}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum TokenKind {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Op(Op),
    Word(String),
    Quoted(String),
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    kind: TokenKind,
    start: usize,
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::LParen => "`(`".to_owned(),
            TokenKind::RParen => "`)`".to_owned(),
            TokenKind::And => "`and`".to_owned(),
            TokenKind::Or => "`or`".to_owned(),
            TokenKind::Not => "`not`".to_owned(),
            TokenKind::Op(op) => format!("`{}`", op.symbol()),
            TokenKind::Word(word) => format!("`{word}`"),
            TokenKind::Quoted(text) => format!("{text:?}"),
            TokenKind::Eof => "the end of the filter".to_owned(),
        }
    }
}

/// Characters that end a bare word.
fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '\'' | '=' | '!' | '<' | '>' | '~')
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let next_is = |offset: usize, want: char| text[start + offset..].starts_with(want);
        let (kind, len) = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '(' => (TokenKind::LParen, 1),
            ')' => (TokenKind::RParen, 1),
            '=' if next_is(1, '=') => (TokenKind::Op(Op::Eq), 2),
            '=' => (TokenKind::Op(Op::Eq), 1),
            '!' if next_is(1, '=') => (TokenKind::Op(Op::Ne), 2),
            '!' if next_is(1, '~') => (TokenKind::Op(Op::NotMatch), 2),
            '!' => (TokenKind::Not, 1),
            '<' if next_is(1, '=') => (TokenKind::Op(Op::Le), 2),
            '<' => (TokenKind::Op(Op::Lt), 1),
            '>' if next_is(1, '=') => (TokenKind::Op(Op::Ge), 2),
            '>' => (TokenKind::Op(Op::Gt), 1),
            '~' => (TokenKind::Op(Op::Match), 1),
            '&' if next_is(1, '&') => (TokenKind::And, 2),
            '|' if next_is(1, '|') => (TokenKind::Or, 2),
            '"' | '\'' => {
                chars.next();
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c2)) = chars.next() {
                    match c2 {
                        '\\' => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => break,
                        },
                        c2 if c2 == c => {
                            closed = true;
                            break;
                        }
                        c2 => value.push(c2),
                    }
                }
                if !closed {
                    return Err(FilterError {
                        position: start,
                        kind: FilterErrorKind::UnterminatedString,
                    });
                }
                tokens.push(Token {
                    kind: TokenKind::Quoted(value),
                    start,
                });
                continue;
            }
            _ => {
                let mut end = text.len();
                while let Some(&(index, c2)) = chars.peek() {
                    if is_special(c2) {
                        end = index;
                        break;
                    }
                    chars.next();
                }
                let word = &text[start..end];
                let kind = if word.eq_ignore_ascii_case("and") {
                    TokenKind::And
                } else if word.eq_ignore_ascii_case("or") {
                    TokenKind::Or
                } else if word.eq_ignore_ascii_case("not") {
                    TokenKind::Not
                } else {
                    TokenKind::Word(word.to_owned())
                };
                tokens.push(Token { kind, start });
                continue;
            }
        };
        for _ in 0..len {
            chars.next();
        }
        tokens.push(Token { kind, start });
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        start: text.len(),
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Parser

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Match => "~",
            Op::NotMatch => "!~",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn is_match(self) -> bool {
        matches!(self, Op::Match | Op::NotMatch)
    }

    /// Compares two numbers; `Ne` and `NotMatch` are handled by negation
    /// before this is reached.
    fn compare(self, left: i64, right: i64) -> bool {
        match self {
            Op::Eq | Op::Ne => left == right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Match | Op::NotMatch => false,
        }
    }

    /// The positive form: `!=` becomes `=` and `!~` becomes `~`.
    fn positive(self) -> (Op, bool) {
        match self {
            Op::Ne => (Op::Eq, true),
            Op::NotMatch => (Op::Match, true),
            op => (op, false),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with Eof, and `advance` never goes
        // past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn expected(&self, expected: &'static str) -> FilterError {
        let token = self.peek();
        FilterError {
            position: token.start,
            kind: FilterErrorKind::Expected {
                expected,
                found: token.kind.describe(),
            },
        }
    }

    fn parse_or(&mut self) -> Result<Node, FilterError> {
        let mut left = self.parse_and()?;
        while self.peek().kind == TokenKind::Or {
            self.advance();
            let right = self.parse_and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Node, FilterError> {
        let mut left = self.parse_unary()?;
        while self.peek().kind == TokenKind::And {
            self.advance();
            let right = self.parse_unary()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Node, FilterError> {
        match &self.peek().kind {
            TokenKind::Not => {
                self.advance();
                Ok(Node::Not(Box::new(self.parse_unary()?)))
            }
            TokenKind::LParen => {
                let open = self.advance();
                let inner = self.parse_or()?;
                if self.peek().kind != TokenKind::RParen {
                    let mut error = self.expected("`and`, `or` or `)`");
                    if self.peek().kind == TokenKind::Eof {
                        error.kind = FilterErrorKind::Expected {
                            expected: "`)`",
                            found: format!(
                                "the end of the filter (the `(` is at byte {})",
                                open.start
                            ),
                        };
                    }
                    return Err(error);
                }
                self.advance();
                Ok(inner)
            }
            TokenKind::Word(_) => self.parse_comparison(),
            _ => Err(self.expected("a field name, `not` or `(`")),
        }
    }

    fn parse_comparison(&mut self) -> Result<Node, FilterError> {
        let field_token = self.advance();
        let TokenKind::Word(name) = &field_token.kind else {
            return Err(self.expected("a field name"));
        };
        let Some(field) = Field::from_name(name) else {
            return Err(FilterError {
                position: field_token.start,
                kind: FilterErrorKind::UnknownField(name.clone()),
            });
        };
        let op_token = self.peek().clone();
        let TokenKind::Op(op) = op_token.kind else {
            return Err(self.expected("an operator (= != < <= > >= ~ !~)"));
        };
        self.advance();
        if let Some(allowed) = field.refuses(op) {
            return Err(FilterError {
                position: op_token.start,
                kind: FilterErrorKind::Operator {
                    field: field.name(),
                    op: op.symbol(),
                    allowed,
                },
            });
        }
        let value_token = self.peek().clone();
        let text = match &value_token.kind {
            TokenKind::Word(word) => word.clone(),
            TokenKind::Quoted(text) => text.clone(),
            TokenKind::And | TokenKind::Or | TokenKind::Not => {
                return Err(self.expected("a value (quote a value that is a keyword)"));
            }
            _ => return Err(self.expected("a value")),
        };
        self.advance();
        let value = field.value(op, &text).map_err(|reason| FilterError {
            position: value_token.start,
            kind: FilterErrorKind::Value {
                field: field.name(),
                value: text.clone(),
                reason,
            },
        })?;
        Ok(Node::Test(Test {
            field,
            op,
            text,
            value,
        }))
    }
}

// ---------------------------------------------------------------------------
// Fields and values

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Api,
    Version,
    Correlation,
    Topic,
    Partition,
    Client,
    Error,
    Conn,
    Latency,
    Size,
    Records,
    State,
}

const NUMERIC_OPS: &str = "= != < <= > >=";
const TEXT_OPS: &str = "= != ~ !~";

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "api" => Field::Api,
            "version" => Field::Version,
            "correlation" | "corr" => Field::Correlation,
            "topic" => Field::Topic,
            "partition" => Field::Partition,
            "client" | "client_id" => Field::Client,
            "error" => Field::Error,
            "conn" | "connection" => Field::Conn,
            "latency" => Field::Latency,
            "size" => Field::Size,
            "records" => Field::Records,
            "state" => Field::State,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Field::Api => "api",
            Field::Version => "version",
            Field::Correlation => "correlation",
            Field::Topic => "topic",
            Field::Partition => "partition",
            Field::Client => "client",
            Field::Error => "error",
            Field::Conn => "conn",
            Field::Latency => "latency",
            Field::Size => "size",
            Field::Records => "records",
            Field::State => "state",
        }
    }

    /// None when the field takes `op`, else the operators it does take.
    fn refuses(self, op: Op) -> Option<&'static str> {
        match self {
            Field::Api | Field::Conn => None,
            Field::Version
            | Field::Correlation
            | Field::Partition
            | Field::Latency
            | Field::Size
            | Field::Records => op.is_match().then_some(NUMERIC_OPS),
            Field::Topic | Field::Client | Field::Error => op.is_ordering().then_some(TEXT_OPS),
            Field::State => (op != Op::Eq && op != Op::Ne).then_some("= !="),
        }
    }

    fn needs_summary(self) -> bool {
        matches!(
            self,
            Field::Topic | Field::Partition | Field::Error | Field::Records
        )
    }

    /// Reads the value text for this field and operator.
    fn value(self, op: Op, text: &str) -> Result<Value, String> {
        if op.is_match() {
            return Ok(Value::Pattern(Pattern::new(text)));
        }
        match self {
            Field::Api => match text.parse::<i16>() {
                Ok(key) => Ok(Value::Int(i64::from(key))),
                Err(_) => match schema::api_by_name(text) {
                    Some(api) => Ok(Value::Int(i64::from(api.key))),
                    None => Err("not an API name or key".to_owned()),
                },
            },
            Field::Version | Field::Correlation | Field::Partition | Field::Records => text
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| "expected an integer".to_owned()),
            Field::Latency => parse_duration(text).map(Value::Int),
            Field::Size => parse_size(text).map(Value::Int),
            Field::Topic | Field::Client => Ok(Value::Text(text.to_owned())),
            Field::Error => {
                if text.eq_ignore_ascii_case("none") {
                    return Ok(Value::Int(0));
                }
                if let Ok(code) = text.parse::<i16>() {
                    return Ok(Value::Int(i64::from(code)));
                }
                match schema::error_by_name(text) {
                    Some(error) => Ok(Value::Int(i64::from(error.code))),
                    None => Err("not an error name (like NOT_COORDINATOR) or code".to_owned()),
                }
            }
            Field::Conn => parse_conn(text, op).map(Value::Conn),
            Field::State => StateValue::parse(text).map(Value::State),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Text(String),
    Pattern(Pattern),
    Conn(ConnValue),
    State(StateValue),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnValue {
    Index(i64),
    Addr(SocketAddr),
    Ip(IpAddr),
    Port(u16),
}

fn parse_conn(text: &str, op: Op) -> Result<ConnValue, String> {
    let value = if let Ok(index) = text.parse::<i64>() {
        ConnValue::Index(index)
    } else if let Some(port) = text.strip_prefix(':') {
        ConnValue::Port(
            port.parse()
                .map_err(|_| "expected a port after `:`".to_owned())?,
        )
    } else if let Ok(addr) = text.parse::<SocketAddr>() {
        ConnValue::Addr(addr)
    } else if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        ConnValue::Ip(ip)
    } else {
        return Err("expected a connection index, addr:port, addr or :port".to_owned());
    };
    if op.is_ordering() && !matches!(value, ConnValue::Index(_)) {
        return Err(format!(
            "`{}` compares connection indexes only",
            op.symbol()
        ));
    }
    Ok(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StateValue {
    Complete,
    NoResponse,
    ResponseMissing,
    RequestMissing,
    Missing,
    Inferred,
    Undecodable,
    Lost,
    BadCrc,
}

impl StateValue {
    fn parse(text: &str) -> Result<StateValue, String> {
        let normal = text.to_ascii_lowercase().replace('-', "_");
        Ok(match normal.as_str() {
            "complete" => StateValue::Complete,
            "no_response" => StateValue::NoResponse,
            "response_missing" => StateValue::ResponseMissing,
            "request_missing" => StateValue::RequestMissing,
            "missing" => StateValue::Missing,
            "inferred" => StateValue::Inferred,
            "undecodable" => StateValue::Undecodable,
            "lost" => StateValue::Lost,
            "bad_crc" => StateValue::BadCrc,
            _ => {
                return Err("states are complete, no_response, response_missing, \
                    request_missing, missing, inferred, undecodable, lost, bad_crc"
                    .to_owned())
            }
        })
    }

    fn holds(self, subject: &dyn Subject) -> bool {
        let state = subject.state();
        match self {
            StateValue::Complete => state == ExchangeState::Complete,
            StateValue::NoResponse => state == ExchangeState::NoResponseExpected,
            StateValue::ResponseMissing => state == ExchangeState::ResponseMissing,
            StateValue::RequestMissing => state == ExchangeState::RequestMissing,
            StateValue::Missing => matches!(
                state,
                ExchangeState::ResponseMissing | ExchangeState::RequestMissing
            ),
            StateValue::Inferred => subject.inferred(),
            StateValue::Undecodable => subject.undecodable(),
            StateValue::Lost => subject.lost(),
            StateValue::BadCrc => subject.bad_crc(),
        }
    }
}

/// A `~` pattern: an ASCII case-insensitive substring, optionally anchored
/// with a leading `^` or a trailing `$`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    needle: String,
    start: bool,
    end: bool,
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        let (start, rest) = match text.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (end, needle) = match rest.strip_suffix('$') {
            Some(needle) => (true, needle),
            None => (false, rest),
        };
        Pattern {
            needle: needle.to_owned(),
            start,
            end,
        }
    }

    fn matches(&self, haystack: &str) -> bool {
        let hay = haystack.as_bytes();
        let needle = self.needle.as_bytes();
        if needle.len() > hay.len() {
            return false;
        }
        let at = |offset: usize| {
            hay.get(offset..offset + needle.len())
                .is_some_and(|window| window.eq_ignore_ascii_case(needle))
        };
        match (self.start, self.end) {
            (true, true) => hay.eq_ignore_ascii_case(needle),
            (true, false) => at(0),
            (false, true) => at(hay.len() - needle.len()),
            (false, false) => (0..=hay.len() - needle.len()).any(at),
        }
    }
}

/// `50ms`, `1.5s`, `200us`; a bare number is milliseconds. In nanoseconds.
fn parse_duration(text: &str) -> Result<i64, String> {
    let units: &[(&str, f64)] = &[
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
    ];
    parse_with_units(text, units, 1e6, "units are ns, us, ms and s")
}

/// `1500`, `10KB`, `1MiB`; a bare number is bytes.
fn parse_size(text: &str) -> Result<i64, String> {
    let units: &[(&str, f64)] = &[
        ("b", 1.0),
        ("kb", 1e3),
        ("kib", 1024.0),
        ("mb", 1e6),
        ("mib", 1024.0 * 1024.0),
        ("gb", 1e9),
        ("gib", 1024.0 * 1024.0 * 1024.0),
    ];
    parse_with_units(
        text,
        units,
        1.0,
        "units are B, KB, KiB, MB, MiB, GB and GiB",
    )
}

fn parse_with_units(
    text: &str,
    units: &[(&str, f64)],
    bare: f64,
    unit_help: &str,
) -> Result<i64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("expected a number with an optional unit; {unit_help}"))?;
    let scale = if unit.is_empty() {
        bare
    } else {
        let lower = unit.to_lowercase();
        match units.iter().find(|(name, _)| *name == lower) {
            Some((_, scale)) => *scale,
            None => return Err(format!("unknown unit `{unit}`; {unit_help}")),
        }
    };
    let value = (number * scale).round();
    if !value.is_finite() || value > i64::MAX as f64 {
        return Err("too large".to_owned());
    }
    // In range and finite, checked above.
    Ok(value as i64)
}

// ---------------------------------------------------------------------------
// Evaluation

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Test(Test),
}

#[derive(Clone, Debug, PartialEq)]
struct Test {
    field: Field,
    op: Op,
    /// The value as written, for display.
    text: String,
    value: Value,
}

struct Context<'a> {
    exchange: &'a Exchange,
    given: Option<&'a Summary>,
    lazy: OnceCell<Summary>,
}

impl Context<'_> {
    fn summary(&self) -> &Summary {
        match (self.given, &self.exchange.summary) {
            (Some(summary), _) | (None, Some(summary)) => summary,
            (None, None) => self
                .lazy
                .get_or_init(|| self.exchange.summary().into_owned()),
        }
    }
}

/// What a filter asks of an exchange. [`Exchange`] answers from its trees
/// (through `Context`, which computes the summary at most once); the TUI
/// answers from its compact index. Every answer must agree with what the
/// `Exchange` would say.
pub trait Subject {
    fn api_key(&self) -> i16;
    fn api_version(&self) -> i16;
    fn correlation_id(&self) -> i32;
    fn client_id(&self) -> Option<&str>;
    /// The connection's index in the capture.
    fn connection(&self) -> u32;
    fn client(&self) -> SocketAddr;
    fn broker(&self) -> SocketAddr;
    fn latency_ns(&self) -> Option<i64>;
    /// Request plus response bytes.
    fn size(&self) -> u64;
    fn state(&self) -> ExchangeState;
    fn inferred(&self) -> bool;
    fn lost(&self) -> bool;
    /// A side of the exchange did not decode.
    fn undecodable(&self) -> bool;
    /// A record batch's CRC does not match its bytes.
    fn bad_crc(&self) -> bool;
    /// Whether `test` holds for one of the topics (with its partitions).
    fn any_topic(&self, test: &mut dyn FnMut(&str, &[i32]) -> bool) -> bool;
    /// The non-zero error codes, each once.
    fn error_codes(&self) -> &[i16];
    fn record_count(&self) -> u64;
}

impl Subject for Context<'_> {
    fn api_key(&self) -> i16 {
        self.exchange.api_key
    }
    fn api_version(&self) -> i16 {
        self.exchange.api_version
    }
    fn correlation_id(&self) -> i32 {
        self.exchange.correlation_id
    }
    fn client_id(&self) -> Option<&str> {
        self.exchange.client_id()
    }
    fn connection(&self) -> u32 {
        self.exchange.connection
    }
    fn client(&self) -> SocketAddr {
        self.exchange.client
    }
    fn broker(&self) -> SocketAddr {
        self.exchange.broker
    }
    fn latency_ns(&self) -> Option<i64> {
        self.exchange.latency_ns()
    }
    fn size(&self) -> u64 {
        let size =
            self.exchange.request_size().unwrap_or(0) + self.exchange.response_size().unwrap_or(0);
        u64::try_from(size).unwrap_or(u64::MAX)
    }
    fn state(&self) -> ExchangeState {
        self.exchange.state
    }
    fn inferred(&self) -> bool {
        self.exchange.inferred
    }
    fn lost(&self) -> bool {
        self.exchange.lost
    }
    fn undecodable(&self) -> bool {
        [&self.exchange.request, &self.exchange.response]
            .into_iter()
            .flatten()
            .any(|message| message.frame.error.is_some())
    }
    fn bad_crc(&self) -> bool {
        self.summary().bad_crc_batches() > 0
    }
    fn any_topic(&self, test: &mut dyn FnMut(&str, &[i32]) -> bool) -> bool {
        self.summary()
            .topics
            .iter()
            .any(|(topic, partitions)| test(topic, partitions))
    }
    fn error_codes(&self) -> &[i16] {
        &self.summary().errors
    }
    fn record_count(&self) -> u64 {
        self.summary().record_count()
    }
}

impl Node {
    fn needs_summary(&self) -> bool {
        match self {
            Node::Or(left, right) | Node::And(left, right) => {
                left.needs_summary() || right.needs_summary()
            }
            Node::Not(inner) => inner.needs_summary(),
            // Bad CRCs are counted in the summary's record tallies.
            Node::Test(test) => {
                test.field.needs_summary() || matches!(test.value, Value::State(StateValue::BadCrc))
            }
        }
    }

    fn eval(&self, context: &dyn Subject) -> bool {
        match self {
            Node::Or(left, right) => left.eval(context) || right.eval(context),
            Node::And(left, right) => left.eval(context) && right.eval(context),
            Node::Not(inner) => !inner.eval(context),
            Node::Test(test) => test.eval(context),
        }
    }
}

impl Test {
    fn eval(&self, context: &dyn Subject) -> bool {
        let (op, negate) = self.op.positive();
        self.eval_positive(op, context) != negate
    }

    fn eval_positive(&self, op: Op, subject: &dyn Subject) -> bool {
        match (&self.value, self.field) {
            (Value::Pattern(pattern), field) => match field {
                Field::Api => match schema::api(subject.api_key()) {
                    Some(api) => pattern.matches(api.name),
                    None => pattern.matches(&crate::frame::api_name(subject.api_key())),
                },
                Field::Topic => subject.any_topic(&mut |topic, _| pattern.matches(topic)),
                Field::Client => pattern.matches(subject.client_id().unwrap_or("")),
                Field::Error => subject
                    .error_codes()
                    .iter()
                    .any(|code| pattern.matches(&error_name(*code))),
                Field::Conn => {
                    pattern.matches(&format!("{} {}", subject.client(), subject.broker()))
                }
                _ => false,
            },
            (Value::Int(number), Field::Api) => op.compare(i64::from(subject.api_key()), *number),
            (Value::Int(number), Field::Version) => {
                op.compare(i64::from(subject.api_version()), *number)
            }
            (Value::Int(number), Field::Correlation) => {
                op.compare(i64::from(subject.correlation_id()), *number)
            }
            (Value::Int(number), Field::Partition) => subject.any_topic(&mut |_, partitions| {
                partitions
                    .iter()
                    .any(|partition| op.compare(i64::from(*partition), *number))
            }),
            (Value::Int(number), Field::Records) => {
                let count = i64::try_from(subject.record_count()).unwrap_or(i64::MAX);
                op.compare(count, *number)
            }
            (Value::Int(number), Field::Latency) => subject
                .latency_ns()
                .is_some_and(|latency| op.compare(latency, *number)),
            (Value::Int(number), Field::Size) => {
                op.compare(i64::try_from(subject.size()).unwrap_or(i64::MAX), *number)
            }
            (Value::Int(0), Field::Error) => subject.error_codes().is_empty(),
            (Value::Int(number), Field::Error) => subject
                .error_codes()
                .iter()
                .any(|code| i64::from(*code) == *number),
            (Value::Text(text), Field::Topic) => subject.any_topic(&mut |topic, _| topic == text),
            (Value::Text(text), Field::Client) => subject.client_id().unwrap_or("") == text,
            (Value::Conn(conn), _) => {
                let (client, broker) = (subject.client(), subject.broker());
                match *conn {
                    ConnValue::Index(index) => op.compare(i64::from(subject.connection()), index),
                    ConnValue::Addr(addr) => client == addr || broker == addr,
                    ConnValue::Ip(ip) => client.ip() == ip || broker.ip() == ip,
                    ConnValue::Port(port) => client.port() == port || broker.port() == port,
                }
            }
            (Value::State(state), _) => state.holds(subject),
            // Field::value only builds the pairs handled above.
            _ => false,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Or(left, right) => write!(f, "({left} or {right})"),
            Node::And(left, right) => write!(f, "({left} and {right})"),
            Node::Not(inner) => write!(f, "not {inner}"),
            Node::Test(test) => {
                let bare = !test.text.is_empty()
                    && !test.text.contains(is_special)
                    && !["and", "or", "not"]
                        .iter()
                        .any(|keyword| test.text.eq_ignore_ascii_case(keyword));
                if bare {
                    write!(f, "{}{}{}", test.field.name(), test.op.symbol(), test.text)
                } else {
                    write!(
                        f,
                        "{}{}{:?}",
                        test.field.name(),
                        test.op.symbol(),
                        test.text
                    )
                }
            }
        }
    }
}

/// Exchanges built from the corpus `.frames` files, for the tests of the
/// filter and of the statistics.
#[cfg(test)]
pub(crate) mod testing {
    use crate::codec::DecodeOptions;
    use crate::exchange::{Exchange, ExchangeState, Message, PacketList};
    use crate::frames_file::{self, LineKind};

    /// Exchanges paired from a corpus `.frames` file, one millisecond apart,
    /// each response `latency_us` after its request.
    pub(crate) fn corpus_exchanges(name: &str) -> Vec<Exchange> {
        let path = format!("{}/corpus/frames/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("corpus file");
        let lines = frames_file::parse(&text).expect("frames file");
        let options = DecodeOptions::default();
        let mut exchanges = Vec::new();
        let mut iter = lines.iter().peekable();
        while let Some(line) = iter.next() {
            if line.kind != LineKind::Request {
                continue;
            }
            let id = exchanges.len() as u64;
            let ts = 1_700_000_000_000_000_000 + id as i64 * 1_000_000;
            let request = line.decode(&options).expect("request");
            let paired = iter.peek().is_some_and(|next| {
                next.kind == LineKind::Response && next.connection == line.connection
            });
            let response = if paired {
                iter.next().and_then(|next| next.decode(&options))
            } else {
                None
            };
            let latency = (id as i64 % 10 + 1) * 100_000;
            exchanges.push(Exchange {
                id,
                connection: line.connection,
                client: format!("127.0.0.1:{}", 40000 + line.connection)
                    .parse()
                    .unwrap(),
                broker: "127.0.0.1:9092".parse().unwrap(),
                api_key: line.api_key,
                api_version: line.api_version,
                correlation_id: request.correlation_id.unwrap_or(-1),
                state: if response.is_some() {
                    ExchangeState::Complete
                } else {
                    ExchangeState::ResponseMissing
                },
                request: Some(Box::new(Message {
                    ts_ns: ts,
                    frame: request,
                    missing_bytes: 0,
                })),
                response: response.map(|frame| {
                    Box::new(Message {
                        ts_ns: ts + latency,
                        frame,
                        missing_bytes: 0,
                    })
                }),
                inferred: false,
                packets: PacketList::new(),
                lost: false,
                sasl: None,
                summary: None,
            });
        }
        exchanges
    }
}

#[cfg(test)]
mod tests {
    use super::testing::corpus_exchanges;
    use super::*;

    fn count(filter: &str, exchanges: &[Exchange]) -> usize {
        let filter = parse(filter).unwrap_or_else(|error| panic!("{filter}: {error}"));
        exchanges
            .iter()
            .filter(|exchange| filter.matches(exchange))
            .count()
    }

    fn error_at(filter: &str) -> (usize, String) {
        let error = parse(filter).expect_err(filter);
        (error.position, error.kind.to_string())
    }

    fn canonical(filter: &str) -> String {
        parse(filter)
            .unwrap_or_else(|error| panic!("{filter}: {error}"))
            .to_string()
    }

    #[test]
    fn empty_filter_keeps_everything() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        assert!(parse("").unwrap().is_all());
        assert!(parse("  \t").unwrap().is_all());
        assert_eq!(count("", &exchanges), exchanges.len());
    }

    #[test]
    fn precedence_not_then_and_then_or() {
        assert_eq!(
            canonical("api=Produce or api=Fetch and topic=x"),
            "(api=Produce or (api=Fetch and topic=x))"
        );
        assert_eq!(
            canonical("not api=Produce and version=3"),
            "(not api=Produce and version=3)"
        );
        assert_eq!(
            canonical("not (api=Metadata or api=ApiVersions)"),
            "not (api=Metadata or api=ApiVersions)"
        );
        assert_eq!(
            canonical("api=0 || api=1 && !version=2"),
            "(api=0 or (api=1 and not version=2))"
        );
        assert_eq!(
            canonical("(api=0 or api=1) and version=2"),
            "((api=0 or api=1) and version=2)"
        );
        assert_eq!(
            canonical("api=0 AND NOT version=1"),
            "(api=0 and not version=1)"
        );
        assert_eq!(canonical("topic=\"and\""), "topic=\"and\"");
        assert_eq!(canonical("client='my client'"), "client=\"my client\"");
    }

    #[test]
    fn parse_errors_name_position_and_expectation() {
        assert_eq!(
            error_at("api=Produce and"),
            (
                15,
                "expected a field name, `not` or `(`, found the end of the filter".to_owned()
            )
        );
        assert_eq!(
            error_at("api=Produce topic=x"),
            (
                12,
                "expected `and`, `or` or the end of the filter, found `topic`".to_owned()
            )
        );
        let (position, message) = error_at("apy=Produce");
        assert_eq!(position, 0);
        assert!(
            message.starts_with("unknown field `apy`; fields are api, "),
            "{message}"
        );
        assert_eq!(
            error_at("api Produce"),
            (
                4,
                "expected an operator (= != < <= > >= ~ !~), found `Produce`".to_owned()
            )
        );
        assert_eq!(
            error_at("api="),
            (
                4,
                "expected a value, found the end of the filter".to_owned()
            )
        );
        assert_eq!(
            error_at("topic= and x"),
            (
                7,
                "expected a value (quote a value that is a keyword), found `and`".to_owned()
            )
        );
        assert_eq!(
            error_at("api=Prodce"),
            (
                4,
                "invalid value `Prodce` for `api`: not an API name or key".to_owned()
            )
        );
        assert_eq!(
            error_at("latency>5parsecs"),
            (
                8,
                "invalid value `5parsecs` for `latency`: unknown unit `parsecs`; units are ns, us, ms and s"
                    .to_owned()
            )
        );
        assert_eq!(
            error_at("topic>x"),
            (
                5,
                "`topic` does not take `>`; it takes = != ~ !~".to_owned()
            )
        );
        assert_eq!(
            error_at("version~3"),
            (
                7,
                "`version` does not take `~`; it takes = != < <= > >=".to_owned()
            )
        );
        assert_eq!(
            error_at("client=\"abc"),
            (7, "unterminated quoted string".to_owned())
        );
        assert_eq!(
            error_at("(api=0 or api=1"),
            (
                15,
                "expected `)`, found the end of the filter (the `(` is at byte 0)".to_owned()
            )
        );
        assert_eq!(
            error_at("(api=0 version=1)"),
            (7, "expected `and`, `or` or `)`, found `version`".to_owned())
        );
        assert_eq!(
            error_at(")"),
            (
                0,
                "expected a field name, `not` or `(`, found `)`".to_owned()
            )
        );
        assert_eq!(
            error_at("error=NOPE"),
            (
                6,
                "invalid value `NOPE` for `error`: not an error name (like NOT_COORDINATOR) or code"
                    .to_owned()
            )
        );
        assert_eq!(
            error_at("state=done"),
            (
                6,
                "invalid value `done` for `state`: states are complete, no_response, \
                 response_missing, request_missing, missing, inferred, undecodable, lost, bad_crc"
                    .to_owned()
            )
        );
        assert_eq!(
            error_at("conn>127.0.0.1:9092"),
            (
                5,
                "invalid value `127.0.0.1:9092` for `conn`: `>` compares connection indexes only"
                    .to_owned()
            )
        );
        // The Display form carries the position for the command line.
        assert_eq!(
            parse("api=").unwrap_err().to_string(),
            "at byte 4: expected a value, found the end of the filter"
        );
    }

    #[test]
    fn api_by_name_any_case_or_key() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        let produce = exchanges.iter().filter(|e| e.api_key == 0).count();
        assert!(produce > 0);
        assert_eq!(count("api=Produce", &exchanges), produce);
        assert_eq!(count("api=produce", &exchanges), produce);
        assert_eq!(count("api==0", &exchanges), produce);
        assert_eq!(count("api!=Produce", &exchanges), exchanges.len() - produce);
        assert_eq!(count("api~^prod", &exchanges), produce);
        assert_eq!(count("api~duce$", &exchanges), produce);
        assert_eq!(
            count("api<1", &exchanges) + count("api>=1", &exchanges),
            exchanges.len()
        );
        let metadata_or_versions = exchanges
            .iter()
            .filter(|e| e.api_key == 3 || e.api_key == 18)
            .count();
        assert_eq!(
            count("not (api=Metadata or api=ApiVersions)", &exchanges),
            exchanges.len() - metadata_or_versions
        );
    }

    #[test]
    fn numeric_operators() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        let total = exchanges.len();
        let by =
            |test: &dyn Fn(i16) -> bool| exchanges.iter().filter(|e| test(e.api_version)).count();
        assert_eq!(count("version=3", &exchanges), by(&|v| v == 3));
        assert_eq!(count("version!=3", &exchanges), by(&|v| v != 3));
        assert_eq!(count("version<3", &exchanges), by(&|v| v < 3));
        assert_eq!(count("version<=3", &exchanges), by(&|v| v <= 3));
        assert_eq!(count("version>3", &exchanges), by(&|v| v > 3));
        assert_eq!(count("version>=3", &exchanges), by(&|v| v >= 3));
        assert_eq!(count("corr>=0", &exchanges), total);
        assert_eq!(count("correlation<0", &exchanges), 0);
    }

    #[test]
    fn latency_with_units() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        // Latencies are (id % 10 + 1) * 100us for exchanges with a response.
        let over = |ns: i64| {
            exchanges
                .iter()
                .filter(|e| e.latency_ns().is_some_and(|l| l > ns))
                .count()
        };
        assert_eq!(count("latency>500us", &exchanges), over(500_000));
        assert_eq!(count("latency>0.5ms", &exchanges), over(500_000));
        assert_eq!(count("latency>500000ns", &exchanges), over(500_000));
        assert_eq!(count("latency>0.0005s", &exchanges), over(500_000));
        assert_eq!(count("latency>0.5", &exchanges), over(500_000));
        assert_eq!(count("latency>50ms", &exchanges), 0);
        assert_eq!(
            count("latency=100us", &exchanges),
            exchanges
                .iter()
                .filter(|e| e.latency_ns() == Some(100_000))
                .count()
        );
        // No latency: fails every comparison, passes their negation.
        let missing = exchanges
            .iter()
            .filter(|e| e.latency_ns().is_none())
            .count();
        assert_eq!(count("latency>=0", &exchanges), exchanges.len() - missing);
        assert_eq!(count("not latency>=0", &exchanges), missing);
    }

    #[test]
    fn topic_partition_and_records() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        let topic = exchanges
            .iter()
            .find_map(|e| e.summary().topics.keys().next().cloned())
            .expect("a topic");
        let touching = exchanges
            .iter()
            .filter(|e| e.summary().topics.contains_key(&topic))
            .count();
        assert!(touching > 0);
        assert_eq!(count(&format!("topic={topic}"), &exchanges), touching);
        assert_eq!(count(&format!("topic=\"{topic}\""), &exchanges), touching);
        assert_eq!(
            count(&format!("topic!={topic}"), &exchanges),
            exchanges.len() - touching
        );
        assert_eq!(
            count(&format!("topic~{}", topic.to_uppercase()), &exchanges),
            touching
        );
        assert_eq!(count("topic=no-such-topic", &exchanges), 0);
        let produce_to_topic = exchanges
            .iter()
            .filter(|e| e.api_key == 0 && e.summary().topics.contains_key(&topic))
            .count();
        assert!(produce_to_topic > 0);
        assert_eq!(
            count(&format!("api=Produce and topic={topic}"), &exchanges),
            produce_to_topic
        );
        let with_records = exchanges
            .iter()
            .filter(|e| e.summary().record_count() > 0)
            .count();
        assert!(with_records > 0);
        assert_eq!(count("records>0", &exchanges), with_records);
        assert_eq!(
            count("records=0", &exchanges),
            exchanges.len() - with_records
        );
        let partition0 = exchanges
            .iter()
            .filter(|e| e.summary().topics.values().flatten().any(|p| *p == 0))
            .count();
        assert_eq!(count("partition=0", &exchanges), partition0);
    }

    #[test]
    fn errors_by_name_number_and_none() {
        let mut exchanges = Vec::new();
        for name in [
            "kcat-mock.frames",
            "confluent-mock.frames",
            "python-mock.frames",
            "kcat-legacy-mock.frames",
        ] {
            exchanges.extend(corpus_exchanges(name));
        }
        let with_errors: Vec<&Exchange> = exchanges
            .iter()
            .filter(|e| !e.summary().errors.is_empty())
            .collect();
        assert!(!with_errors.is_empty(), "the corpus has error responses");
        assert_eq!(count("error!=NONE", &exchanges), with_errors.len());
        assert_eq!(
            count("error=none", &exchanges),
            exchanges.len() - with_errors.len()
        );
        assert_eq!(
            count("error=0", &exchanges),
            exchanges.len() - with_errors.len()
        );
        let code = with_errors[0].summary().errors[0];
        let name = error_name(code);
        let having = exchanges
            .iter()
            .filter(|e| e.summary().errors.contains(&code))
            .count();
        assert_eq!(count(&format!("error={name}"), &exchanges), having);
        assert_eq!(
            count(&format!("error={}", name.to_lowercase()), &exchanges),
            having
        );
        assert_eq!(count(&format!("error={code}"), &exchanges), having);
        let matching = exchanges
            .iter()
            .filter(|e| {
                e.summary()
                    .error_names()
                    .iter()
                    .any(|n| n.contains("UNKNOWN"))
            })
            .count();
        assert_eq!(count("error~unknown", &exchanges), matching);
        assert_eq!(
            count("error!~unknown", &exchanges),
            exchanges.len() - matching
        );
    }

    #[test]
    fn client_conn_and_state() {
        let mut exchanges = corpus_exchanges("kcat-mock.frames");
        let total = exchanges.len();
        assert_eq!(count("client=kwire-corpus-kcat", &exchanges), total);
        assert_eq!(count("client_id~CORPUS", &exchanges), total);
        assert_eq!(count("client!~corpus", &exchanges), 0);
        let conn1 = exchanges.iter().filter(|e| e.connection == 1).count();
        assert!(conn1 > 0);
        assert_eq!(count("conn=1", &exchanges), conn1);
        assert_eq!(count("connection=127.0.0.1:40001", &exchanges), conn1);
        assert_eq!(count("conn=127.0.0.1:9092", &exchanges), total);
        assert_eq!(count("conn=:9092", &exchanges), total);
        assert_eq!(count("conn=:40001", &exchanges), conn1);
        assert_eq!(count("conn=127.0.0.1", &exchanges), total);
        assert_eq!(count("conn~:40001", &exchanges), conn1);
        assert_eq!(
            count("conn>0", &exchanges),
            total - exchanges.iter().filter(|e| e.connection == 0).count()
        );
        let complete = exchanges
            .iter()
            .filter(|e| e.state == ExchangeState::Complete)
            .count();
        assert_eq!(count("state=complete", &exchanges), complete);
        assert_eq!(count("state=missing", &exchanges), total - complete);
        assert_eq!(count("state=inferred", &exchanges), 0);
        exchanges[0].inferred = true;
        exchanges[1].state = ExchangeState::NoResponseExpected;
        assert_eq!(count("state=inferred", &exchanges), 1);
        assert_eq!(count("state=no-response", &exchanges), 1);
        let undecodable = exchanges
            .iter()
            .filter(|e| e.decode_error().is_some())
            .count();
        assert_eq!(count("state=undecodable", &exchanges), undecodable);
        assert_eq!(count("state=lost", &exchanges), 0);
    }

    #[test]
    fn size_with_units() {
        let exchanges = corpus_exchanges("kcat-mock.frames");
        let size = |e: &Exchange| e.request_size().unwrap_or(0) + e.response_size().unwrap_or(0);
        let over = |n: usize| exchanges.iter().filter(|e| size(e) > n).count();
        assert_eq!(count("size>1000", &exchanges), over(1000));
        assert_eq!(count("size>1KB", &exchanges), over(1000));
        assert_eq!(count("size>1kib", &exchanges), over(1024));
        assert_eq!(count("size>1000B", &exchanges), over(1000));
    }

    #[test]
    fn blanks_are_optional_around_operators() {
        assert_eq!(canonical("api = Produce"), "api=Produce");
        assert_eq!(canonical("  api==Produce  "), "api=Produce");
        assert_eq!(
            canonical("!(api=0)&&corr>=-1"),
            "(not api=0 and correlation>=-1)"
        );
        assert_eq!(canonical("conn=[::1]:9092"), "conn=[::1]:9092");
        assert_eq!(canonical("latency >= 1.5ms"), "latency>=1.5ms");
    }

    #[test]
    fn every_field_name_parses() {
        for name in FIELD_NAMES {
            assert!(Field::from_name(name).is_some(), "{name}");
            assert!(FIELD_LIST.contains(name), "{name}");
        }
    }

    #[test]
    fn summary_is_needed_only_for_summary_fields() {
        assert!(!parse("api=Produce and latency>5ms")
            .unwrap()
            .needs_summary());
        assert!(parse("api=Produce and topic=x").unwrap().needs_summary());
        assert!(parse("not error=NONE").unwrap().needs_summary());
        assert!(parse("records>1").unwrap().needs_summary());
        assert!(parse("state=bad_crc").unwrap().needs_summary());
        assert!(!parse("state=lost").unwrap().needs_summary());
    }

    #[test]
    fn patterns() {
        let pattern = Pattern::new("^Ord");
        assert!(pattern.matches("orders"));
        assert!(!pattern.matches("reorders"));
        assert!(Pattern::new("ERS$").matches("orders"));
        assert!(!Pattern::new("ord$").matches("orders"));
        assert!(Pattern::new("^orders$").matches("ORDERS"));
        assert!(Pattern::new("").matches(""));
        assert!(Pattern::new("dé").matches("ordé"));
        assert!(!Pattern::new("longer than").matches("short"));
    }
}
