//! clip-ort
