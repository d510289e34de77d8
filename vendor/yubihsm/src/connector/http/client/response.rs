//! HTTP response handling

mod body;
mod reader;

pub use self::{body::Body, reader::Reader};
