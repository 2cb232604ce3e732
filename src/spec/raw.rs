//! The experiment file as written: every field optional, nothing checked yet.
//!
//! Unknown keys are not rejected here; [`super::validate`] finds them all at once from
//! the source map, with positions and suggestions, which serde's first-error-only
//! `deny_unknown_fields` cannot give.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::grid::Scalar;

#[derive(Debug, Default, Deserialize)]
pub struct RawExperiment {
    pub name: Option<String>,
    pub task: Option<String>,
    pub dataset: Option<RawData>,
    pub exemplars: Option<RawData>,
    pub labelers: Option<Ordered<RawLabeler>>,
    pub grid: Option<RawGrid>,
    pub exclude: Option<Vec<Ordered<RawAxisValue>>>,
    pub include: Option<Vec<Ordered<RawAxisValue>>>,
    pub position_debias: Option<String>,
    pub seed: Option<u64>,
    pub templates: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawData {
    pub format: Option<String>,
    pub path: Option<String>,
    pub limit: Option<usize>,
    pub seed: Option<u64>,
    pub shuffle: Option<bool>,
    pub high_confidence: Option<bool>,
    pub split: Option<RawSplit>,
    pub id_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSplit {
    pub holdout: Option<f64>,
    pub keep: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLabeler {
    pub backend: Option<String>,
    pub model: Option<String>,
    // openai
    pub base_url: Option<OneOrMany<String>>,
    pub api: Option<String>,
    pub mode: Option<String>,
    pub max_concurrency: Option<i64>,
    pub requests_per_minute: Option<i64>,
    pub api_key_env: Option<String>,
    pub top_logprobs: Option<i64>,
    pub timeout_secs: Option<i64>,
    pub max_retries: Option<i64>,
    pub price: Option<RawPrice>,
    // openai and embedded
    pub max_rationale_tokens: Option<i64>,
    pub rationale_stop: Option<OneOrMany<String>>,
    pub top_k: Option<i64>,
    // embedded
    pub path: Option<String>,
    pub threads: Option<i64>,
    pub workers: Option<i64>,
    pub chat: Option<bool>,
    // simulated
    pub accuracy: Option<f64>,
    pub position_bias: Option<f64>,
    pub seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawPrice {
    pub prompt: Option<f64>,
    pub completion: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGrid {
    pub preamble: Option<Vec<String>>,
    pub few_shot: Option<Vec<i64>>,
    pub exemplar_seed: Option<Vec<u64>>,
    pub cot: Option<Vec<bool>>,
    pub self_consistency: Option<Vec<RawSelfConsistency>>,
    pub labeler: Option<Vec<String>>,
    pub vars: Option<Ordered<Vec<Scalar>>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
pub struct RawSelfConsistency {
    pub samples: Option<i64>,
    pub temperature: Option<f64>,
}

/// A value in an `exclude` or `include` entry: a scalar, or a self-consistency mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawAxisValue {
    Scalar(Scalar),
    /// Several values where an entry takes one: read, so the checker can say so. Tried
    /// before the mapping, which serde would also read from a two-item list.
    List(Vec<Scalar>),
    SelfConsistency(RawSelfConsistency),
    /// Anything else (a list of mappings, say), for the checker to refuse.
    Other(serde::de::IgnoredAny),
}

/// A string, or a list of them (`base_url`, `rationale_stop`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// A mapping whose key order matters (labelers, user axes, partial cells).
#[derive(Debug, Clone)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = access.next_entry::<String, T>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}
