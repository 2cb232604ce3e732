//! Running the commands that install what a test needs, failing loudly with their
//! output when they cannot.

/// Runs a command to completion; panics with its output if it fails.
pub fn must_run(command: &mut std::process::Command, what: &str) {
    eprintln!("test setup: {what}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
