//! Where each key and value of a YAML document stands in its text.
//!
//! The deserializer turns YAML into typed values but forgets positions; this map keeps
//! them, so that a problem found later (an unknown labeler, a temperature below zero)
//! can still point at the line and column the user wrote. Nodes are addressed by key
//! path, as in `grid.self_consistency[1].temperature`.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The top of the file: where a problem with no better place is reported.
    pub const START: Position = Position { line: 1, column: 1 };

    fn from_marker(marker: Marker) -> Position {
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// The positions of one YAML document's nodes and mapping keys.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    values: BTreeMap<String, Position>,
    keys: BTreeMap<String, Vec<(String, Position)>>,
}

impl SourceMap {
    /// Reads the positions of `text`. Fails with the parser's message and position on a
    /// syntax error.
    pub fn build(text: &str) -> Result<SourceMap, (String, Position)> {
        let mut builder = Builder::default();
        Parser::new_from_str(text)
            .load(&mut builder, false)
            .map_err(|error| {
                (
                    error.info().to_owned(),
                    Position::from_marker(*error.marker()),
                )
            })?;
        Ok(builder.map)
    }

    /// Where the value at `path` starts.
    pub fn value(&self, path: &str) -> Option<Position> {
        self.values.get(path).copied()
    }

    /// Where the key that names `path` stands, falling back to its value.
    pub fn key(&self, path: &str) -> Option<Position> {
        let (parent, name) = match path.rfind('.') {
            Some(dot) => (&path[..dot], &path[dot + 1..]),
            None => ("", path),
        };
        self.keys
            .get(parent)
            .and_then(|keys| keys.iter().find(|(key, _)| key == name))
            .map(|(_, position)| *position)
            .or_else(|| self.value(path))
    }

    /// The best position for `path`: its value, else the nearest ancestor that exists.
    pub fn nearest(&self, path: &str) -> Position {
        let mut current = path;
        loop {
            if let Some(position) = self.value(current) {
                return position;
            }
            match current.rfind(['.', '[']) {
                Some(cut) => current = &current[..cut],
                None => return Position::START,
            }
        }
    }

    /// Every key written a second time in its mapping: the mapping's path, the key, and
    /// where the repeat stands.
    pub fn repeated_keys(&self) -> Vec<(&str, &str, Position)> {
        let mut repeats = Vec::new();
        for (path, keys) in &self.keys {
            for (index, (key, position)) in keys.iter().enumerate() {
                if keys[..index].iter().any(|(earlier, _)| earlier == key) {
                    repeats.push((path.as_str(), key.as_str(), *position));
                }
            }
        }
        // The two values of a repeated key are filed under one path, so their own keys
        // look repeated too; only the outermost repeat is the user's.
        let outer: Vec<String> = repeats
            .iter()
            .map(|(path, key, _)| child(path, key))
            .collect();
        repeats.retain(|(path, _, _)| {
            !outer.iter().any(|repeated| {
                path.strip_prefix(repeated.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
        });
        repeats.sort_by_key(|(_, _, position)| (position.line, position.column));
        repeats
    }

    /// The keys of the mapping at `path`, in the order written, with their positions.
    pub fn keys_of(&self, path: &str) -> &[(String, Position)] {
        self.keys.get(path).map_or(&[], Vec::as_slice)
    }
}

/// Joins a key path and a mapping key.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a key path and a sequence index.
pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

enum Frame {
    Mapping {
        path: String,
        /// The key whose value comes next; `None` while a key is expected.
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    map: SourceMap,
    stack: Vec<Frame>,
}

impl Builder {
    /// The path of the node that starts now, or `None` when the node is a mapping key.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, pending_key }) => {
                pending_key.take().map(|key| child(path, &key))
            }
            Some(Frame::Sequence { path, next_index }) => {
                *next_index += 1;
                Some(item(path, *next_index - 1))
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let position = Position::from_marker(marker);
        match event {
            Event::Scalar(text, ..) => match self.next_path() {
                Some(path) => {
                    self.map.values.insert(path, position);
                }
                None => {
                    if let Some(Frame::Mapping { path, pending_key }) = self.stack.last_mut() {
                        self.map
                            .keys
                            .entry(path.clone())
                            .or_default()
                            .push((text.clone(), position));
                        *pending_key = Some(text);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(path) = self.next_path() {
                    self.map.values.insert(path, position);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key has no path of its own; its
                // contents are filed under a placeholder so they cannot clash.
                let path = self
                    .next_path()
                    .unwrap_or_else(|| "<complex key>".to_owned());
                self.map.values.insert(path.clone(), position);
                self.stack
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping {
                            path,
                            pending_key: None,
                        }
                    } else {
                        Frame::Sequence {
                            path,
                            next_index: 0,
                        }
                    });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_found_at_its_second_place_and_its_contents_are_not() {
        let map = SourceMap::build(
            "labelers:\n  sim: { backend: simulated }\n  sim: { backend: simulated }\n\
             grid:\n  vars:\n    tone: [a]\n    mood: [b]\n    tone: [c]\n",
        )
        .unwrap();
        let repeats: Vec<_> = map
            .repeated_keys()
            .into_iter()
            .map(|(path, key, position)| (path, key, position.line))
            .collect();
        assert_eq!(repeats, [("labelers", "sim", 3), ("grid.vars", "tone", 8)]);
    }

    const DOC: &str = "\
name: demo
grid:
  few_shot: [0, 1]
  self_consistency:
    - {samples: 4, temperature: 0.3}
labelers:
  small: { backend: embedded }
";

    #[test]
    fn values_and_keys_have_their_positions() {
        let map = SourceMap::build(DOC).unwrap();
        assert_eq!(map.value("name"), Some(Position { line: 1, column: 7 }));
        assert_eq!(map.key("name"), Some(Position { line: 1, column: 1 }));
        assert_eq!(
            map.value("grid.few_shot[1]"),
            Some(Position {
                line: 3,
                column: 17
            })
        );
        assert_eq!(
            map.value("grid.self_consistency[0].temperature"),
            Some(Position {
                line: 5,
                column: 33
            })
        );
        assert_eq!(
            map.key("labelers.small.backend"),
            Some(Position {
                line: 7,
                column: 12
            })
        );
        let keys: Vec<_> = map.keys_of("").iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["name", "grid", "labelers"]);
    }

    #[test]
    fn nearest_falls_back_to_an_ancestor() {
        let map = SourceMap::build(DOC).unwrap();
        assert_eq!(map.nearest("grid.cot[0]"), map.value("grid").unwrap());
        assert_eq!(map.nearest("missing"), Position::START);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let (message, position) = SourceMap::build("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(!message.is_empty());
        assert!(position.line >= 2, "{position:?}");
    }
}
