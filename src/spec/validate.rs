//! Raw experiment → validated [`Experiment`], collecting every problem on the way.
//!
//! Each check reports at the position of the value it rejects (or of the nearest key
//! that exists, for something missing) and says what would fix it. Checks go on after a
//! problem, so one run of `rlaif validate` lists everything that is wrong. Checks that
//! need the data or the templates live in [`crate::prepare`].

use std::path::Path;

use super::diagnostic::Diagnostic;
use super::raw::{
    OneOrMany, Ordered, RawAxisValue, RawData, RawExperiment, RawGrid, RawLabeler,
    RawSelfConsistency,
};
use super::source_map::{Position, SourceMap, child, item};
use super::{Experiment, PositionDebias};
use crate::backend::{Api, EMBEDDED_MODELS, LabelerConfig, Mode, Price};
use crate::data::{DataFormat, DataSource, Split, SplitSide};
use crate::grid::{Axes, Grid, MAX_CELLS, Partial, Scalar, SelfConsistency};
use crate::prompt::BUILTIN_VARIABLES;
use crate::report::table::thousands;

pub const ROOT_KEYS: &[&str] = &[
    "name",
    "task",
    "dataset",
    "exemplars",
    "labelers",
    "grid",
    "exclude",
    "include",
    "position_debias",
    "seed",
    "templates",
];
const DATA_KEYS: &[&str] = &[
    "format",
    "path",
    "limit",
    "seed",
    "shuffle",
    "high_confidence",
    "split",
    "id_prefix",
];
const SPLIT_KEYS: &[&str] = &["holdout", "keep"];
const GRID_KEYS: &[&str] = &[
    "preamble",
    "few_shot",
    "exemplar_seed",
    "cot",
    "self_consistency",
    "labeler",
    "vars",
];
const SELF_CONSISTENCY_KEYS: &[&str] = &["samples", "temperature"];
const PARTIAL_KEYS: &[&str] = &[
    "preamble",
    "few_shot",
    "exemplar_seed",
    "cot",
    "self_consistency",
    "samples",
    "temperature",
    "labeler",
];
const PRICE_KEYS: &[&str] = &["prompt", "completion"];
const BACKENDS: &[&str] = &["openai", "embedded", "simulated"];
const OPENAI_KEYS: &[&str] = &[
    "backend",
    "base_url",
    "api",
    "model",
    "mode",
    "max_concurrency",
    "requests_per_minute",
    "api_key_env",
    "top_logprobs",
    "timeout_secs",
    "max_retries",
    "max_rationale_tokens",
    "rationale_stop",
    "top_k",
    "price",
];
const EMBEDDED_KEYS: &[&str] = &[
    "backend",
    "model",
    "path",
    "threads",
    "workers",
    "chat",
    "max_rationale_tokens",
    "rationale_stop",
    "top_k",
];
const SIMULATED_KEYS: &[&str] = &["backend", "accuracy", "position_bias", "seed"];
/// OpenAI's limit of four stop strings a request, less the prompt's own ending. The
/// embedded backend has no limit but gets the same one, so that a labeler can move
/// between backends without its experiment becoming invalid.
const MAX_RATIONALE_STOPS: usize = 3;

/// How a labeler's rationales end: settings the generating backends share.
#[derive(Debug)]
struct Rationale {
    max_tokens: u32,
    stop: Vec<String>,
}

