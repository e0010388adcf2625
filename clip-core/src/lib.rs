//! clip-core
