//! Built-in templates (in progress).
