//! The command line (src/cli.rs, argh): the input split at NUL bytes into arguments.
//! Properties: any argv gives a command, text to print, or a one-line error naming the
//! program — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::cli;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = text.split('\0').collect();
    if let Err(line) = cli::parse("regmirror", &args) {
        assert!(
            line.starts_with("regmirror: ") && !line.contains('\n'),
            "{line:?}"
        );
    }
});
