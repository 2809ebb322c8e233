//! What the criterion benches share: their settings, and running one
//! timed piece of work on a fresh runtime with a time bound.

use std::time::Duration;

use criterion::Criterion;
use mux_benches::measure::{self, Outcome};
use mux_benches::scenario::{self, Work};
use mux_benches::{Contender, Transport};

/// Small samples, so that `cargo bench` ends in reasonable time.
pub(crate) fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Whether `contender` can run `work` over `transport`: supported, and one
/// bounded trial run finishes. Prints why not otherwise.
pub(crate) fn usable(work: Work, contender: Contender, transport: Transport) -> bool {
    let setup = mux_benches::contender::Setup::new(transport, work.max_streams());
    if let Some(reason) = contender.unsupported(&setup) {
        eprintln!(
            "skipping {} over {}: {reason}",
            contender.name(),
            transport.name()
        );
        return false;
    }
    match timed(work, contender, transport) {
        Ok(_) => true,
        Err(why) => {
            eprintln!(
                "skipping {} over {}: {why}",
                contender.name(),
                transport.name()
            );
            false
        }
    }
}

/// The measured time of one run of `work`, on a fresh runtime, bounded by
/// [`measure::DEFAULT_TIMEOUT`].
pub(crate) fn timed(
    work: Work,
    contender: Contender,
    transport: Transport,
) -> Result<Duration, String> {
    match measure::run(work.flavor(), measure::DEFAULT_TIMEOUT, || {
        scenario::elapsed(work, contender, transport)
    }) {
        Outcome::Done(elapsed) => Ok(elapsed),
        Outcome::Stalled => Err("stalled".to_owned()),
        Outcome::Failed(e) => Err(e),
    }
}

/// [`timed`], for inside `iter_custom`: a failure is reported and counted
/// as the time bound, since criterion has no way to skip a sample.
pub(crate) fn timed_or_bound(work: Work, contender: Contender, transport: Transport) -> Duration {
    timed(work, contender, transport).unwrap_or_else(|why| {
        eprintln!("{} over {}: {why}", contender.name(), transport.name());
        measure::DEFAULT_TIMEOUT
    })
}
