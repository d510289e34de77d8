//! Commands for getting and putting certificate templates

mod get;
mod put;

pub(crate) use self::{get::*, put::*};
