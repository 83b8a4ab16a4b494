//! Channel names and subscription patterns.
//!
//! A channel name is `/segment/segment/...`. Wildcards may only appear as the
//! whole *last* segment of a subscription pattern: `/foo/*` matches exactly one
//! more segment, `/foo/**` one or more. Concrete channels (what is published
//! to) never contain wildcards.

use std::fmt;
use std::sync::Arc;

/// Longest accepted channel name, in bytes: bounds index keys and log rows.
pub const MAX_CHANNEL_LEN: usize = 512;

/// Why a channel name or pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Empty, not starting with `/`, an empty segment, a bad character, or too long.
    #[error("invalid channel name {0:?}")]
    Invalid(String),
    /// A wildcard used where a concrete channel is needed, or not as the last segment.
    #[error("wildcard not allowed here: {0:?}")]
    Wildcard(String),
}

fn valid_segment_char(c: char) -> bool {
    // The Bayeux grammar allows alphanumerics and a set of marks; CometD is
    // more lenient still. Anything that could confuse a URL, JSON or a log
    // line (whitespace, quotes, control characters) is refused.
    c.is_ascii_alphanumeric() || "-_.!~()$@+%=,;&'#:".contains(c)
}

/// Splits and validates; returns the segments (without the leading empty one).
fn segments(raw: &str) -> Result<Vec<&str>, ChannelError> {
    if raw.len() > MAX_CHANNEL_LEN || !raw.starts_with('/') || raw.len() < 2 {
        return Err(ChannelError::Invalid(raw.to_owned()));
    }
    let segs: Vec<&str> = raw[1..].split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(ChannelError::Invalid(raw.to_owned()));
    }
    Ok(segs)
}

/// A concrete channel name (no wildcards). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// Parses a concrete channel name.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        for seg in segments(raw)? {
            if seg == "*" || seg == "**" {
                return Err(ChannelError::Wildcard(raw.to_owned()));
            }
            if !seg.chars().all(valid_segment_char) {
                return Err(ChannelError::Invalid(raw.to_owned()));
            }
        }
        Ok(Self(Arc::from(raw)))
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `/meta/...`: protocol channels, never published to or delivered.
    pub fn is_meta(&self) -> bool {
        self.0.starts_with("/meta/")
    }

    /// `/service/...`: messages go to the server's hook, never broadcast.
    pub fn is_service(&self) -> bool {
        self.0.starts_with("/service/")
    }

    /// Every subscription pattern (as a string) that matches this channel:
    /// the channel itself, `<parent>/*`, and `<ancestor>/**` for each ancestor.
    /// Used to look up waiting sessions by pattern without scanning them all.
    pub fn matching_patterns(&self) -> Vec<String> {
        let name = self.as_str();
        let mut out = vec![name.to_owned()];
        let cuts: Vec<usize> = name
            .char_indices()
            .filter(|(_, c)| *c == '/')
            .map(|(i, _)| i)
            .collect();
        for (n, &cut) in cuts.iter().enumerate().rev() {
            let prefix = &name[..cut];
            if n + 1 == cuts.len() {
                out.push(format!("{prefix}/*"));
            }
            out.push(format!("{prefix}/**"));
        }
        out
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PatternKind {
    Exact,
    /// `/prefix/*`
    OneSegment,
    /// `/prefix/**`
    AnyDepth,
}

/// A subscription pattern: a concrete channel or one ending in `*` / `**`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelPattern {
    raw: Arc<str>,
    kind: PatternKind,
}

