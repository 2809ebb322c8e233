//! What the command lines of the summary runner and the bench examples
//! (`benches/examples`) share: [`Contender`] and [`Transport`] as clap
//! values, named by their ids (`--help` lists them), and [`count`], the
//! parser of a number of things to do.
//!
//! ```
//! use clap::Parser;
//! use mux_benches::{cli, Contender, Transport};
//!
//! /// A command line of a bench example.
//! #[derive(Parser)]
//! struct Args {
//!     contender: Contender,
//!     transport: Transport,
//!     #[arg(value_parser = cli::count)]
//!     runs: usize,
//! }
//!
//! let args = Args::try_parse_from(["example", "mux", "duplex", "9"]).unwrap();
//! assert_eq!(args.contender, Contender::Mux);
//! assert_eq!(args.transport, Transport::Duplex);
//! assert_eq!(args.runs, 9);
//! assert!(Args::try_parse_from(["example", "mux", "udp", "9"]).is_err());
//! ```

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::{Contender, Transport};

impl ValueEnum for Contender {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Self::Raw => "no muxer: one transport connection per stream",
            Self::Mux => "mux-yamux-lite, this workspace's muxer",
            Self::MuxYamuxWire => "mux-yamux-lite on the yamux wire, both sides",
            Self::Yamux => "the yamux crate 0.14",
            Self::TokioYamux => "the tokio-yamux crate 0.3",
            Self::MuxToYamux => "mux-yamux-lite (yamux wire) client, yamux 0.14 server",
            Self::YamuxToMux => "yamux 0.14 client, mux-yamux-lite (yamux wire) server",
        };
        Some(PossibleValue::new(self.id()).help(help))
    }
}

impl ValueEnum for Transport {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Self::Duplex => "tokio::io::duplex, a 1 MiB in-memory pipe",
            Self::Tcp => "TCP on 127.0.0.1",
            Self::H2 => "one HTTP/2 exchange through mux-h2, on 127.0.0.1",
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

/// Parses a number of things to do (runs, streams, iterations): a whole
/// number of at least 1.
pub fn count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contenders_and_transports_are_named_by_their_ids() {
        for contender in Contender::ALL {
            assert_eq!(Contender::from_str(contender.id(), false), Ok(contender));
        }
        for transport in Transport::ALL {
            assert_eq!(Transport::from_str(transport.name(), false), Ok(transport));
        }
        assert!(Contender::from_str("nope", false).is_err());
        assert!(Transport::from_str("udp", false).is_err());
    }

    #[test]
    fn a_count_is_a_whole_number_of_at_least_one() {
        assert_eq!(count("9"), Ok(9));
        assert!(count("0").is_err());
        assert!(count("-3").is_err());
        assert!(count("many").is_err());
    }
}
