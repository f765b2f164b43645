//! Built-in tools: clock and time zones, arithmetic, workspace files, HTTP, templates, and
//! small utilities for testing plans.

use std::sync::Arc;

use crate::DynTool;

pub mod file;
pub mod geo;
pub mod http;
pub mod math;
pub mod template;
pub mod time;
mod util;

pub use util::{Noop, Sleep};

/// Every built-in tool, ready to register.
pub fn all() -> Vec<Arc<dyn DynTool>> {
    vec![
        crate::typed(file::List),
        crate::typed(file::Read),
        crate::typed(file::Write),
        crate::typed(http::HttpGet),
        crate::typed(math::Eval),
        crate::typed(template::Template),
        crate::typed(time::Convert),
        crate::typed(time::Now),
        crate::typed(Noop),
        crate::typed(Sleep),
        crate::typed(geo::CityLookup),
        crate::typed(geo::Airports),
        crate::typed(geo::Distance),
    ]
}
