//! Identifiers, each its own type so a user id can never be passed where a
//! participant id is expected.
//!
//! Every id is an opaque string chosen outside the core (the core creates no
//! ids: new ids arrive as command arguments).

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string as this kind of id.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_id!(
    /// A conference of any kind: the GWS call id, the GWS chat id or the Evo session id.
    ConferenceId
);
string_id!(
    /// An authenticated user (GWS user id, Evo user id).
    UserId
);
string_id!(
    /// A participant of a GWS chat (`participantId`), unique within the chat.
    ParticipantId
);
string_id!(
    /// A member of an Evo session, unique within the session.
    MemberId
);
string_id!(
    /// An Evo account.
    AccountId
);
string_id!(
    /// A GWS device (a user's phone line).
    DeviceId
);
string_id!(
    /// A phone number as it was written (`15001`, `+1 555 0100`).
    ///
    /// Two numbers are the same when their digits are the same: see [`PhoneNumber::same_number`].
    PhoneNumber
);

impl PhoneNumber {
    /// The digits of the number, in order, without `+`, spaces or punctuation.
    pub fn digits(&self) -> String {
        digits_of(&self.0)
    }

    /// Whether `other` names the same line: both have digits and the digits are equal,
    /// so `+1 555 0100` and `+15550100` are the same number.
    pub fn same_number(&self, other: &str) -> bool {
        let mine = self.digits();
        !mine.is_empty() && mine == digits_of(other)
    }
}

/// Whether the text is written like a phone number: only digits and the usual
/// separators (`+ - . ( )` and spaces), with at least one digit.
///
/// Used to decide whether a free-form reference (Evo's `MemberToRemove`) should be
/// compared as a phone number: a member id such as `m1` has a digit but is not a number.
pub fn looks_like_phone_number(text: &str) -> bool {
    let mut has_digit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            has_digit = true;
        } else if !matches!(c, '+' | '-' | '.' | '(' | ')' | ' ') {
            return false;
        }
    }
    has_digit
}

fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_compare_by_digits() {
        let number = PhoneNumber::new("+1 555 0100");
        assert!(number.same_number("+15550100"));
        assert!(number.same_number("1-555-0100"));
        assert!(!number.same_number("+15550101"));
        assert!(!PhoneNumber::new("abc").same_number("def"));
    }

    #[test]
    fn phone_number_shape() {
        assert!(looks_like_phone_number("+1 (555) 010-0"));
        assert!(!looks_like_phone_number("m1"));
        assert!(!looks_like_phone_number("agent@example.com"));
        assert!(!looks_like_phone_number("+ -"));
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = UserId::new("914165a5841348aa94ccfccd56917443");
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some("\"914165a5841348aa94ccfccd56917443\"")
        );
    }
}
