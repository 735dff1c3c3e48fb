//! Matchers: what a suite expects of a response, written as JSON.
//!
//! A matcher is checked against the JSON form of a decoded response (the
//! form `kwire decode --json` prints), and every mismatch names the field
//! path, the expectation and the actual value.
//!
//! | JSON | matches |
//! |---|---|
//! | a number, string, bool or null | that value; a string that is an error name (`"NONE"`, `"UNKNOWN_TOPIC_OR_PARTITION"`) also matches that error's code |
//! | `{"field": m, ...}` | an object whose listed fields match; **other fields are not checked** (partial match) |
//! | `[m, ...]` | an array of exactly that many elements, matched in order |
//! | `{"$eq": v}` | exactly `v`, objects included (no partial match) |
//! | `{"$any": true}` | any value, as long as the field is present |
//! | `{"$absent": true}` | the field is not present (not sent in this version, or a tagged field not sent) |
//! | `{"$type": "int"}` | `int`, `number`, `string`, `bool`, `array`, `object` or `null` |
//! | `{"$range": [lo, hi]}` | a number with `lo <= n <= hi`; `null` leaves a bound open |
//! | `{"$regex": "^kwire-"}` | a string the regular expression finds a match in (use `^...$` to anchor) |
//! | `{"$prefix": s}`, `{"$suffix": s}`, `{"$substring": s}` | a string starting with, ending with, containing `s` |
//! | `{"$one_of": [m, ...]}` | a value matching at least one |
//! | `{"$all": [m, ...]}` | a value matching every one |
//! | `{"$not": m}` | a value (or absence) not matching `m` |
//! | `{"$contains": m}` | an array with at least one element matching `m` |
//! | `{"$every": m}` | an array whose elements all match `m` (an empty array does) |
//! | `{"$unordered": [m, ...]}` | an array of exactly that many elements, matched one to one in any order |
//! | `{"$len": n}` or `{"$len": [lo, hi]}` or `{"$len": m}` | an array, string or object whose length matches |
//! | `{"$error": "NAME"}` | an error code equal to that error's (names as in the protocol guide's error table) |
//! | `{"$var": "name"}` | the value of a variable captured earlier (the same as `"${name}"`) |
//!
//! An object whose keys start with `$` is an operator and takes exactly one
//! key; combine operators with `$all`.

use std::fmt;

use serde_json::Value as Json;

use super::vars::Vars;
use crate::schema;

/// A parsed matcher; `source` is the JSON it was written as.
#[derive(Clone, Debug)]
pub struct Matcher {
    kind: Kind,
    source: Json,
}

#[derive(Clone, Debug)]
enum Kind {
    Exact(Json),
    Eq(Json),
    Fields(Vec<(String, Matcher)>),
    Elements(Vec<Matcher>),
    Any,
    Absent,
    Type(JsonType),
    Range(Option<f64>, Option<f64>),
    Regex(regex_lite::Regex),
    Prefix(String),
    Suffix(String),
    Substring(String),
    OneOf(Vec<Matcher>),
    All(Vec<Matcher>),
    Not(Box<Matcher>),
    Contains(Box<Matcher>),
    Every(Box<Matcher>),
    Unordered(Vec<Matcher>),
    Len(Box<Matcher>),
    Error(i16),
    Var(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    Int,
    Number,
    String,
    Bool,
    Array,
    Object,
    Null,
}

impl JsonType {
    const NAMES: [(&'static str, JsonType); 9] = [
        ("int", JsonType::Int),
        ("integer", JsonType::Int),
        ("number", JsonType::Number),
        ("string", JsonType::String),
        ("bool", JsonType::Bool),
        ("boolean", JsonType::Bool),
        ("array", JsonType::Array),
        ("object", JsonType::Object),
        ("null", JsonType::Null),
    ];

    fn of(value: &Json) -> JsonType {
        match value {
            Json::Null => JsonType::Null,
            Json::Bool(_) => JsonType::Bool,
            Json::Number(number) if number.is_i64() || number.is_u64() => JsonType::Int,
            Json::Number(_) => JsonType::Number,
            Json::String(_) => JsonType::String,
            Json::Array(_) => JsonType::Array,
            Json::Object(_) => JsonType::Object,
        }
    }

    fn accepts(self, value: &Json) -> bool {
        let actual = JsonType::of(value);
        actual == self || (self == JsonType::Number && actual == JsonType::Int)
    }
}

/// One way a response differs from the expectation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Mismatch {
    /// Dotted field path from the top of the checked tree, with array
    /// indexes: `topics.0.error_code`. Empty for the tree itself.
    pub path: String,
    /// The expectation, as readable text (usually the matcher's JSON).
    pub expected: String,
    /// The actual value as compact JSON, `(absent)` when the field is
    /// missing; error codes carry their name.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top)"
        } else {
            &self.path
        };
        write!(
            f,
            "at {path}: expected {}, actual {}",
            self.expected, self.actual
        )
    }
}

