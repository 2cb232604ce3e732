//! The `rlaif` binary: parse the command line, run the command, print any error once and
//! exit with its code (0 success, 1 a run with failed calls, a model that could not be
//! installed or an output error, 2 bad input).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use rlaif::app;
use rlaif::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = app::run(cli, &mut out);
    let _ = out.flush();
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            let code = error.exit_code();
            // `{:#}` prints the whole chain of causes, each once.
            eprintln!("error: {:#}", anyhow::Error::new(error));
            ExitCode::from(code)
        }
    }
}
