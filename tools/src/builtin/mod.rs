//! Built-in tools.

use std::sync::Arc;

use crate::DynTool;

pub mod geo;
mod util;

pub use util::{Noop, Sleep};

/// Every built-in tool, ready to register.
pub fn all() -> Vec<Arc<dyn DynTool>> {
    vec![
        crate::typed(Noop),
        crate::typed(Sleep),
        crate::typed(geo::CityLookup),
        crate::typed(geo::Airports),
        crate::typed(geo::Distance),
    ]
}