/// The most mismatches one check reports; the rest are counted only.
pub const MAX_MISMATCHES: usize = 50;
/// Longest rendering of one value in a mismatch.
const MAX_SHOWN: usize = 400;
/// Largest array `$unordered` pairs up (its cost is quadratic).
const MAX_UNORDERED: usize = 2_000;

impl Matcher {
    /// Parses a matcher. `at` names where it sits, for error messages
    /// (`expect.topics.0`).
    pub fn parse(json: &Json, at: &str) -> Result<Matcher, String> {
        let kind = match json {
            Json::Object(object) if object.keys().any(|key| key.starts_with('$')) => {
                if object.len() != 1 {
                    return Err(format!(
                        "{at}: an operator object takes exactly one `$` key (found {}); combine operators with $all",
                        object.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                let Some((op, arg)) = object.iter().next() else {
                    return Err(format!("{at}: empty operator object"));
                };
                parse_operator(op, arg, &format!("{at}.{op}"))?
            }
            Json::Object(object) => Kind::Fields(
                object
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), Matcher::parse(value, &join(at, key))?)))
                    .collect::<Result<_, String>>()?,
            ),
            Json::Array(items) => Kind::Elements(parse_list(items, at)?),
            other => Kind::Exact(other.clone()),
        };
        Ok(Matcher {
            kind,
            source: json.clone(),
        })
    }

    /// The matcher as written, for reports.
    pub fn source(&self) -> &Json {
        &self.source
    }

    /// Checks `actual` (None: the field is absent) and appends mismatches
    /// found at or under `path`.
    pub fn check(&self, actual: Option<&Json>, path: &str, vars: &Vars, out: &mut Vec<Mismatch>) {
        if out.len() >= MAX_MISMATCHES {
            return;
        }
        let fail = |out: &mut Vec<Mismatch>, expected: String| {
            out.push(Mismatch {
                path: path.to_owned(),
                expected,
                actual: show_actual(path, actual),
            });
        };
        let shown = || show(&self.source);
        match &self.kind {
            Kind::Absent => {
                if actual.is_some() {
                    fail(out, "absent".to_owned());
                }
            }
            Kind::Not(inner) => {
                if inner.is_match(actual, vars) {
                    fail(out, format!("not {}", show(&inner.source)));
                }
            }
            // Alternatives and conjunctions pass absence on, so that
            // `{"$one_of": [{"$absent": true}, ...]}` accepts a field of
            // other versions.
            Kind::OneOf(options) => {
                if !options.iter().any(|option| option.is_match(actual, vars)) {
                    fail(out, shown());
                }
            }
            Kind::All(all) => {
                for matcher in all {
                    matcher.check(actual, path, vars, out);
                }
            }
            _ if actual.is_none() => fail(out, shown()),
            Kind::Any => {}
            Kind::Exact(expected) => {
                if !actual.is_some_and(|actual| json_eq(expected, actual, true)) {
                    fail(out, shown());
                }
            }
            Kind::Eq(expected) => {
                if !actual.is_some_and(|actual| json_eq(expected, actual, false)) {
                    fail(out, shown());
                }
            }
            Kind::Fields(fields) => match actual {
                Some(Json::Object(object)) => {
                    for (name, matcher) in fields {
                        matcher.check(object.get(name), &join(path, name), vars, out);
                    }
                }
                _ => fail(out, "an object".to_owned()),
            },
            Kind::Elements(elements) => match actual {
                Some(Json::Array(items)) if items.len() == elements.len() => {
                    for (index, (matcher, item)) in elements.iter().zip(items).enumerate() {
                        matcher.check(Some(item), &join(path, &index.to_string()), vars, out);
                    }
                }
                _ => fail(
                    out,
                    format!("an array of {} elements: {}", elements.len(), shown()),
                ),
            },
            Kind::Type(ty) => {
                if !actual.is_some_and(|actual| ty.accepts(actual)) {
                    fail(out, shown());
                }
            }
            Kind::Range(low, high) => {
                let inside = actual.and_then(Json::as_f64).is_some_and(|number| {
                    low.is_none_or(|low| number >= low) && high.is_none_or(|high| number <= high)
                });
                if !inside {
                    fail(out, shown());
                }
            }
            Kind::Regex(regex) => {
                if !actual
                    .and_then(Json::as_str)
                    .is_some_and(|text| regex.is_match(text))
                {
                    fail(out, shown());
                }
            }
            Kind::Prefix(part) | Kind::Suffix(part) | Kind::Substring(part) => {
                let ok = actual
                    .and_then(Json::as_str)
                    .is_some_and(|text| match &self.kind {
                        Kind::Prefix(_) => text.starts_with(part.as_str()),
                        Kind::Suffix(_) => text.ends_with(part.as_str()),
                        _ => text.contains(part.as_str()),
                    });
                if !ok {
                    fail(out, shown());
                }
            }
            Kind::Contains(inner) => {
                let found = match actual {
                    Some(Json::Array(items)) => {
                        items.iter().any(|item| inner.is_match(Some(item), vars))
                    }
                    _ => false,
                };
                if !found {
                    fail(out, format!("an array containing {}", show(&inner.source)));
                }
            }
            Kind::Every(inner) => match actual {
                Some(Json::Array(items)) => {
                    for (index, item) in items.iter().enumerate() {
                        inner.check(Some(item), &join(path, &index.to_string()), vars, out);
                    }
                }
                _ => fail(
                    out,
                    format!("an array whose elements all match {}", show(&inner.source)),
                ),
            },
            Kind::Unordered(elements) => {
                let ok = match actual {
                    Some(Json::Array(items)) => {
                        items.len() == elements.len()
                            && items.len() <= MAX_UNORDERED
                            && perfect_matching(elements, items, vars)
                    }
                    _ => false,
                };
                if !ok {
                    fail(out, shown());
                }
            }
            Kind::Len(inner) => {
                let length = match actual {
                    Some(Json::Array(items)) => Some(items.len()),
                    Some(Json::String(text)) => Some(text.chars().count()),
                    Some(Json::Object(object)) => Some(object.len()),
                    _ => None,
                };
                match length {
                    Some(length) if inner.is_match(Some(&Json::from(length)), vars) => {}
                    Some(length) => out.push(Mismatch {
                        path: path.to_owned(),
                        expected: format!("length {}", show(&inner.source)),
                        actual: format!("length {length}: {}", show_actual(path, actual)),
                    }),
                    None => fail(out, format!("an array, string or object: {}", shown())),
                }
            }
            Kind::Error(code) => {
                if actual.and_then(Json::as_i64) != Some(i64::from(*code)) {
                    fail(out, format!("{} ({code})", error_name(i64::from(*code))));
                }
            }
            Kind::Var(name) => match vars.get(name) {
                Some(expected) => {
                    if !actual.is_some_and(|actual| json_eq(expected, actual, true)) {
                        fail(out, format!("{} (${{{name}}})", show(expected)));
                    }
                }
                None => fail(out, format!("${{{name}}}, which is not defined")),
            },
        }
    }

    /// Whether `actual` matches, without collecting mismatches.
    pub fn is_match(&self, actual: Option<&Json>, vars: &Vars) -> bool {
        let mut out = Vec::new();
        self.check(actual, "", vars, &mut out);
        out.is_empty()
    }

    /// Checks a whole tree; returns every mismatch (up to [`MAX_MISMATCHES`]).
    pub fn mismatches(&self, actual: &Json, vars: &Vars) -> Vec<Mismatch> {
        let mut out = Vec::new();
        self.check(Some(actual), "", vars, &mut out);
        out
    }
}

