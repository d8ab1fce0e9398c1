//! Rendering model objects and plan operations as `tc -batch` lines.