impl ChannelPattern {
    /// Parses a subscription pattern.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        let segs = segments(raw)?;
        let last = segs.len() - 1;
        let mut kind = PatternKind::Exact;
        for (i, seg) in segs.iter().enumerate() {
            match *seg {
                "*" | "**" if i != last => return Err(ChannelError::Wildcard(raw.to_owned())),
                "*" => kind = PatternKind::OneSegment,
                "**" => kind = PatternKind::AnyDepth,
                s if s.chars().all(valid_segment_char) => {}
                _ => return Err(ChannelError::Invalid(raw.to_owned())),
            }
        }
        Ok(Self {
            raw: Arc::from(raw),
            kind,
        })
    }

    /// The pattern as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The same string as an `Arc`, for use as an index key.
    pub fn as_arc(&self) -> Arc<str> {
        self.raw.clone()
    }

    /// Whether the pattern ends in `*` or `**`.
    pub fn is_wildcard(&self) -> bool {
        self.kind != PatternKind::Exact
    }

    /// Whether the pattern names `/meta/...` channels, which cannot be subscribed to.
    /// (`/**` is fine: meta messages are replies, never delivered to subscribers.)
    pub fn is_meta(&self) -> bool {
        self.raw.starts_with("/meta/")
    }

    /// Whether the pattern names `/service/...` channels.
    pub fn is_service(&self) -> bool {
        self.raw.starts_with("/service/")
    }

    /// Whether a concrete channel matches this pattern.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        match self.kind {
            PatternKind::Exact => *self.raw == *channel.as_str(),
            PatternKind::OneSegment | PatternKind::AnyDepth => {
                // The prefix is the pattern minus the trailing `*` or `**`,
                // and keeps its trailing `/`: "/foo/*" -> "/foo/".
                let prefix = self.raw.trim_end_matches('*');
                let Some(rest) = channel.as_str().strip_prefix(prefix) else {
                    return false;
                };
                !rest.is_empty() && (self.kind == PatternKind::AnyDepth || !rest.contains('/'))
            }
        }
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }
    fn pat(s: &str) -> ChannelPattern {
        ChannelPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        assert!(pat("/foo/bar").matches(&ch("/foo/bar")));
        assert!(!pat("/foo/bar").matches(&ch("/foo/barx")));
        assert!(!pat("/foo/bar").matches(&ch("/foo/bar/baz")));
        assert!(!pat("/foo/bar").matches(&ch("/foo")));
    }

    #[test]
    fn single_star_matches_exactly_one_segment() {
        let p = pat("/foo/*");
        assert!(p.matches(&ch("/foo/bar")));
        assert!(!p.matches(&ch("/foo")));
        assert!(!p.matches(&ch("/foo/bar/baz")));
        assert!(!p.matches(&ch("/foobar/x")));
        assert!(pat("/*").matches(&ch("/foo")));
        assert!(!pat("/*").matches(&ch("/foo/bar")));
    }

    #[test]
    fn double_star_matches_any_depth_below() {
        let p = pat("/foo/**");
        assert!(p.matches(&ch("/foo/bar")));
        assert!(p.matches(&ch("/foo/bar/baz/qux")));
        assert!(!p.matches(&ch("/foo")));
        assert!(!p.matches(&ch("/foobar/baz")));
        assert!(pat("/**").matches(&ch("/a/b/c")));
    }

    #[test]
    fn wildcards_only_allowed_as_last_segment_of_patterns() {
        assert!(ChannelPattern::parse("/foo/*/bar").is_err());
        assert!(ChannelPattern::parse("/**/bar").is_err());
        assert!(ChannelPattern::parse("/foo/b*").is_err());
        assert!(ChannelName::parse("/foo/*").is_err());
        assert!(ChannelName::parse("/foo/**").is_err());
    }

    #[test]
    fn malformed_names_are_rejected() {
        for bad in [
            "",
            "/",
            "foo",
            "/foo/",
            "//foo",
            "/foo//bar",
            "/foo bar",
            "/foo\"",
            "/a\n",
        ] {
            assert!(ChannelName::parse(bad).is_err(), "{bad:?} accepted");
            assert!(ChannelPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("/{}", "a".repeat(MAX_CHANNEL_LEN));
        assert!(ChannelName::parse(&long).is_err());
    }

    #[test]
    fn kinds_of_channels() {
        assert!(ch("/meta/connect").is_meta());
        assert!(ch("/service/echo").is_service());
        assert!(!ch("/v2/me/calls").is_meta());
        assert!(pat("/meta/*").is_meta());
        assert!(!pat("/**").is_meta());
        assert!(pat("/service/**").is_service());
        assert!(!pat("/v2/**").is_meta());
    }

    #[test]
    fn matching_patterns_lists_every_pattern_that_matches() {
        let c = ch("/v2/me/calls");
        let got = c.matching_patterns();
        let want = ["/v2/me/calls", "/v2/me/*", "/v2/me/**", "/v2/**", "/**"];
        assert_eq!(got, want);
        // Consistency with `matches`: every listed pattern matches, and a few
        // non-listed ones do not.
        for p in &got {
            assert!(pat(p).matches(&c), "{p}");
        }
        for p in ["/v2/*", "/*", "/v2/me", "/v2/me/calls/*"] {
            assert!(!pat(p).matches(&c), "{p}");
        }
        assert_eq!(ch("/a").matching_patterns(), ["/a", "/*", "/**"]);
    }
}
