//! placeholder during development
#![allow(missing_docs)]
pub mod config;
mod connection;
mod driver;
pub mod frame;
pub mod session;
mod shared;
mod stream;
pub mod wire;

pub use config::Config;
pub use connection::{Connection, YamuxLite};
pub use session::Role;
pub use stream::Stream;
