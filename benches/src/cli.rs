//! The command lines of the bench examples (`benches/examples`): their
//! words taken in order, each parsed into what it names, and the one way an
//! example reports a command line it cannot use.
//!
//! ```
//! use mux_benches::cli::Words;
//! use mux_benches::{Contender, Transport};
//!
//! let mut words = Words::new(["mux", "duplex", "500", "9"]);
//! assert_eq!(words.contender(), Some(Contender::Mux));
//! assert_eq!(words.transport(), Some(Transport::Duplex));
//! assert_eq!((words.count(), words.count()), (Some(500), Some(9)));
//! assert_eq!(words.end(), Some(()));
//! ```

use std::process::ExitCode;

use crate::{Contender, Transport};

/// What is left of a command line, taken a word at a time. Every taker
/// returns `None` for a missing or unparsable word, so a parser reads as a
/// chain of `?`.
#[derive(Debug)]
pub struct Words(std::vec::IntoIter<String>);

impl Words {
    /// The words of this process's command line, after the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// The given words (for tests and doc examples).
    pub fn new<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Self {
        Self(
            words
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }

    /// A contender by its bench id (`raw`, `mux`, `mux-direct`, `yamux`,
    /// `tokio-yamux`).
    pub fn contender(&mut self) -> Option<Contender> {
        let word = self.0.next()?;
        Contender::ALL.into_iter().find(|c| c.id() == word)
    }

    /// A transport by name (`duplex`, `tcp`, `h2-tunnel`).
    pub fn transport(&mut self) -> Option<Transport> {
        Transport::from_name(&self.0.next()?)
    }

    /// A number of things to do, at least 1 (a 0 is taken as 1).
    pub fn count(&mut self) -> Option<usize> {
        Some(self.number()?.max(1))
    }

    /// A number, 0 included.
    pub fn number(&mut self) -> Option<usize> {
        self.0.next()?.parse().ok()
    }

    /// Every word left, each a contender: a list that ends the command line.
    pub fn contenders(&mut self) -> Option<Vec<Contender>> {
        let mut all = Vec::new();
        while self.0.len() > 0 {
            all.push(self.contender()?);
        }
        Some(all)
    }

    /// The next word if there is one: an optional last argument.
    pub fn optional(&mut self) -> Option<String> {
        self.0.next()
    }

    /// `Some` if every word was taken: a longer command line is a mistake.
    pub fn end(mut self) -> Option<()> {
        self.0.next().is_none().then_some(())
    }
}

/// Reports a command line the example cannot use.
#[allow(clippy::print_stderr)]
pub fn usage(text: &str) -> ExitCode {
    eprintln!("{text}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_unknown_or_extra_word_is_refused() {
        assert_eq!(Words::new(["nope"]).contender(), None);
        assert_eq!(Words::new(["udp"]).transport(), None);
        assert_eq!(Words::new(Vec::<String>::new()).count(), None);
        assert_eq!(Words::new(["-3"]).number(), None);
        assert_eq!(Words::new(["0"]).count(), Some(1));
        assert_eq!(Words::new(["0"]).number(), Some(0));
        let mut extra = Words::new(["9", "more"]);
        assert_eq!(extra.count(), Some(9));
        assert_eq!(extra.end(), None);
        let mut list = Words::new(["raw", "mux"]);
        assert_eq!(
            list.contenders(),
            Some(vec![Contender::Raw, Contender::Mux])
        );
        assert_eq!(list.end(), Some(()));
        assert_eq!(Words::new(["raw", "nope"]).contenders(), None);
    }
}
