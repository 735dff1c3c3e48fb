//! The two small globs the runner uses: `--case produce.*` over case ids
//! (`*` any run of characters, `?` one character), and mask paths over
//! dotted field paths, where a segment is matched with the same glob and
//! `**` stands for any number of segments (`**.throttle_time_ms`).

/// Matches `text` against a `*`/`?` pattern. Iterative with one backtrack
/// point, so the cost is bounded by `pattern.len() * text.len()`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches a dotted path (`responses.0.partitions.1.log_append_time_ms`)
/// against a mask (`**.*time*`). Segments are matched with [`fn@matches`];
/// a `**` segment matches zero or more segments.
pub fn path_matches(mask: &str, path: &str) -> bool {
    let mask: Vec<&str> = mask.split('.').collect();
    let path: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').collect()
    };
    segments_match(&mask, &path)
}

fn segments_match(mask: &[&str], path: &[&str]) -> bool {
    match mask.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                matches(first, segment) && segments_match(rest, path_rest)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(matches("produce.*", "produce.acks.all"));
        assert!(matches("*", ""));
        assert!(matches("*.acks.*", "produce.acks.all"));
        assert!(matches("h?ndshake", "handshake"));
        assert!(!matches("produce.*", "fetch.x"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!matches("*a*b*c*", "xxaxxcxxbxx"));
    }

    #[test]
    fn double_star_spans_segments() {
        assert!(path_matches("**.throttle_time_ms", "throttle_time_ms"));
        assert!(path_matches(
            "**.*timestamp*",
            "topics.0.partitions.3.max_timestamp_ms"
        ));
        assert!(path_matches("topics.*.topic_id", "topics.12.topic_id"));
        assert!(!path_matches(
            "topics.*.topic_id",
            "topics.1.partitions.0.topic_id"
        ));
        assert!(path_matches("brokers.**", "brokers.0.host"));
        assert!(!path_matches("**.host", "hosts"));
    }
}