/// Finds the problems of one experiment file.
#[derive(Debug)]
pub struct Checker<'a> {
    map: &'a SourceMap,
    /// The experiment file's folder: relative paths are resolved against it.
    dir: &'a Path,
    problems: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub fn new(map: &'a SourceMap, dir: &'a Path) -> Checker<'a> {
        Checker {
            map,
            dir,
            problems: Vec::new(),
        }
    }

    pub fn into_problems(self) -> Vec<Diagnostic> {
        self.problems
    }

    fn report(&mut self, position: Position, message: impl Into<String>, hint: Option<String>) {
        let mut diagnostic = Diagnostic::new(position, message);
        diagnostic.hint = hint;
        self.problems.push(diagnostic);
    }

    /// A problem with the value at `path` (or its nearest existing ancestor).
    fn at(&mut self, path: &str, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let position = self.map.nearest(path);
        self.report(position, message, hint.into());
    }

    /// A required key that is absent from the mapping at `parent`.
    fn missing(&mut self, parent: &str, key: &str, hint: &str) {
        let what = if parent.is_empty() {
            "the experiment".to_owned()
        } else {
            format!("`{parent}`")
        };
        self.at(
            parent,
            format!("{what} has no `{key}`"),
            Some(hint.to_owned()),
        );
    }

    /// Reports every key of the mapping at `path` that is not in `known`.
    pub fn unknown_keys(&mut self, path: &str, known: &[&str], what: &str) {
        for (key, position) in self.map.keys_of(path).to_vec() {
            if !known.contains(&key.as_str()) {
                let hint = suggest(&key, known.iter().copied())
                    .map(|near| format!("did you mean `{near}`?"))
                    .unwrap_or_else(|| format!("the keys of {what} are: {}", known.join(", ")));
                self.report(
                    position,
                    format!("unknown key `{key}` in {what}"),
                    Some(hint),
                );
            }
        }
    }

    /// Reports every key written twice in one mapping: YAML keeps one of the two, so
    /// the other (a second labeler of the same name, say) would silently not exist.
    fn repeated_keys(&mut self) {
        for (path, key, position) in self.map.repeated_keys() {
            let mapping = if path.is_empty() {
                "the experiment".to_owned()
            } else {
                format!("`{path}`")
            };
            self.report(
                position,
                format!("`{key}` is written twice in {mapping}"),
                Some("only one of the two would be used: rename or remove one".to_owned()),
            );
        }
    }

    pub fn experiment(&mut self, raw: RawExperiment, file: &Path) -> Option<Experiment> {
        self.unknown_keys("", ROOT_KEYS, "the experiment");
        self.repeated_keys();
        let seed = raw.seed.unwrap_or(0);
        let name = self.name(raw.name);
        let task = match raw.task {
            Some(task) if !task.trim().is_empty() => Some(task),
            Some(_) => {
                self.at("task", "`task` is empty", task_hint());
                None
            }
            None => {
                self.missing("", "task", &task_hint());
                None
            }
        };
        let dataset = match raw.dataset {
            Some(data) => self.data(data, "dataset", seed),
            None => {
                self.missing(
                    "",
                    "dataset",
                    "add `dataset: { format: pairs, path: pairs.jsonl }`",
                );
                None
            }
        };
        let exemplars = raw.exemplars.map(|data| self.data(data, "exemplars", seed));
        let labelers = self.labelers(raw.labelers, seed);
        let labeler_names: Vec<String> = labelers
            .iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .collect();
        let axes = self.axes(raw.grid.unwrap_or_default(), &labeler_names);
        if let (Some(labelers), Some(axes)) = (&labelers, &axes) {
            self.threads_beside_workers(labelers, &axes.labeler);
        }
        let exclude = self.partials(raw.exclude, "exclude", &axes, &labeler_names);
        if let (Some(exclude), Some(axes)) = (&exclude, &axes) {
            self.exclusions_on_the_grid(exclude, axes);
        }
        let include = self.partials(raw.include, "include", &axes, &labeler_names);
        let position_debias = self.position_debias(raw.position_debias.as_deref());
        let templates = raw.templates.and_then(|folder| {
            let resolved = self.dir.join(&folder);
            if resolved.is_dir() {
                Some(resolved)
            } else {
                self.at(
                    "templates",
                    format!("templates folder `{folder}` not found"),
                    Some(format!(
                        "looked for {}; paths are relative to the experiment file's folder",
                        resolved.display()
                    )),
                );
                None
            }
        });

        let labelers = labelers?;
        Some(Experiment {
            name: name?,
            task: task?,
            dataset: dataset?,
            exemplars: exemplars.map(|data| data.ok_or(())).transpose().ok()?,
            labelers,
            grid: Grid {
                axes: axes?,
                exclude: exclude?,
                include: include?,
            },
            position_debias: position_debias?,
            seed,
            templates,
            file: file.to_path_buf(),
        })
    }

    fn name(&mut self, name: Option<String>) -> Option<String> {
        let Some(name) = name else {
            self.missing(
                "",
                "name",
                "add `name: my-experiment`; it names the results folder",
            );
            return None;
        };
        if is_safe_name(&name) {
            Some(name)
        } else {
            self.at(
                "name",
                format!("name `{name}` cannot name a results folder"),
                Some("use letters, digits, `-`, `_` and `.`, not starting with `.`".to_owned()),
            );
            None
        }
    }

    fn data(&mut self, raw: RawData, path: &str, experiment_seed: u64) -> Option<DataSource> {
        self.unknown_keys(path, DATA_KEYS, &format!("`{path}`"));
        let format = match raw.format {
            Some(format) => {
                let known = DataFormat::ALL.iter().map(|(name, _)| *name);
                match DataFormat::ALL.iter().find(|(name, _)| *name == format) {
                    Some((_, format)) => Some(*format),
                    None => {
                        let hint = one_of_hint(&format, known);
                        self.at(
                            &child(path, "format"),
                            format!("unknown data format `{format}`"),
                            hint,
                        );
                        None
                    }
                }
            }
            None => {
                self.missing(path, "format", "add `format: pairs` (or tldr, hh-rlhf)");
                None
            }
        };
        let file = match raw.path {
            Some(file) => {
                let resolved = self.dir.join(&file);
                if resolved.is_file() {
                    Some(resolved)
                } else if resolved.is_dir() {
                    self.at(
                        &child(path, "path"),
                        format!("data file `{file}` is a folder"),
                        Some("name the JSONL file inside it".to_owned()),
                    );
                    None
                } else {
                    self.at(
                        &child(path, "path"),
                        format!("data file `{file}` not found"),
                        Some(format!(
                            "looked for {}; paths are relative to the experiment file's folder",
                            resolved.display()
                        )),
                    );
                    None
                }
            }
            None => {
                self.missing(path, "path", "add `path:` naming a JSONL file");
                None
            }
        };
        if raw.limit == Some(0) {
            self.at(
                &child(path, "limit"),
                "`limit` is 0: no example would be labelled",
                Some("remove `limit` to use every example, or set it to 1 or more".to_owned()),
            );
        }
        let split = raw.split.and_then(|split| {
            let split_path = child(path, "split");
            self.unknown_keys(&split_path, SPLIT_KEYS, &format!("`{split_path}`"));
            let holdout = match split.holdout {
                Some(share) if share > 0.0 && share < 1.0 => Some(share),
                Some(share) => {
                    self.at(
                        &child(&split_path, "holdout"),
                        format!("`holdout` is {share}, outside (0, 1)"),
                        Some("give the share of contexts held out, e.g. 0.1".to_owned()),
                    );
                    None
                }
                None => {
                    self.missing(&split_path, "holdout", "add `holdout: 0.1`");
                    None
                }
            };
            let keep = match split.keep.as_deref() {
                Some("holdout") => Some(SplitSide::Holdout),
                Some("rest") => Some(SplitSide::Rest),
                Some(other) => {
                    self.at(
                        &child(&split_path, "keep"),
                        format!("`keep` is `{other}`"),
                        Some("use `holdout` or `rest`".to_owned()),
                    );
                    None
                }
                None => {
                    self.missing(&split_path, "keep", "add `keep: holdout` or `keep: rest`");
                    None
                }
            };
            Some(Split {
                holdout: holdout?,
                keep: keep?,
            })
        });
        Some(DataSource {
            format: format?,
            path: file?,
            limit: raw.limit.filter(|&limit| limit > 0),
            seed: raw.seed.unwrap_or(experiment_seed),
            shuffle: raw.shuffle.unwrap_or(true),
            high_confidence: raw.high_confidence.unwrap_or(false),
            split,
            id_prefix: raw.id_prefix,
        })
    }

    fn labelers(
        &mut self,
        raw: Option<Ordered<RawLabeler>>,
        seed: u64,
    ) -> Option<Vec<(String, LabelerConfig)>> {
        let Some(Ordered(entries)) = raw else {
            self.missing(
                "",
                "labelers",
                "add `labelers: { small: { backend: embedded, model: smollm2-135m } }`",
            );
            return None;
        };
        if entries.is_empty() {
            self.at(
                "labelers",
                "`labelers` is empty",
                Some("declare at least one labeler".to_owned()),
            );
            return None;
        }
        let mut labelers = Vec::new();
        let mut all_valid = true;
        for (name, labeler) in entries {
            let path = child("labelers", &name);
            if !is_safe_name(&name) {
                self.report(
                    self.map.key(&path).unwrap_or(Position::START),
                    format!("labeler name `{name}` is not usable in cell names"),
                    Some("use letters, digits, `-`, `_` and `.`".to_owned()),
                );
                all_valid = false;
            }
            match self.labeler(&labeler, &path, seed) {
                Some(config) => labelers.push((name, config)),
                None => all_valid = false,
            }
        }
        all_valid.then_some(labelers)
    }

    fn labeler(&mut self, raw: &RawLabeler, path: &str, seed: u64) -> Option<LabelerConfig> {
        let what = format!("labeler `{}`", path.trim_start_matches("labelers."));
        let Some(backend) = raw.backend.clone() else {
            self.missing(
                path,
                "backend",
                "add `backend: openai`, `embedded` or `simulated`",
            );
            return None;
        };
        let known = match backend.as_str() {
            "openai" => OPENAI_KEYS,
            "embedded" => EMBEDDED_KEYS,
            "simulated" => SIMULATED_KEYS,
            _ => {
                self.at(
                    &child(path, "backend"),
                    format!("unknown backend `{backend}` for {what}"),
                    one_of_hint(&backend, BACKENDS.iter().copied()),
                );
                return None;
            }
        };
        let before = self.problems.len();
        for (key, position) in self.map.keys_of(path).to_vec() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let elsewhere = [OPENAI_KEYS, EMBEDDED_KEYS, SIMULATED_KEYS]
                .iter()
                .any(|keys| keys.contains(&key.as_str()));
            let hint = if elsewhere {
                format!(
                    "the keys of a `{backend}` labeler are: {}",
                    known.join(", ")
                )
            } else {
                suggest(&key, known.iter().copied())
                    .map(|near| format!("did you mean `{near}`?"))
                    .unwrap_or_else(|| format!("the keys are: {}", known.join(", ")))
            };
            let message = if elsewhere {
                format!("`{key}` does not apply to {what}, whose backend is `{backend}`")
            } else {
                format!("unknown key `{key}` in {what}")
            };
            self.report(position, message, Some(hint));
        }

        let max_rationale_tokens =
            self.positive(raw.max_rationale_tokens, path, "max_rationale_tokens", 512);
        // 0 leaves top-k to the server: hosted APIs reject the field.
        let top_k = match raw.top_k {
            Some(0) => 0,
            other => self.positive(other, path, "top_k", 40),
        };
        let rationale = Rationale {
            max_tokens: max_rationale_tokens,
            stop: self.rationale_stop(raw.rationale_stop.as_ref(), path),
        };
        let config = match backend.as_str() {
            "openai" => self.openai(raw, path, rationale, top_k),
            "embedded" => self.embedded(raw, path, rationale, top_k),
            _ => self.simulated(raw, path, seed),
        };
        (self.problems.len() == before).then_some(config).flatten()
    }

    /// The strings a rationale stops before, besides the prompt's own ending.
    fn rationale_stop(&mut self, raw: Option<&OneOrMany<String>>, path: &str) -> Vec<String> {
        let key = child(path, "rationale_stop");
        let written = self
            .map
            .keys_of(path)
            .iter()
            .any(|(name, _)| name == "rationale_stop");
        let (stops, listed) = match raw {
            None if written => {
                // YAML reads an unquoted `###` as a comment, leaving the key empty.
                let position = self.map.key(&key).unwrap_or(Position::START);
                self.report(
                    position,
                    "`rationale_stop` has no value",
                    Some(
                        "quote the text, e.g. rationale_stop: \"###\" (unquoted, # starts a YAML \
                         comment), or remove the key"
                            .to_owned(),
                    ),
                );
                return Vec::new();
            }
            None => return Vec::new(),
            Some(OneOrMany::One(stop)) => (vec![stop.clone()], false),
            Some(OneOrMany::Many(stops)) if stops.is_empty() => {
                self.at(
                    &key,
                    "`rationale_stop` is an empty list",
                    Some(
                        "list the text a rationale must not run into, or remove the key".to_owned(),
                    ),
                );
                return Vec::new();
            }
            Some(OneOrMany::Many(stops)) => (stops.clone(), true),
        };
        self.duplicates(&stops, &key, |stop| format!("{stop:?}"));
        for (index, stop) in stops.iter().enumerate() {
            if stop.is_empty() {
                let at = if listed {
                    item(&key, index)
                } else {
                    key.clone()
                };
                self.at(
                    &at,
                    "an empty `rationale_stop` would end every rationale before it begins",
                    Some("give the text a rationale must not run into, e.g. \"###\"".to_owned()),
                );
            }
        }
        if stops.len() > MAX_RATIONALE_STOPS {
            self.at(
                &key,
                format!(
                    "`rationale_stop` lists {} strings, more than the {MAX_RATIONALE_STOPS} it can take",
                    stops.len()
                ),
                Some(format!(
                    "OpenAI's API takes at most {} stop strings a request and the prompt's own \
                     ending is one of them: keep {MAX_RATIONALE_STOPS} or fewer",
                    MAX_RATIONALE_STOPS + 1
                )),
            );
        }
        stops
    }

    fn openai(
        &mut self,
        raw: &RawLabeler,
        path: &str,
        rationale: Rationale,
        top_k: u32,
    ) -> Option<LabelerConfig> {
        let base_urls = match &raw.base_url {
            Some(OneOrMany::One(url)) => vec![url.clone()],
            Some(OneOrMany::Many(urls)) => urls.clone(),
            None => Vec::new(),
        };
        if base_urls.is_empty() {
            self.missing(
                path,
                "base_url",
                "add `base_url: \"http://127.0.0.1:8000/v1\"`",
            );
        }
        for (index, url) in base_urls.iter().enumerate() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let at = match raw.base_url {
                    Some(OneOrMany::Many(_)) => item(&child(path, "base_url"), index),
                    _ => child(path, "base_url"),
                };
                self.at(
                    &at,
                    format!("base_url `{url}` is not an http(s) URL"),
                    Some("write it as http://host:port/v1".to_owned()),
                );
            }
        }
        let model = self.required_text(
            raw.model.as_deref(),
            path,
            "model",
            "the model name the server serves",
        );
        let api = match raw.api.as_deref() {
            None | Some("completions") => Api::Completions,
            Some("chat") => Api::Chat,
            Some(other) => {
                self.at(
                    &child(path, "api"),
                    format!("unknown api `{other}`"),
                    one_of_hint(other, ["completions", "chat"]),
                );
                Api::Completions
            }
        };
        let mode = match raw.mode.as_deref() {
            None | Some("logprobs") => Mode::Logprobs,
            Some("parsed") => Mode::Parsed,
            Some(other) => {
                self.at(
                    &child(path, "mode"),
                    format!("unknown mode `{other}`"),
                    one_of_hint(other, ["logprobs", "parsed"]),
                );
                Mode::Logprobs
            }
        };
        if let Some(variable) = &raw.api_key_env {
            let looks_like_key = variable.starts_with("sk-") || variable.len() > 64;
            let valid = !variable.is_empty()
                && variable
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !variable.starts_with(|c: char| c.is_ascii_digit());
            if looks_like_key {
                // Never echo what may be a secret, not even in the source snippet.
                let position = self.map.nearest(&child(path, "api_key_env"));
                self.problems.push(
                    Diagnostic::new(
                        position,
                        "`api_key_env` looks like an API key, not a variable name",
                    )
                    .hint(
                        "put the key in an environment variable and name the variable here, \
                         e.g. api_key_env: OPENAI_API_KEY",
                    )
                    .without_source(),
                );
            } else if !valid {
                self.at(
                    &child(path, "api_key_env"),
                    format!("`{variable}` is not an environment variable name"),
                    Some("use letters, digits and `_`, e.g. OPENAI_API_KEY".to_owned()),
                );
            }
        }
        let price = raw.price.as_ref().and_then(|price| {
            let price_path = child(path, "price");
            self.unknown_keys(
                &price_path,
                PRICE_KEYS,
                "`price` (money per million tokens)",
            );
            let mut amount = |value: Option<f64>, key: &str| match value {
                Some(amount) if amount >= 0.0 && amount.is_finite() => Some(amount),
                Some(amount) => {
                    self.at(
                        &child(&price_path, key),
                        format!("price `{key}` is {amount}"),
                        Some("give money per million tokens, 0 or more".to_owned()),
                    );
                    None
                }
                None => {
                    self.missing(&price_path, key, "give money per million tokens");
                    None
                }
            };
            let prompt = amount(price.prompt, "prompt");
            let completion = amount(price.completion, "completion");
            Some(Price {
                prompt_per_million: prompt?,
                completion_per_million: completion?,
            })
        });
        let max_concurrency = self.positive(raw.max_concurrency, path, "max_concurrency", 8);
        let requests_per_minute = raw
            .requests_per_minute
            .map(|_| self.positive(raw.requests_per_minute, path, "requests_per_minute", 1));
        let top_logprobs = self.positive(raw.top_logprobs, path, "top_logprobs", 20);
        let timeout_secs = self.positive(raw.timeout_secs, path, "timeout_secs", 120);
        let max_retries = match raw.max_retries {
            Some(retries) if retries < 0 => {
                self.at(
                    &child(path, "max_retries"),
                    format!("`max_retries` is {retries}"),
                    Some("use 0 or more".to_owned()),
                );
                0
            }
            Some(retries) => u32::try_from(retries).unwrap_or(u32::MAX),
            None => 6,
        };
        Some(LabelerConfig::Openai {
            base_urls,
            api,
            model: model?,
            mode,
            max_concurrency: max_concurrency as usize,
            requests_per_minute,
            api_key_env: raw.api_key_env.clone(),
            top_logprobs,
            timeout_secs: u64::from(timeout_secs),
            max_retries,
            max_rationale_tokens: rationale.max_tokens,
            rationale_stop: rationale.stop,
            top_k,
            price,
        })
    }

    fn embedded(
        &mut self,
        raw: &RawLabeler,
        path: &str,
        rationale: Rationale,
        top_k: u32,
    ) -> Option<LabelerConfig> {
        let model_file = raw.path.as_ref().map(|file| self.dir.join(file));
        if let (Some(file), Some(resolved)) = (&raw.path, &model_file)
            && !resolved.is_file()
        {
            self.at(
                &child(path, "path"),
                format!("model file `{file}` not found"),
                Some(format!("looked for {}", resolved.display())),
            );
        }
        let model = match &raw.model {
            Some(model) if model_file.is_some() || EMBEDDED_MODELS.contains(&model.as_str()) => {
                Some(model.clone())
            }
            Some(model) => {
                let hint = one_of_hint(model, EMBEDDED_MODELS)
                    .map(|hint| format!("{hint}; or give `path:` to a GGUF file"));
                self.at(
                    &child(path, "model"),
                    format!("unknown embedded model `{model}`"),
                    hint,
                );
                None
            }
            None => {
                self.missing(
                    path,
                    "model",
                    &format!("add `model:` with one of {}", EMBEDDED_MODELS.join(", ")),
                );
                None
            }
        };
        let threads = raw
            .threads
            .map(|_| self.positive(raw.threads, path, "threads", 1) as usize);
        let workers = self.positive(raw.workers, path, "workers", 1) as usize;
        if workers > 1
            && let Some(threads) = threads.filter(|&threads| threads != 1)
        {
            self.at(
                &child(path, "threads"),
                format!("`threads` is {threads}, but each of the {workers} workers computes on one thread"),
                Some("remove `threads:` or set it to 1, or set `workers: 1`".to_owned()),
            );
        }
        Some(LabelerConfig::Embedded {
            model: model?,
            path: model_file,
            threads,
            workers,
            chat: raw.chat.unwrap_or(false),
            max_rationale_tokens: rationale.max_tokens,
            rationale_stop: rationale.stop,
            top_k,
        })
    }

    fn simulated(&mut self, raw: &RawLabeler, path: &str, seed: u64) -> Option<LabelerConfig> {
        let mut probability = |value: Option<f64>, key: &str, default: f64| match value {
            Some(p) if (0.0..=1.0).contains(&p) => p,
            Some(p) => {
                self.at(
                    &child(path, key),
                    format!("`{key}` is {p}, outside [0, 1]"),
                    Some("give a probability between 0 and 1".to_owned()),
                );
                default
            }
            None => default,
        };
        let accuracy = probability(raw.accuracy, "accuracy", 0.75);
        let position_bias = probability(raw.position_bias, "position_bias", 0.0);
        Some(LabelerConfig::Simulated {
            accuracy,
            position_bias,
            seed: raw.seed.unwrap_or(seed),
        })
    }

    fn required_text(
        &mut self,
        value: Option<&str>,
        path: &str,
        key: &str,
        what: &str,
    ) -> Option<String> {
        match value {
            Some(text) if !text.trim().is_empty() => Some(text.to_owned()),
            Some(_) => {
                self.at(
                    &child(path, key),
                    format!("`{key}` is empty"),
                    Some(format!("give {what}")),
                );
                None
            }
            None => {
                self.missing(path, key, &format!("add `{key}:` with {what}"));
                None
            }
        }
    }

    /// A count that must be at least 1, or `default` when absent.
    fn positive(&mut self, value: Option<i64>, path: &str, key: &str, default: u32) -> u32 {
        match value {
            None => default,
            Some(count) if count >= 1 => u32::try_from(count).unwrap_or(u32::MAX),
            Some(count) => {
                self.at(
                    &child(path, key),
                    format!("`{key}` is {count}"),
                    Some("use 1 or more".to_owned()),
                );
                default
            }
        }
    }

    fn axes(&mut self, raw: RawGrid, labelers: &[String]) -> Option<Axes> {
        self.unknown_keys("grid", GRID_KEYS, "`grid`");
        let before = self.problems.len();
        let preamble = self.axis(raw.preamble, "preamble", || vec!["base".to_owned()]);
        let few_shot: Vec<u32> = self
            .axis(raw.few_shot, "few_shot", || vec![0])
            .into_iter()
            .enumerate()
            .filter_map(|(index, shots)| self.few_shot(shots, &item("grid.few_shot", index)))
            .collect();
        let exemplar_seed = self.axis(raw.exemplar_seed, "exemplar_seed", Vec::new);
        let cot = self.axis(raw.cot, "cot", || vec![false]);
        let self_consistency: Vec<SelfConsistency> = self
            .axis(raw.self_consistency, "self_consistency", || {
                vec![RawSelfConsistency {
                    samples: Some(1),
                    temperature: Some(0.0),
                }]
            })
            .into_iter()
            .enumerate()
            .filter_map(|(index, sc)| {
                self.self_consistency(sc, &item("grid.self_consistency", index), true)
            })
            .collect();
        self.duplicates(&self_consistency, "grid.self_consistency", |sc| {
            format!(
                "{{samples: {}, temperature: {}}}",
                sc.samples, sc.temperature
            )
        });
        let labeler = self.axis(raw.labeler, "labeler", || labelers.to_vec());
        for (index, name) in labeler.iter().enumerate() {
            self.labeler_reference(name, &item("grid.labeler", index), labelers);
        }
        let mut vars = Vec::new();
        for (name, values) in raw.vars.map(|Ordered(entries)| entries).unwrap_or_default() {
            let path = child("grid.vars", &name);
            // A user axis named like a built-in template variable would be shadowed, and
            // one named like a grid axis would make `exclude` entries ambiguous.
            let reserved =
                BUILTIN_VARIABLES.contains(&name.as_str()) || PARTIAL_KEYS.contains(&name.as_str());
            if reserved || !is_identifier(&name) {
                let hint = if reserved {
                    format!("`{name}` is a variable every template already sees; rename the axis")
                } else {
                    "a template variable name uses letters, digits and `_`, not starting with a digit"
                        .to_owned()
                };
                self.report(
                    self.map.key(&path).unwrap_or(Position::START),
                    format!("user axis `{name}` cannot be a template variable"),
                    Some(hint),
                );
            }
            if values.is_empty() {
                self.at(
                    &path,
                    format!("user axis `{name}` is empty"),
                    empty_axis_hint(),
                );
            }
            self.duplicates(&values, &path, ToString::to_string);
            vars.push((name, values));
        }
        let axes = Axes {
            preamble,
            few_shot,
            exemplar_seed,
            cot,
            self_consistency,
            vars,
            labeler,
        };
        let cells = axes.product_saturating();
        if cells > MAX_CELLS {
            let count = match u64::try_from(cells) {
                Ok(cells) => thousands(cells),
                Err(_) => format!("about {:.1e}", cells as f64),
            };
            self.at(
                "grid",
                format!(
                    "the grid's axes multiply to {count} cells, more than the {} rlaif expands",
                    thousands(MAX_CELLS as u64)
                ),
                Some(
                    "every cell is expanded and checked before a run starts: remove values, \
                     or split the experiment into several files"
                        .to_owned(),
                ),
            );
        }
        (self.problems.len() == before).then_some(axes)
    }

    /// An axis's values, or its default when the grid leaves it out. An empty list is an
    /// error: it would expand into no cells at all.
    fn axis<T: PartialEq + std::fmt::Debug>(
        &mut self,
        values: Option<Vec<T>>,
        key: &str,
        default: impl FnOnce() -> Vec<T>,
    ) -> Vec<T> {
        let path = child("grid", key);
        match values {
            None => default(),
            Some(values) if values.is_empty() => {
                self.at(&path, format!("axis `{key}` is empty"), empty_axis_hint());
                values
            }
            Some(values) => {
                self.duplicates(&values, &path, |value| format!("{value:?}"));
                values
            }
        }
    }

    fn duplicates<T: PartialEq>(&mut self, values: &[T], path: &str, show: impl Fn(&T) -> String) {
        for (index, value) in values.iter().enumerate() {
            if values[..index].contains(value) {
                self.at(
                    &item(path, index),
                    format!(
                        "{} appears twice in `{path}`",
                        show(value).trim_matches('"')
                    ),
                    Some("remove the repeated value".to_owned()),
                );
            }
        }
    }

    fn few_shot(&mut self, shots: i64, path: &str) -> Option<u32> {
        match u32::try_from(shots) {
            Ok(shots) => Some(shots),
            Err(_) => {
                self.at(
                    path,
                    format!("few_shot {shots} is negative"),
                    Some("use 0 or more exemplars".to_owned()),
                );
                None
            }
        }
    }

    fn self_consistency(
        &mut self,
        raw: RawSelfConsistency,
        path: &str,
        check_keys: bool,
    ) -> Option<SelfConsistency> {
        if check_keys {
            self.unknown_keys(path, SELF_CONSISTENCY_KEYS, "self_consistency");
        }
        let samples = match raw.samples {
            Some(samples) if samples >= 1 => u32::try_from(samples).ok(),
            Some(samples) => {
                self.at(
                    &child(path, "samples"),
                    format!("samples is {samples}"),
                    Some("use 1 or more samples".to_owned()),
                );
                None
            }
            None => Some(1),
        };
        let temperature =
            self.temperature(raw.temperature.unwrap_or(0.0), &child(path, "temperature"));
        Some(SelfConsistency {
            samples: samples?,
            temperature: temperature?,
        })
    }

    fn temperature(&mut self, temperature: f64, path: &str) -> Option<f64> {
        if temperature.is_finite() && temperature >= 0.0 {
            Some(temperature)
        } else {
            let what = if temperature.is_finite() {
                "is negative"
            } else {
                "is not a number"
            };
            self.at(
                path,
                format!("temperature {temperature} {what}"),
                Some("use 0 for greedy decoding or a positive temperature".to_owned()),
            );
            None
        }
    }

    fn labeler_reference(&mut self, name: &str, path: &str, labelers: &[String]) -> bool {
        if labelers.is_empty() || labelers.iter().any(|known| known == name) {
            return true;
        }
        self.at(
            path,
            format!("unknown labeler `{name}`"),
            one_of_hint(name, labelers.iter().map(String::as_str))
                .map(|hint| format!("{hint}; labelers are declared under `labelers:`")),
        );
        false
    }

    fn partials(
        &mut self,
        raw: Option<Vec<Ordered<RawAxisValue>>>,
        key: &str,
        axes: &Option<Axes>,
        labelers: &[String],
    ) -> Option<Vec<Partial>> {
        let before = self.problems.len();
        let var_names: Vec<&str> = axes
            .iter()
            .flat_map(|axes| axes.vars.iter().map(|(name, _)| name.as_str()))
            .collect();
        let mut partials = Vec::new();
        for (index, Ordered(entries)) in raw.unwrap_or_default().into_iter().enumerate() {
            let path = item(key, index);
            if entries.is_empty() {
                self.at(
                    &path,
                    format!("`{path}` is empty"),
                    Some(format!(
                        "name the settings to {key}, e.g. {{cot: false, few_shot: 2}}"
                    )),
                );
                continue;
            }
            let mut partial = Partial::default();
            for (axis, value) in entries {
                let value_path = child(&path, &axis);
                self.partial_value(
                    &mut partial,
                    &axis,
                    value,
                    &value_path,
                    &var_names,
                    labelers,
                );
            }
            partials.push(partial);
        }
        (self.problems.len() == before).then_some(partials)
    }

    /// Reports an embedded labeler of the grid that asks for `threads: N` (N > 1) beside
    /// another with several workers: a process computes on one thread per worker once
    /// any labeler has several, a count fixed when it starts, so the first could never
    /// have its threads.
    fn threads_beside_workers(&mut self, labelers: &[(String, LabelerConfig)], used: &[String]) {
        let embedded = |name: &String| {
            labelers
                .iter()
                .find(|(declared, _)| declared == name)
                .and_then(|(_, config)| match config {
                    LabelerConfig::Embedded {
                        threads, workers, ..
                    } => Some((*threads, *workers)),
                    _ => None,
                })
        };
        let Some((several, workers)) = used.iter().find_map(|name| {
            embedded(name)
                .filter(|&(_, workers)| workers > 1)
                .map(|(_, workers)| (name, workers))
        }) else {
            return;
        };
        for name in used {
            if let Some((Some(threads), _)) = embedded(name)
                && threads != 1
                && name != several
            {
                self.at(
                    &child(&child("labelers", name), "threads"),
                    format!(
                        "`threads` is {threads}, but labeler `{several}` has {workers} workers, \
                         so every embedded labeler of this run computes on one thread"
                    ),
                    Some(format!(
                        "remove `threads:` or set it to 1, give `{several}` `workers: 1`, or \
                         run the two labelers as two experiments"
                    )),
                );
            }
        }
    }

    /// Reports each `exclude` value that is not on its axis: `exclude` only removes
    /// cells of the grid, so such an entry removes nothing (a misspelt style, say) and
    /// the run pays for the cells it was meant to drop.
    fn exclusions_on_the_grid(&mut self, exclude: &[Partial], axes: &Axes) {
        fn listed<T: ToString>(values: impl IntoIterator<Item = T>) -> Vec<String> {
            values.into_iter().map(|value| value.to_string()).collect()
        }
        // Each axis's values as text, once: an entry's value is compared as written.
        let builtin = [
            ("preamble", listed(&axes.preamble)),
            ("few_shot", listed(&axes.few_shot)),
            ("exemplar_seed", listed(&axes.exemplar_seed)),
            ("cot", listed(&axes.cot)),
            (
                "samples",
                listed(axes.self_consistency.iter().map(|sc| sc.samples)),
            ),
            (
                "temperature",
                listed(axes.self_consistency.iter().map(|sc| sc.temperature)),
            ),
            ("labeler", listed(&axes.labeler)),
        ];
        for (index, partial) in exclude.iter().enumerate() {
            let named = [
                partial.preamble.clone(),
                partial.few_shot.map(|n| n.to_string()),
                partial.exemplar_seed.map(|n| n.to_string()),
                partial.cot.map(|c| c.to_string()),
                partial.samples.map(|n| n.to_string()),
                partial.temperature.map(|t| t.to_string()),
                partial.labeler.clone(),
            ];
            let builtin = builtin
                .iter()
                .zip(named)
                .filter_map(|((axis, on_axis), value)| {
                    Some(((*axis).to_owned(), value?, on_axis.clone()))
                });
            let vars = partial.vars.iter().filter_map(|(name, value)| {
                let (_, values) = axes.vars.iter().find(|(axis, _)| axis == name)?;
                Some((name.clone(), value.to_string(), listed(values)))
            });
            let off_axis = builtin
                .chain(vars)
                .filter(|(_, value, on_axis)| !on_axis.contains(value));
            for (axis, value, on_axis) in off_axis {
                let path = child(&item("exclude", index), &axis);
                let hint = match suggest(&value, on_axis.iter().map(String::as_str)) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None if on_axis.is_empty() => {
                        format!("the grid does not vary `{axis}`: remove it from this entry")
                    }
                    None => format!("the grid's `{axis}` values are: {}", on_axis.join(", ")),
                };
                self.at(
                    &path,
                    format!(
                        "`exclude` names {axis} `{value}`, which the grid does not have, so the \
                         entry excludes nothing"
                    ),
                    Some(hint),
                );
            }
        }
    }

    fn partial_value(
        &mut self,
        partial: &mut Partial,
        axis: &str,
        value: RawAxisValue,
        path: &str,
        var_names: &[&str],
        labelers: &[String],
    ) {
        let wrong_type = |checker: &mut Self, expected: &str| {
            checker.at(
                path,
                format!(
                    "`{axis}` in `{}` is not {expected}",
                    path.rsplit_once('.').map_or(path, |(p, _)| p)
                ),
                Some(format!("write `{axis}` as {expected}")),
            );
        };
        match (axis, value) {
            ("preamble", RawAxisValue::Scalar(Scalar::Str(style))) => {
                partial.preamble = Some(style)
            }
            ("labeler", RawAxisValue::Scalar(Scalar::Str(name))) => {
                if self.labeler_reference(&name, path, labelers) {
                    partial.labeler = Some(name);
                }
            }
            ("few_shot", RawAxisValue::Scalar(Scalar::Int(shots))) => {
                partial.few_shot = self.few_shot(shots, path);
            }
            ("exemplar_seed", RawAxisValue::Scalar(Scalar::Int(seed))) if seed >= 0 => {
                partial.exemplar_seed = Some(seed.unsigned_abs());
            }
            ("cot", RawAxisValue::Scalar(Scalar::Bool(cot))) => partial.cot = Some(cot),
            ("samples", RawAxisValue::Scalar(Scalar::Int(samples))) => {
                let sc = RawSelfConsistency {
                    samples: Some(samples),
                    temperature: None,
                };
                partial.samples = self
                    .self_consistency(sc, path.rsplit_once('.').map_or(path, |(p, _)| p), false)
                    .map(|sc| sc.samples);
            }
            ("temperature", RawAxisValue::Scalar(Scalar::Int(t))) => {
                partial.temperature = self.temperature(t as f64, path);
            }
            ("temperature", RawAxisValue::Scalar(Scalar::Float(t))) => {
                partial.temperature = self.temperature(t, path);
            }
            ("self_consistency", RawAxisValue::SelfConsistency(sc)) => {
                if let Some(sc) = self.self_consistency(sc, path, true) {
                    partial.samples = Some(sc.samples);
                    partial.temperature = Some(sc.temperature);
                }
            }
            (axis, RawAxisValue::List(values))
                if PARTIAL_KEYS.contains(&axis) || var_names.contains(&axis) =>
            {
                let entry = path.rsplit_once('.').map_or(path, |(entry, _)| entry);
                let key = entry.split('[').next().unwrap_or(entry);
                let position = self.map.key(path).unwrap_or_else(|| self.map.nearest(path));
                let hint = match values.as_slice() {
                    [one] => format!("write `{axis}: {one}`, without the brackets"),
                    _ => format!(
                        "write one entry per value under `{key}:`: {}",
                        values
                            .iter()
                            .map(|value| format!("`- {{ {axis}: {value} }}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.report(
                    position,
                    format!(
                        "`{axis}` in `{entry}` is a list, but an entry names one value per axis"
                    ),
                    Some(hint),
                );
            }
            ("preamble" | "labeler", _) => wrong_type(self, "a name"),
            ("few_shot" | "samples", _) => wrong_type(self, "a whole number"),
            ("exemplar_seed", _) => wrong_type(self, "a whole number, 0 or more"),
            ("cot", _) => wrong_type(self, "true or false"),
            ("temperature", _) => wrong_type(self, "a number"),
            ("self_consistency", _) => wrong_type(self, "{samples: N, temperature: T}"),
            (var, RawAxisValue::Scalar(value)) if var_names.contains(&var) => {
                partial.vars.insert(var.to_owned(), value);
            }
            (var, _) => {
                let position = self.map.key(path).unwrap_or_else(|| self.map.nearest(path));
                if var_names.contains(&var) {
                    self.report(
                        position,
                        format!("user axis `{var}` takes a single value here"),
                        Some("write one of the axis's values".to_owned()),
                    );
                } else {
                    let known = PARTIAL_KEYS
                        .iter()
                        .copied()
                        .chain(var_names.iter().copied());
                    let hint = suggest(var, known.clone())
                        .map(|near| format!("did you mean `{near}`?"))
                        .unwrap_or_else(|| {
                            format!("the axes are: {}", known.collect::<Vec<_>>().join(", "))
                        });
                    self.report(position, format!("unknown axis `{var}`"), Some(hint));
                }
            }
        }
    }

    fn position_debias(&mut self, raw: Option<&str>) -> Option<PositionDebias> {
        match raw {
            None | Some("both") => Some(PositionDebias::Both),
            Some("none") => Some(PositionDebias::None),
            Some("random") => Some(PositionDebias::Random),
            Some(other) => {
                self.at(
                    "position_debias",
                    format!("unknown position_debias `{other}`"),
                    one_of_hint(other, ["both", "none", "random"]),
                );
                None
            }
        }
    }
}

/// Whether `name` is safe as a folder name and in a cell name: no separators, no
/// leading dot, so it can never point outside the results root.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The known name closest to `wanted`, if it is close enough to be a typo.
pub fn suggest<'k>(wanted: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(wanted, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= (candidate.len().max(wanted.len()) / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// "did you mean `x`? one of: a, b, c"
pub fn one_of_hint<'k>(
    wanted: &str,
    known: impl IntoIterator<Item = &'k str> + Clone,
) -> Option<String> {
    let list: Vec<&str> = known.clone().into_iter().collect();
    let listing = format!("one of: {}", list.join(", "));
    Some(match suggest(wanted, known) {
        Some(near) => format!("did you mean `{near}`? {listing}"),
        None => listing,
    })
}

fn empty_axis_hint() -> Option<String> {
    Some("give at least one value, or remove the axis to use its default".to_owned())
}

fn task_hint() -> String {
    "add `task:` with summarization, helpfulness or harmlessness (or a folder of your \
     templates)"
        .to_owned()
}
