//! kwire-gen turns Apache Kafka's JSON message definitions and error table into
//! kwire's static protocol tables (`src/schema/generated.rs`). It copies facts
//! only: names, types, version ranges, tags and defaults; the definitions'
//! prose stays behind. The output is deterministic (files in name order,
//! fields in definition order) so that a test can prove that regenerating it
//! changes nothing. The table types it targets live in kwire's `src/schema/mod.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::{Map, Value};

/// Reads every `*.json` definition in `messages_dir` and the error table in
/// `errors_tsv`, and returns the full text of `generated.rs`.
pub fn generate(messages_dir: &Path, errors_tsv: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    let entries = fs::read_dir(messages_dir)
        .map_err(|e| format!("cannot read {}: {e}", messages_dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", messages_dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    // read_dir's order depends on the file system; the output must not.
    files.sort();

    let mut generator = Generator::default();
    for path in &files {
        let file_name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json: Value = serde_json::from_str(&strip_comments(&text))
            .map_err(|e| format!("{file_name}: invalid JSON: {e}"))?;
        generator
            .message(&file_name, &json)
            .map_err(|e| format!("{file_name}: {e}"))?;
    }
    let errors_text = fs::read_to_string(errors_tsv)
        .map_err(|e| format!("cannot read {}: {e}", errors_tsv.display()))?;
    let errors =
        parse_errors(&errors_text).map_err(|e| format!("{}: {e}", errors_tsv.display()))?;
    generator.finish(&errors)
}

/// Removes `//` comments. The definitions are JSON plus line comments, and
/// "about" strings may hold URLs, so this tracks string literals rather than
/// matching `//` anywhere on a line.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            // Skip to the end of the line but keep the newline, so that
            // serde_json's error positions still match the file's lines.
            while chars.peek().is_some_and(|&next| next != '\n') {
                chars.next();
            }
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// An inclusive version range; `min > max` is "none", `max == i16::MAX` is "N+".
#[derive(Clone, Copy, PartialEq)]
struct Versions {
    min: i16,
    max: i16,
}

const NONE: Versions = Versions { min: 0, max: -1 };

/// Parses the definitions' version syntax: "none", "3+", "3-7" or "5".
fn parse_versions(text: &str) -> Result<Versions, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<i16>()
            .map_err(|_| format!("bad version range {text:?}"))
    };
    let versions = if text == "none" {
        NONE
    } else if let Some(min) = text.strip_suffix('+') {
        Versions {
            min: number(min)?,
            max: i16::MAX,
        }
    } else if let Some((min, max)) = text.split_once('-') {
        Versions {
            min: number(min)?,
            max: number(max)?,
        }
    } else {
        let version = number(text)?;
        Versions {
            min: version,
            max: version,
        }
    };
    Ok(versions)
}

fn render_versions(v: Versions) -> String {
    if v == NONE {
        "Versions::NONE".to_string()
    } else if v.max == i16::MAX {
        format!("Versions::from({})", v.min)
    } else {
        format!("Versions::new({}, {})", v.min, v.max)
    }
}

/// `TopicData` -> `topic_data`, `ProducerID` -> `producer_id`, `V3AndBelow`
/// -> `v3_and_below`, `timeoutMs` -> `timeout_ms`: a word starts at a capital
/// that follows a lower-case letter or digit, or at the last capital of a run
/// that is followed by a lower-case letter.
fn snake_case(name: &str) -> String {
    // KRaft is Kafka's Raft (KIP-500), one word: `kraft_version`, not `k_raft_version`.
    let chars: Vec<char> = name.replace("KRaft", "Kraft").chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `TopicProduceData` -> `TOPIC_PRODUCE_DATA`, for Rust static names.
fn screaming(name: &str) -> String {
    snake_case(name).to_ascii_uppercase()
}

/// One generated top-level message, remembered for the index tables.
struct Message {
    name: String,
    ident: String,
    kind: &'static str,
    api_key: Option<i16>,
}

#[derive(Default)]
struct Generator {
    /// The message and struct statics, in file order.
    body: String,
    messages: Vec<Message>,
    /// Every Rust identifier emitted so far, to catch collisions.
    idents: HashSet<String>,
}

/// The per-file context for resolving struct types.
struct FileScope<'a> {
    message: &'a str,
    /// commonStructs of this file, by name.
    common: HashMap<&'a str, &'a Value>,
}

