//! Shared by the data-loader targets: load the bytes as a file of one format, plainly and
//! through every filter.

use std::path::PathBuf;

use rlaif::data::{self, DataFormat, DataSource, Split, SplitSide};

/// Loads `bytes` as a `format` file named `name` (a `.gz` name gunzips them), once as is
/// and once with every subset option on; any result but a panic is fine.
pub fn load(format: DataFormat, name: &str, bytes: &[u8]) {
    let plain = DataSource {
        format,
        path: PathBuf::from(name),
        limit: None,
        seed: 0,
        shuffle: false,
        high_confidence: false,
        split: None,
        id_prefix: None,
    };
    if let Ok(dataset) = data::load_bytes(&plain, bytes) {
        assert!(
            !dataset.examples.is_empty(),
            "a loaded dataset is never empty"
        );
        // The exemplar pool is drawn from loaded data: choosing must not panic either.
        let _ = data::usable_exemplars(&dataset.examples);
        let _ = data::choose_exemplars(&dataset.examples, 3, 7);
    }
    let filtered = DataSource {
        limit: Some(3),
        seed: 42,
        shuffle: true,
        high_confidence: true,
        split: Some(Split {
            holdout: 0.5,
            keep: SplitSide::Holdout,
        }),
        id_prefix: Some("fz".to_owned()),
        ..plain
    };
    if let Ok(dataset) = data::load_bytes(&filtered, bytes) {
        assert!(
            !dataset.examples.is_empty(),
            "a loaded dataset is never empty"
        );
        assert!(dataset.examples.len() <= 3, "the limit holds");
    }
}
