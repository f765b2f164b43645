//! Built-in tools.

use std::sync::Arc;

use crate::DynTool;

mod util;

pub use util::{Noop, Sleep};

/// Every built-in tool, ready to register.
pub fn all() -> Vec<Arc<dyn DynTool>> {
    vec![crate::typed(Noop), crate::typed(Sleep)]
}