// Keys the generator knows. An unknown key is an error, so that a new kind of
// fact in a future definition cannot be dropped silently. The ones it reads
// nothing from are prose (`about`) or matter to Kafka's Java code generator
// only (`entityType`, `ignorable`, `mapKey`, `zeroCopy`, `listeners`,
// `latestVersionUnstable`).
const MESSAGE_KEYS: &[&str] = &[
    "apiKey",
    "type",
    "name",
    "validVersions",
    "flexibleVersions",
    "deprecatedVersions",
    "fields",
    "commonStructs",
    "listeners",
    "latestVersionUnstable",
];
const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "versions",
    "nullableVersions",
    "taggedVersions",
    "tag",
    "flexibleVersions",
    "default",
    "fields",
    "about",
    "entityType",
    "ignorable",
    "mapKey",
    "zeroCopy",
];
const COMMON_STRUCT_KEYS: &[&str] = &["name", "versions", "fields"];

fn check_keys(object: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(format!(
            "{what}: unknown key {key:?}; teach kwire-gen what it means"
        )),
        None => Ok(()),
    }
}

fn str_key<'a>(object: &'a Value, key: &str) -> Result<&'a str, String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string {key:?}"))
}

fn versions_key(object: &Value, key: &str) -> Result<Option<Versions>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .as_str()
                .ok_or_else(|| format!("{key:?} is not a string"))?;
            parse_versions(text).map(Some)
        }
    }
}

fn fields_of(object: &Value) -> Result<&[Value], String> {
    object
        .get("fields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| "missing \"fields\"".to_string())
}

impl Generator {
    fn message(&mut self, file_name: &str, json: &Value) -> Result<(), String> {
        let object = json.as_object().ok_or("not a JSON object")?;
        check_keys(object, MESSAGE_KEYS, "message")?;
        let name = str_key(json, "name")?;
        let kind = match str_key(json, "type")? {
            "request" => "Request",
            "response" => "Response",
            "header" => "Header",
            "data" => "Data",
            other => return Err(format!("unknown message type {other:?}")),
        };
        let api_key = match json.get("apiKey") {
            None => None,
            Some(key) => Some(
                key.as_i64()
                    .and_then(|k| i16::try_from(k).ok())
                    .ok_or("bad apiKey")?,
            ),
        };
        if api_key.is_some() != matches!(kind, "Request" | "Response") {
            return Err(format!(
                "a {kind} message {} an apiKey",
                if api_key.is_some() { "has" } else { "lacks" }
            ));
        }
        let valid = versions_key(json, "validVersions")?.ok_or("missing validVersions")?;
        let flexible = versions_key(json, "flexibleVersions")?.ok_or("missing flexibleVersions")?;
        let deprecated = versions_key(json, "deprecatedVersions")?.unwrap_or(NONE);

        let mut common = HashMap::new();
        if let Some(structs) = json.get("commonStructs") {
            for common_struct in structs.as_array().ok_or("commonStructs is not an array")? {
                let object = common_struct
                    .as_object()
                    .ok_or("a common struct is not an object")?;
                check_keys(object, COMMON_STRUCT_KEYS, "common struct")?;
                let struct_name = str_key(common_struct, "name")?;
                if common.insert(struct_name, common_struct).is_some() {
                    return Err(format!("common struct {struct_name} is defined twice"));
                }
            }
        }
        let scope = FileScope {
            message: name,
            common,
        };

        let ident = screaming(name);
        self.claim(&ident)?;
        // Struct statics are collected apart and written after the message,
        // so the file reads top-down.
        let mut structs = String::new();
        let fields = self.fields(&scope, fields_of(json)?, "        ", &mut structs)?;
        // The common structs are emitted whether used or not, in file order,
        // so that every struct of a definition has its static.
        let mut common_names: Vec<&str> = Vec::new();
        for common_struct in json
            .get("commonStructs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            common_names.push(str_key(common_struct, "name")?);
        }
        for struct_name in common_names {
            let definition = scope.common[struct_name];
            self.struct_static(&scope, struct_name, definition, &mut structs)?;
        }

        // The headers are reached through public references, not the API table.
        let declaration = match kind {
            "Header" => format!("pub static {ident}: &MessageSpec = &MessageSpec {{"),
            _ => format!("static {ident}: MessageSpec = MessageSpec {{"),
        };
        let out = &mut self.body;
        let _ = writeln!(out, "\n// {file_name}");
        let _ = writeln!(out, "{declaration}");
        let _ = writeln!(out, "    name: {name:?},");
        let _ = writeln!(out, "    kind: MessageKind::{kind},");
        let _ = writeln!(out, "    valid: {},", render_versions(valid));
        let _ = writeln!(out, "    flexible: {},", render_versions(flexible));
        let _ = writeln!(out, "    deprecated: {},", render_versions(deprecated));
        let _ = writeln!(out, "    body: &StructSpec {{ name: {name:?}, fields: &[");
        out.push_str(&fields);
        let _ = writeln!(out, "    ] }},");
        let _ = writeln!(out, "}};");
        out.push_str(&structs);

        self.messages.push(Message {
            name: name.to_string(),
            ident,
            kind,
            api_key,
        });
        Ok(())
    }

