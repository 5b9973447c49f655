//! What a job asks for beyond the words: speaker labels and PII redaction, with AssemblyAI's
//! names for them (`speaker_labels`, `speakers_expected`, `redact_pii`,
//! `redact_pii_policies`, `redact_pii_sub`). Stored as JSON in
//! `warble_jobs.features` (`NULL` when none is asked), read by the worker.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::redact::{Policy, Substitution};

/// The most speakers a diarization model tells apart (every published Sortformer: 4).
pub const MAX_SPEAKERS: u8 = 4;

/// A job's requested features. Every field is optional on input; the defaults ask for nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Features {
    /// Label each word with its speaker ("A", "B", ... in order of first appearance), split
    /// segments where the speaker changes and add `utterances` to the transcript; SRT and VTT
    /// name the speaker of each cue. Needs a worker with a diarization model
    /// (`WARBLE_DIARIZATION_MODEL`).
    #[serde(default)]
    pub speaker_labels: bool,
    /// With `speaker_labels`: the most speakers to label, 1 to 4. The quietest speakers beyond
    /// it are folded into the others (their words go to the nearest remaining speaker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 4)]
    pub speakers_expected: Option<u8>,
    /// Replace personal information in the transcript (docs/redaction.md says what is found).
    /// The unredacted transcript is never stored.
    #[serde(default)]
    pub redact_pii: bool,
    /// With `redact_pii`: which kinds to redact; empty or absent for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact_pii_policies: Vec<Policy>,
    /// With `redact_pii`: what replaces each entity (default `entity_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redact_pii_sub: Option<Substitution>,
}

impl Features {
    /// Whether nothing beyond the words is asked (stored as `NULL`).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The stored form: `None` when nothing is asked.
    pub fn to_column(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).expect("features serialise"))
    }

    /// Reads the stored form; a value this version cannot read asks for nothing.
    pub fn from_column(column: Option<&str>) -> Self {
        column
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// Sets the field `name` from its text form (a form field), or says why it cannot be set.
    /// `Ok(false)` for a name that is no feature. Booleans are `true`/`false`, policies a
    /// comma-separated list (a repeated field adds to it).
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let value = value.trim();
        match name {
            "speaker_labels" => self.speaker_labels = boolean(name, value)?,
            "speakers_expected" => self.speakers_expected = Some(speakers(value)?),
            "redact_pii" => self.redact_pii = boolean(name, value)?,
            "redact_pii_policies" => {
                for policy in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let policy: Policy = policy.parse().map_err(|e| format!("{e}"))?;
                    if !self.redact_pii_policies.contains(&policy) {
                        self.redact_pii_policies.push(policy);
                    }
                }
            }
            "redact_pii_sub" => {
                self.redact_pii_sub = Some(match value {
                    "entity_name" => Substitution::EntityName,
                    "hash" => Substitution::Hash,
                    _ => return Err("redact_pii_sub must be entity_name or hash".into()),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the combination: settings of a feature need the feature.
    pub fn check(&self) -> Result<(), String> {
        if let Some(n) = self.speakers_expected {
            if !self.speaker_labels {
                return Err("speakers_expected needs speaker_labels=true".into());
            }
            speakers(&n.to_string())?;
        }
        let redaction_settings =
            !self.redact_pii_policies.is_empty() || self.redact_pii_sub.is_some();
        if redaction_settings && !self.redact_pii {
            return Err("redact_pii_policies and redact_pii_sub need redact_pii=true".into());
        }
        Ok(())
    }
}

/// The field names [`Features::set`] takes.
pub const NAMES: &str =
    "speaker_labels, speakers_expected, redact_pii, redact_pii_policies, redact_pii_sub";

fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    }
}

fn speakers(value: &str) -> Result<u8, String> {
    value
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=MAX_SPEAKERS).contains(n))
        .ok_or_else(|| format!("speakers_expected must be a whole number from 1 to {MAX_SPEAKERS}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_set_features_and_bad_values_say_why() {
        let mut f = Features::default();
        assert_eq!(f.set("speaker_labels", "true"), Ok(true));
        assert_eq!(f.set("speakers_expected", "2"), Ok(true));
        assert_eq!(f.set("redact_pii", "true"), Ok(true));
        assert_eq!(
            f.set("redact_pii_policies", "email_address, phone_number"),
            Ok(true)
        );
        assert_eq!(f.set("redact_pii_policies", "phone_number"), Ok(true));
        assert_eq!(f.set("redact_pii_sub", "hash"), Ok(true));
        assert_eq!(f.set("decoder", "tdt"), Ok(false));
        assert_eq!(
            f.redact_pii_policies,
            vec![Policy::EmailAddress, Policy::PhoneNumber]
        );
        assert!(f.check().is_ok());
        assert!(
            f.set("speakers_expected", "5")
                .unwrap_err()
                .contains("1 to 4")
        );
        assert!(f.set("speakers_expected", "0").is_err());
        assert!(
            f.set("speaker_labels", "yes")
                .unwrap_err()
                .contains("true or false")
        );
        assert!(
            f.set("redact_pii_policies", "person_name")
                .unwrap_err()
                .contains("person_name")
        );
        assert!(f.set("redact_pii_sub", "stars").is_err());
    }

    #[test]
    fn settings_need_their_feature() {
        let only_count = Features {
            speakers_expected: Some(2),
            ..Features::default()
        };
        assert!(only_count.check().unwrap_err().contains("speaker_labels"));
        let only_policy = Features {
            redact_pii_policies: vec![Policy::Url],
            ..Features::default()
        };
        assert!(only_policy.check().unwrap_err().contains("redact_pii=true"));
    }

    #[test]
    fn nothing_asked_is_stored_as_null_and_round_trips_otherwise() {
        assert_eq!(Features::default().to_column(), None);
        let f = Features {
            speaker_labels: true,
            redact_pii: true,
            redact_pii_sub: Some(Substitution::Hash),
            ..Features::default()
        };
        assert_eq!(Features::from_column(f.to_column().as_deref()), f);
        assert_eq!(Features::from_column(Some("not json")), Features::default());
    }
}
