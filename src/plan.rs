//! diff(desired, live) → ordered operations.