    fn claim(&mut self, ident: &str) -> Result<(), String> {
        if self.idents.insert(ident.to_string()) {
            Ok(())
        } else {
            Err(format!("two statics would be named {ident}"))
        }
    }

    /// Renders a field list, one `FieldSpec` per line, and appends the statics
    /// of the structs it declares to `structs`.
    fn fields(
        &mut self,
        scope: &FileScope,
        fields: &[Value],
        indent: &str,
        structs: &mut String,
    ) -> Result<String, String> {
        let mut out = String::new();
        for field in fields {
            let name = str_key(field, "name")?;
            let line = self
                .field(scope, field, structs)
                .map_err(|e| format!("field {name}: {e}"))?;
            let _ = writeln!(out, "{indent}{line}");
        }
        Ok(out)
    }

    fn field(
        &mut self,
        scope: &FileScope,
        field: &Value,
        structs: &mut String,
    ) -> Result<String, String> {
        check_keys(
            field.as_object().ok_or("not an object")?,
            FIELD_KEYS,
            "field",
        )?;
        let name = str_key(field, "name")?;
        let type_name = str_key(field, "type")?;
        let ty = self.field_type(scope, field, type_name, structs)?;
        let versions = versions_key(field, "versions")?.ok_or("missing versions")?;

        // Only what differs from the `FIELD` base in the output is written.
        let mut line = format!(
            "FieldSpec {{ name: {:?}, ty: {ty}, versions: {}, ",
            snake_case(name),
            render_versions(versions)
        );
        if let Some(nullable) = versions_key(field, "nullableVersions")? {
            let _ = write!(line, "nullable: {}, ", render_versions(nullable));
        }
        match (versions_key(field, "taggedVersions")?, field.get("tag")) {
            (Some(tagged), Some(tag)) => {
                // BrokerHeartbeatRequest writes its tag as the string "0";
                // Kafka's own parser accepts either form.
                let tag = match tag {
                    Value::String(text) => text.parse::<u32>().ok(),
                    _ => tag.as_u64().and_then(|t| u32::try_from(t).ok()),
                }
                .ok_or("bad tag")?;
                let _ = write!(
                    line,
                    "tagged: {}, tag: Some({tag}), ",
                    render_versions(tagged)
                );
            }
            (None, None) => {}
            _ => return Err("a tagged field needs both \"tag\" and \"taggedVersions\"".to_string()),
        }
        if let Some(flexible) = versions_key(field, "flexibleVersions")? {
            let _ = write!(line, "flexible: Some({}), ", render_versions(flexible));
        }
        if let Some(default) = field.get("default") {
            let _ = write!(
                line,
                "default: DefaultValue::{}, ",
                render_default(type_name, default)?
            );
        }
        line.push_str("..FIELD },");
        Ok(line)
    }

