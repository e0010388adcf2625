//! Integration tests (one binary to keep link times down).
