//! The configuration file (src/conffile.rs) and the settings it becomes (src/settings.rs:
//! every value parsed and validated as `regmirror serve` does). Properties: entries come
//! in line order, within the entry limit, with non-empty values free of control
//! characters; an error names a line of the file. `upstream-auth` lines are dropped before
//! the settings step: it reads the password file they name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regmirror::conffile::{self, Key, MAX_ENTRIES};
use regmirror::settings::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let entries = match conffile::parse(text) {
        Ok(e) => e,
        Err(e) => {
            assert!(e.line <= lines, "error on line {} of {lines}", e.line);
            return;
        }
    };
    assert!(entries.len() <= MAX_ENTRIES);
    assert!(entries.windows(2).all(|w| w[0].line < w[1].line));
    for e in &entries {
        assert!(e.line >= 1 && e.line <= lines);
        assert!(!e.value.is_empty());
        assert!(
            !e.value.chars().any(|c| c.is_control() && c != '\t'),
            "{:?}",
            e.value
        );
    }
    let mut settings = Settings::default();
    for e in entries.into_iter().filter(|e| e.key != Key::UpstreamAuth) {
        settings.flag(e.key, e.value);
    }
    let _ = settings.into_config();
});