    /// Renders a type expression such as `FieldType::Array(&FieldType::Int32)`,
    /// emitting the static of a struct type declared inline.
    fn field_type(
        &mut self,
        scope: &FileScope,
        field: &Value,
        type_name: &str,
        structs: &mut String,
    ) -> Result<String, String> {
        if let Some(element) = type_name.strip_prefix("[]") {
            let inner = self.field_type(scope, field, element, structs)?;
            return Ok(format!("FieldType::Array(&{inner})"));
        }
        let primitive = match type_name {
            "bool" => "Bool",
            "int8" => "Int8",
            "int16" => "Int16",
            "uint16" => "Uint16",
            "int32" => "Int32",
            "uint32" => "Uint32",
            "int64" => "Int64",
            "float64" => "Float64",
            "string" => "String",
            "bytes" => "Bytes",
            "uuid" => "Uuid",
            "records" => "Records",
            _ => "",
        };
        if !primitive.is_empty() {
            if field.get("fields").is_some() {
                return Err(format!("type {type_name} cannot have fields"));
            }
            return Ok(format!("FieldType::{primitive}"));
        }
        if !type_name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(format!("unknown type {type_name:?}"));
        }
        // A struct type: declared here when the field has `fields`, otherwise
        // a reference to a common struct of the same file.
        if field.get("fields").is_some() {
            if scope.common.contains_key(type_name) {
                return Err(format!(
                    "struct {type_name} is declared inline and as a common struct"
                ));
            }
            self.struct_static(scope, type_name, field, structs)?;
        } else if !scope.common.contains_key(type_name) {
            return Err(format!(
                "struct {type_name} is neither declared inline nor a common struct"
            ));
        }
        Ok(format!(
            "FieldType::Struct(&{})",
            struct_ident(scope, type_name)
        ))
    }

    fn struct_static(
        &mut self,
        scope: &FileScope,
        name: &str,
        definition: &Value,
        structs: &mut String,
    ) -> Result<(), String> {
        let ident = struct_ident(scope, name);
        self.claim(&ident)?;
        // Nested structs go after this one: render the fields first, then
        // put this static in front of what they added.
        let mut nested = String::new();
        let fields = self
            .fields(scope, fields_of(definition)?, "    ", &mut nested)
            .map_err(|e| format!("struct {name}: {e}"))?;
        let _ = writeln!(
            structs,
            "static {ident}: StructSpec = StructSpec {{ name: {name:?}, fields: &["
        );
        structs.push_str(&fields);
        let _ = writeln!(structs, "] }};");
        structs.push_str(&nested);
        Ok(())
    }

    fn finish(self, errors: &[(i16, String, bool)]) -> Result<String, String> {
        // Pair requests and responses by API key; BTreeMap sorts the keys.
        let mut apis: BTreeMap<i16, (Option<&Message>, Option<&Message>)> = BTreeMap::new();
        let (mut request_header, mut response_header) = (false, false);
        let mut data = Vec::new();
        for message in &self.messages {
            match (message.kind, message.api_key) {
                ("Request", Some(key)) => set_once(&mut apis.entry(key).or_default().0, message)?,
                ("Response", Some(key)) => set_once(&mut apis.entry(key).or_default().1, message)?,
                ("Header", _) if message.name == "RequestHeader" => request_header = true,
                ("Header", _) if message.name == "ResponseHeader" => response_header = true,
                ("Header", _) => return Err(format!("unexpected header {}", message.name)),
                _ => data.push(message),
            }
        }
        if !request_header || !response_header {
            return Err("RequestHeader.json or ResponseHeader.json is missing".to_string());
        }

        let mut out = String::new();
        out.push_str("// Generated by kwire-gen from Kafka's message definitions. Do not edit.\n");
        out.push_str("use super::*;\n");
        out.push_str("\n// What a field is unless its definition says otherwise.\n");
        out.push_str("const FIELD: FieldSpec = FieldSpec {\n");
        out.push_str("    name: \"\", ty: FieldType::Bool, versions: Versions::NONE, nullable: Versions::NONE,\n");
        out.push_str(
            "    tagged: Versions::NONE, tag: None, flexible: None, default: DefaultValue::Zero,\n",
        );
        out.push_str("};\n");

        out.push_str("\npub static APIS: &[ApiSpec] = &[\n");
        for (key, pair) in &apis {
            let (Some(request), Some(response)) = *pair else {
                return Err(format!("API key {key} lacks its request or its response"));
            };
            let api_name = request
                .name
                .strip_suffix("Request")
                .ok_or_else(|| format!("{}: a request's name must end in Request", request.name))?;
            if response.name != format!("{api_name}Response") {
                return Err(format!(
                    "API key {key} pairs {} with {}",
                    request.name, response.name
                ));
            }
            let _ = writeln!(
                out,
                "    ApiSpec {{ key: {key}, name: {api_name:?}, request: &{}, response: &{} }},",
                request.ident, response.ident
            );
        }
        out.push_str("];\n");

        out.push_str("\npub static DATA_STRUCTS: &[&MessageSpec] = &[\n");
        for message in data {
            let _ = writeln!(out, "    &{},", message.ident);
        }
        out.push_str("];\n");

        out.push_str("\npub static ERRORS: &[ErrorSpec] = &[\n");
        for (code, name, retriable) in errors {
            let _ = writeln!(
                out,
                "    ErrorSpec {{ code: {code}, name: {name:?}, retriable: {retriable} }},"
            );
        }
        out.push_str("];\n");

        out.push_str(&self.body);
        Ok(out)
    }
}

