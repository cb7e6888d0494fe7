//! The loop's trace (log target `selectloop`, level trace): channel labels
//! here; each backend's readiness in its own words and the relative
//! timestamps are the backends' ([`crate::backend::readiness`]), since the
//! backends print their own wait lines. See the crate docs, "Watching the
//! loop", for every line it prints.

use crate::channel::Channel;
use std::fmt;

/// A channel's label: `listener 127.0.0.1:8080`, `connection from ...`.
pub(crate) struct Label<'a>(pub(crate) &'a dyn Channel);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f)
    }
}
