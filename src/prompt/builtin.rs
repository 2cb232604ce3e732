//! The built-in templates, compiled into the binary so that `rlaif` runs without a
//! templates folder.
//!
//! One static table of `(task, file name, text)`, sorted by task then file name. A user's
//! templates folder overlays these file by file (see [`super::Templates::load`]); a test
//! checks that the table lists exactly the files under `templates/`.

/// Expands to one table row, reading the file at compile time.
macro_rules! builtin {
    ($task:literal, $name:literal) => {
        (
            $task,
            $name,
            include_str!(concat!("../../templates/", $task, "/", $name)),
        )
    };
}

/// Every built-in template file: `(task, file name, text)`.
pub(super) const FILES: &[(&str, &str, &str)] = &[
    builtin!("harmlessness", "cot.j2"),
    builtin!("harmlessness", "ending.j2"),
    builtin!("harmlessness", "exemplar.j2"),
    builtin!("harmlessness", "preamble_base.j2"),
    builtin!("harmlessness", "preamble_detailed.j2"),
    builtin!("harmlessness", "sample.j2"),
    builtin!("harmlessness", "task.yaml"),
    builtin!("helpfulness", "cot.j2"),
    builtin!("helpfulness", "ending.j2"),
    builtin!("helpfulness", "exemplar.j2"),
    builtin!("helpfulness", "preamble_base.j2"),
    builtin!("helpfulness", "preamble_detailed.j2"),
    builtin!("helpfulness", "sample.j2"),
    builtin!("helpfulness", "task.yaml"),
    builtin!("summarization", "cot.j2"),
    builtin!("summarization", "ending.j2"),
    builtin!("summarization", "exemplar.j2"),
    builtin!("summarization", "preamble_base.j2"),
    builtin!("summarization", "preamble_detailed.j2"),
    builtin!("summarization", "sample.j2"),
    builtin!("summarization", "task.yaml"),
];

/// The built-in files of one task, as `(file name, text)`; empty for an unknown task.
pub(super) fn files(task: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    FILES
        .iter()
        .filter(move |(owner, _, _)| *owner == task)
        .map(|&(_, name, text)| (name, text))
}

/// The built-in task names, sorted and without repeats.
pub(super) fn tasks() -> Vec<&'static str> {
    let mut tasks: Vec<&'static str> = FILES.iter().map(|&(task, _, _)| task).collect();
    tasks.dedup();
    tasks
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A template added under `templates/` but not to the table would silently be missing
    /// from the binary; one listed but deleted would fail to compile.
    #[test]
    fn the_table_lists_exactly_the_files_under_templates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = Vec::new();
        for task in std::fs::read_dir(&root).expect("templates folder") {
            let task = task.expect("templates entry").path();
            for file in std::fs::read_dir(&task).expect("task folder") {
                let file = file.expect("task entry").path();
                let task_name = task.file_name().expect("task name").to_string_lossy();
                let file_name = file.file_name().expect("file name").to_string_lossy();
                on_disk.push((task_name.into_owned(), file_name.into_owned()));
            }
        }
        on_disk.sort();
        let table: Vec<(String, String)> = FILES
            .iter()
            .map(|&(task, name, _)| (task.to_owned(), name.to_owned()))
            .collect();
        assert_eq!(table, on_disk);
    }

    #[test]
    fn tasks_are_sorted_and_unique() {
        assert_eq!(tasks(), ["harmlessness", "helpfulness", "summarization"]);
    }
}