/// The static of struct `name` in the current file. Struct names repeat
/// across files with different fields, so the message name prefixes them.
fn struct_ident(scope: &FileScope, name: &str) -> String {
    format!("{}_{}", screaming(scope.message), screaming(name))
}

fn set_once<'a>(slot: &mut Option<&'a Message>, message: &'a Message) -> Result<(), String> {
    match slot.replace(message) {
        Some(previous) => Err(format!(
            "{} and {} share an API key",
            previous.name, message.name
        )),
        None => Ok(()),
    }
}

/// Maps a definition's `default` (a JSON string such as "-1", "null",
/// "0x7fffffff", or a raw number or bool) to a `DefaultValue` variant.
fn render_default(type_name: &str, default: &Value) -> Result<String, String> {
    let text = match default {
        Value::String(text) => text.clone(),
        Value::Number(_) | Value::Bool(_) => default.to_string(),
        _ => return Err(format!("bad default {default}")),
    };
    if text == "null" {
        return Ok("Null".to_string());
    }
    let bad = || format!("default {text:?} does not fit type {type_name}");
    let range = match type_name {
        "int8" => Some((i8::MIN as i64, i8::MAX as i64)),
        "int16" => Some((i16::MIN as i64, i16::MAX as i64)),
        "uint16" => Some((0, u16::MAX as i64)),
        "int32" => Some((i32::MIN as i64, i32::MAX as i64)),
        "uint32" => Some((0, u32::MAX as i64)),
        "int64" => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    if let Some((min, max)) = range {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let magnitude = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => digits.parse::<i128>(),
        }
        .map_err(|_| bad())?;
        let value = if negative { -magnitude } else { magnitude };
        if value < min as i128 || value > max as i128 {
            return Err(bad());
        }
        return Ok(format!("Int({value})"));
    }
    match type_name {
        "bool" => match text.as_str() {
            "true" | "false" => Ok(format!("Bool({text})")),
            _ => Err(bad()),
        },
        // `{:?}` of an f64 always has a decimal point or exponent, so it
        // stays a float literal in Rust.
        "float64" => text
            .parse::<f64>()
            .map(|value| format!("Float({value:?})"))
            .map_err(|_| bad()),
        "string" => Ok(format!("Str({text:?})")),
        _ => Err(bad()),
    }
}

