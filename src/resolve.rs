//! Percentages → absolute rates, stable handles: the validated policy becomes `model::Desired`.
