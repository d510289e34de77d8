mod export;
mod generate_key;
mod import;
mod put_key;
mod unwrap_data;
mod wrap_data;

pub(crate) use self::{
    export::*, generate_key::*, import::*, put_key::*, unwrap_data::*, wrap_data::*,
};