/// Parses the error table: a header line, then `code<TAB>name<TAB>retriable`.
/// Returns the rows sorted by code.
fn parse_errors(text: &str) -> Result<Vec<(i16, String, bool)>, String> {
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: expected code, name, retriable", index + 1);
        let mut columns = line.split('\t');
        let (Some(code), Some(name), Some(retriable), None) = (
            columns.next(),
            columns.next(),
            columns.next(),
            columns.next(),
        ) else {
            return Err(bad());
        };
        let code = code.trim().parse::<i16>().map_err(|_| bad())?;
        let retriable = match retriable.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(bad()),
        };
        rows.push((code, name.trim().to_string(), retriable));
    }
    rows.sort_by_key(|row| row.0);
    if let Some(pair) = rows.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!("error code {} appears twice", pair[0].0));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_splits_words_and_acronyms() {
        assert_eq!(snake_case("TopicData"), "topic_data");
        assert_eq!(snake_case("ClientId"), "client_id");
        assert_eq!(snake_case("ProducerID"), "producer_id");
        assert_eq!(snake_case("IsrNodes"), "isr_nodes");
        assert_eq!(snake_case("ZkMigrationReady"), "zk_migration_ready");
        assert_eq!(snake_case("timeoutMs"), "timeout_ms");
        assert_eq!(snake_case("V3AndBelowTopics"), "v3_and_below_topics");
        assert_eq!(
            snake_case("ResultsByTopicV3AndBelow"),
            "results_by_topic_v3_and_below"
        );
        assert_eq!(snake_case("isKRaftController"), "is_kraft_controller");
    }

    #[test]
    fn versions_parse_every_form() {
        let render = |text| render_versions(parse_versions(text).unwrap());
        assert_eq!(render("0+"), "Versions::from(0)");
        assert_eq!(render("3-7"), "Versions::new(3, 7)");
        assert_eq!(render("5"), "Versions::new(5, 5)");
        assert_eq!(render("none"), "Versions::NONE");
        assert!(parse_versions("x+").is_err());
    }

    #[test]
    fn comments_inside_strings_survive() {
        let text = "{ // comment\n  \"about\": \"see http://kafka.apache.org \\\" // still text\" // gone\n}";
        let stripped = strip_comments(text);
        assert_eq!(
            stripped,
            "{ \n  \"about\": \"see http://kafka.apache.org \\\" // still text\" \n}"
        );
    }

    #[test]
    fn defaults_map_by_type() {
        let render = |ty, json: &str| render_default(ty, &serde_json::from_str(json).unwrap());
        assert_eq!(
            render("int32", "\"0x7fffffff\"").unwrap(),
            "Int(2147483647)"
        );
        assert_eq!(render("int64", "-1").unwrap(), "Int(-1)");
        assert_eq!(render("string", "\"null\"").unwrap(), "Null");
        assert_eq!(render("string", "\"\"").unwrap(), "Str(\"\")");
        assert_eq!(render("bool", "false").unwrap(), "Bool(false)");
        assert_eq!(render("float64", "\"1\"").unwrap(), "Float(1.0)");
        assert!(render("int8", "\"300\"").is_err());
    }
}