fn parse_operator(op: &str, arg: &Json, at: &str) -> Result<Kind, String> {
    let expect_true = |kind: Kind| match arg {
        Json::Bool(true) => Ok(kind),
        _ => Err(format!("{at}: takes `true`")),
    };
    let string = || {
        arg.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{at}: takes a string"))
    };
    Ok(match op {
        "$eq" => Kind::Eq(arg.clone()),
        "$any" => expect_true(Kind::Any)?,
        "$absent" => expect_true(Kind::Absent)?,
        "$type" => {
            let name = string()?;
            let ty = JsonType::NAMES
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, ty)| *ty)
                .ok_or_else(|| {
                    format!("{at}: unknown type {name:?} (int, number, string, bool, array, object, null)")
                })?;
            Kind::Type(ty)
        }
        "$range" => {
            let (low, high) = parse_range(arg).ok_or_else(|| {
                format!("{at}: takes [low, high] with numbers or null for an open bound")
            })?;
            Kind::Range(low, high)
        }
        "$regex" => {
            let pattern = string()?;
            let regex = regex_lite::Regex::new(&pattern)
                .map_err(|error| format!("{at}: invalid regular expression: {error}"))?;
            Kind::Regex(regex)
        }
        "$prefix" => Kind::Prefix(string()?),
        "$suffix" => Kind::Suffix(string()?),
        "$substring" => Kind::Substring(string()?),
        "$one_of" | "$all" | "$unordered" => {
            let Json::Array(items) = arg else {
                return Err(format!("{at}: takes an array of matchers"));
            };
            if items.is_empty() && op == "$one_of" {
                return Err(format!("{at}: needs at least one choice"));
            }
            let list = parse_list(items, at)?;
            match op {
                "$one_of" => Kind::OneOf(list),
                "$all" => Kind::All(list),
                _ => Kind::Unordered(list),
            }
        }
        "$not" => Kind::Not(Box::new(Matcher::parse(arg, at)?)),
        "$contains" => Kind::Contains(Box::new(Matcher::parse(arg, at)?)),
        "$every" => Kind::Every(Box::new(Matcher::parse(arg, at)?)),
        "$len" => {
            let inner = match arg {
                Json::Number(number) if number.as_u64().is_some() => Matcher::parse(arg, at)?,
                Json::Array(_) => {
                    let (low, high) = parse_range(arg)
                        .ok_or_else(|| format!("{at}: takes n, [low, high] or a matcher"))?;
                    Matcher {
                        kind: Kind::Range(low, high),
                        source: serde_json::json!({ "$range": arg }),
                    }
                }
                Json::Object(_) => Matcher::parse(arg, at)?,
                _ => return Err(format!("{at}: takes n, [low, high] or a matcher")),
            };
            Kind::Len(Box::new(inner))
        }
        "$error" => {
            let code =
                match arg {
                    Json::String(name) => schema::error_by_name(name)
                        .map(|error| error.code)
                        .ok_or_else(|| format!("{at}: unknown error name {name:?}"))?,
                    Json::Number(number) => number
                        .as_i64()
                        .and_then(|code| i16::try_from(code).ok())
                        .ok_or_else(|| format!("{at}: {number} is not an int16 error code"))?,
                    _ => return Err(format!("{at}: takes an error name or code")),
                };
            Kind::Error(code)
        }
        "$var" => Kind::Var(string()?),
        _ => {
            return Err(format!(
                "{at}: unknown operator {op} (known: $eq $any $absent $type $range $regex $prefix \
                 $suffix $substring $one_of $all $not $contains $every $unordered $len $error $var)"
            ))
        }
    })
}

