//! Domain newtypes: values that are valid by construction ("parse, don't
//! validate"), so the layers behind the API never see a malformed one.

mod email;
pub mod market;
mod password;
pub mod portfolio;
pub mod schema;
mod secret;
mod symbol;

pub use email::Email;
pub use password::{assess_password, Assessment, NewPassword, PasswordRejection};
pub use secret::Secret;
pub use symbol::Symbol;

use chrono::{DateTime, SecondsFormat, Utc};

/// A new opaque, time-ordered identifier (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time at the resolution every store keeps (microseconds),
/// so a record reads back equal to what was written.
pub fn now() -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
}

/// RFC 3339 UTC with second precision, as every timestamp in the API.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serde helpers that write timestamps the way the API shows them.
pub mod ts {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }
    }
}
