//! Replays one committed fuzz corpus through a target's check on stable
//! Rust, for the `cargo test` replay tests of each crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Once;

thread_local! {
    /// A panic happened on this thread since the flag was last cleared.
    static PANICKED: Cell<bool> = const { Cell::new(false) };
}

/// Makes every panic raise [`PANICKED`] on its thread, then report as usual.
/// A check's tasks run on the thread that replays it (a current-thread
/// runtime), and the runtime catches a task's panic, so without the flag an
/// assertion inside a task (the driver's transport, say) would pass silently
/// here while libFuzzer, which aborts on any panic, reports it.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.with(|p| p.set(true));
            report(info);
        }));
    });
}

/// Runs `check` on every file of `fuzz/corpus/<target>` and fails, naming
/// each offending file, if any of them panics, in the check or in a task it
/// spawned. Called from a crate under
/// `crates/`, whose manifest directory is two levels below the root.
pub(crate) fn replay_corpus(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no seeds in {}", dir.display());
    watch_panics();
    let mut failed = Vec::new();
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        PANICKED.with(|p| p.set(false));
        let returned = std::panic::catch_unwind(|| check(&data)).is_ok();
        if !returned || PANICKED.with(Cell::get) {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "seeds broke an invariant: {failed:?}");
}