fn parse_list(items: &[Json], at: &str) -> Result<Vec<Matcher>, String> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| Matcher::parse(item, &join(at, &index.to_string())))
        .collect()
}

fn parse_range(arg: &Json) -> Option<(Option<f64>, Option<f64>)> {
    let Json::Array(bounds) = arg else {
        return None;
    };
    let [low, high] = bounds.as_slice() else {
        return None;
    };
    let bound = |value: &Json| match value {
        Json::Null => Some(None),
        Json::Number(number) => number.as_f64().map(Some),
        _ => None,
    };
    Some((bound(low)?, bound(high)?))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Equality of an expected and an actual JSON value. Numbers compare by
/// value; an expected error name equals its code. With `partial`, an
/// expected object only needs its own fields to be equal.
pub fn json_eq(expected: &Json, actual: &Json, partial: bool) -> bool {
    match (expected, actual) {
        (Json::Number(a), Json::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        (Json::String(name), Json::Number(code)) => schema::error_by_name(name)
            .is_some_and(|error| code.as_i64() == Some(i64::from(error.code))),
        (Json::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_eq(a, b, partial))
        }
        (Json::Object(a), Json::Object(b)) => {
            (partial || a.len() == b.len())
                && a.iter().all(|(key, value)| {
                    b.get(key)
                        .is_some_and(|other| json_eq(value, other, partial))
                })
        }
        _ => expected == actual,
    }
}

/// Kuhn's augmenting paths: can every matcher take a distinct item?
fn perfect_matching(matchers: &[Matcher], items: &[Json], vars: &Vars) -> bool {
    let fits: Vec<Vec<bool>> = matchers
        .iter()
        .map(|matcher| {
            items
                .iter()
                .map(|item| matcher.is_match(Some(item), vars))
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; items.len()];
    for matcher in 0..matchers.len() {
        let mut seen = vec![false; items.len()];
        if !augment(matcher, &fits, &mut owner, &mut seen) {
            return false;
        }
    }
    true
}

fn augment(
    matcher: usize,
    fits: &[Vec<bool>],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for item in 0..owner.len() {
        if fits[matcher][item] && !seen[item] {
            seen[item] = true;
            let free = match owner[item] {
                None => true,
                Some(other) => augment(other, fits, owner, seen),
            };
            if free {
                owner[item] = Some(matcher);
                return true;
            }
        }
    }
    false
}

/// Compact JSON, shortened to 400 characters.
pub fn show(value: &Json) -> String {
    let text = value.to_string();
    if text.chars().count() <= MAX_SHOWN {
        return text;
    }
    let cut: String = text.chars().take(MAX_SHOWN).collect();
    format!("{cut}… ({} bytes)", text.len())
}

/// The actual value for a report; an integer under a field named like an
/// error code carries the error's name.
pub fn show_actual(path: &str, actual: Option<&Json>) -> String {
    let Some(actual) = actual else {
        return "(absent)".to_owned();
    };
    let field = path.rsplit('.').next().unwrap_or(path);
    match actual.as_i64() {
        Some(code) if field.ends_with("error_code") || field == "error" => {
            format!("{code} ({})", error_name(code))
        }
        _ => show(actual),
    }
}

fn error_name(code: i64) -> String {
    i16::try_from(code)
        .ok()
        .and_then(schema::error)
        .map_or_else(|| "unknown error".to_owned(), |error| error.name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(matcher: Json, actual: Json) -> Vec<Mismatch> {
        let vars = match json!({"member": "m-1", "offset": 7}) {
            Json::Object(map) => map,
            _ => unreachable!(),
        };
        Matcher::parse(&matcher, "expect")
            .expect("parses")
            .mismatches(&actual, &vars)
    }

    fn ok(matcher: Json, actual: Json) {
        let mismatches = check(matcher.clone(), actual.clone());
        assert!(
            mismatches.is_empty(),
            "{matcher} vs {actual}: {mismatches:?}"
        );
    }

    fn fails(matcher: Json, actual: Json) -> Mismatch {
        let mut mismatches = check(matcher.clone(), actual.clone());
        assert_eq!(mismatches.len(), 1, "{matcher} vs {actual}: {mismatches:?}");
        mismatches.remove(0)
    }

    #[test]
    fn objects_match_partially_and_arrays_exactly() {
        ok(json!({"a": 1}), json!({"a": 1, "b": 2}));
        ok(json!({}), json!({"x": 1}));
        let mismatch = fails(json!({"a": {"b": [1, 2]}}), json!({"a": {"b": [1, 3]}}));
        assert_eq!(mismatch.path, "a.b.1");
        assert_eq!(
            (mismatch.expected.as_str(), mismatch.actual.as_str()),
            ("2", "3")
        );
        assert_eq!(fails(json!([1]), json!([1, 2])).path, "");
        assert_eq!(fails(json!({"a": 1}), json!({})).actual, "(absent)");
        ok(json!(1.0), json!(1));
    }

    #[test]
    fn error_names_match_codes_and_are_shown() {
        ok(json!({"error_code": "NONE"}), json!({"error_code": 0}));
        ok(
            json!({"error_code": {"$error": "UNSUPPORTED_VERSION"}}),
            json!({"error_code": 35}),
        );
        let mismatch = fails(json!({"error_code": "NONE"}), json!({"error_code": 3}));
        assert_eq!(mismatch.actual, "3 (UNKNOWN_TOPIC_OR_PARTITION)");
        assert_eq!(
            fails(json!({"e": {"$error": 35}}), json!({"e": 0})).expected,
            "UNSUPPORTED_VERSION (35)"
        );
    }

    #[test]
    fn operators() {
        ok(json!({"$any": true}), json!(null));
        ok(json!({"x": {"$absent": true}}), json!({"y": 1}));
        fails(json!({"x": {"$absent": true}}), json!({"x": 1}));
        fails(json!({"x": {"$any": true}}), json!({}));
        ok(json!({"$type": "int"}), json!(3));
        ok(json!({"$type": "number"}), json!(3));
        fails(json!({"$type": "int"}), json!(3.5));
        ok(json!({"$range": [0, 10]}), json!(10));
        ok(json!({"$range": [null, 0]}), json!(-5));
        fails(json!({"$range": [1, null]}), json!(0));
        ok(json!({"$regex": "^kw[a-z]+-\\d+$"}), json!("kwire-12"));
        fails(json!({"$regex": "^x"}), json!(5));
        ok(json!({"$prefix": "kw"}), json!("kwire"));
        ok(json!({"$suffix": "re"}), json!("kwire"));
        ok(json!({"$substring": "wir"}), json!("kwire"));
        ok(
            json!({"$one_of": ["NONE", "UNKNOWN_TOPIC_OR_PARTITION"]}),
            json!(3),
        );
        fails(json!({"$one_of": [1, 2]}), json!(3));
        // Absence reaches the alternatives: a field of other versions.
        ok(json!({"x": {"$one_of": [{"$absent": true}, 1]}}), json!({}));
        ok(
            json!({"x": {"$one_of": [{"$absent": true}, 1]}}),
            json!({"x": 1}),
        );
        fails(
            json!({"x": {"$one_of": [{"$absent": true}, 1]}}),
            json!({"x": 2}),
        );
        fails(json!({"x": {"$one_of": [1, 2]}}), json!({}));
        ok(
            json!({"$all": [{"$type": "int"}, {"$range": [1, 5]}]}),
            json!(4),
        );
        ok(json!({"$not": {"$len": 0}}), json!([1]));
        ok(json!({"x": {"$not": {"$any": true}}}), json!({}));
        ok(json!({"$eq": {"a": 1}}), json!({"a": 1}));
        fails(json!({"$eq": {"a": 1}}), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn arrays_contains_unordered_and_len() {
        let keys = json!([{"api_key": 0}, {"api_key": 18}, {"api_key": 3}]);
        ok(json!({"$contains": {"api_key": 18}}), keys.clone());
        let mismatch = fails(json!({"$contains": {"api_key": 99}}), keys.clone());
        assert!(mismatch.expected.contains("99"), "{mismatch:?}");
        ok(
            json!({"$unordered": [{"api_key": 3}, {"api_key": 0}, {"$any": true}]}),
            keys.clone(),
        );
        fails(
            json!({"$unordered": [{"api_key": 3}, {"api_key": 3}, {"$any": true}]}),
            keys.clone(),
        );
        // A greedy pairing would give the first matcher item 0 and fail.
        ok(json!({"$unordered": [{"$type": "int"}, 1]}), json!([1, 2]));
        ok(
            json!({"$every": {"api_key": {"$range": [0, 18]}}}),
            keys.clone(),
        );
        ok(json!({"$every": {"api_key": 1}}), json!([]));
        let mismatch = fails(
            json!({"$every": {"api_key": {"$range": [0, 10]}}}),
            keys.clone(),
        );
        assert_eq!(mismatch.path, "1.api_key");
        ok(json!({"$len": 3}), keys.clone());
        ok(json!({"$len": [1, null]}), json!("abc"));
        let mismatch = fails(json!({"$len": 2}), keys);
        assert!(mismatch.actual.starts_with("length 3"), "{mismatch:?}");
    }

    #[test]
    fn variables() {
        ok(
            json!({"member_id": {"$var": "member"}}),
            json!({"member_id": "m-1"}),
        );
        let mismatch = fails(json!({"o": {"$var": "offset"}}), json!({"o": 8}));
        assert_eq!(mismatch.expected, "7 (${offset})");
        assert!(fails(json!({"$var": "nope"}), json!(1))
            .expected
            .contains("not defined"));
    }

    #[test]
    fn bad_matchers_are_rejected_with_their_place() {
        let bad = |matcher: Json| Matcher::parse(&matcher, "expect").expect_err("bad");
        assert!(bad(json!({"a": {"$bogus": 1}})).starts_with("expect.a.$bogus: unknown operator"));
        assert!(bad(json!({"$range": [1]})).contains("[low, high]"));
        assert!(bad(json!({"$regex": "("})).contains("invalid regular expression"));
        assert!(bad(json!({"$error": "NO_SUCH_ERROR"})).contains("unknown error name"));
        assert!(bad(json!({"$any": true, "x": 1})).contains("exactly one"));
        assert!(bad(json!({"$type": "float"})).contains("unknown type"));
        assert!(bad(json!({"$one_of": []})).contains("at least one"));
        assert!(bad(json!([{"a": {"$len": "x"}}])).starts_with("expect.0.a.$len"));
    }

    #[test]
    fn mismatches_are_bounded() {
        let matcher: Vec<Json> = (0..100).map(|_| json!(1)).collect();
        let actual: Vec<Json> = (0..100).map(|_| json!(2)).collect();
        assert_eq!(
            check(Json::Array(matcher), Json::Array(actual)).len(),
            MAX_MISMATCHES
        );
    }
}
