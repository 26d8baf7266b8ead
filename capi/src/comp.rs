//! Streaming compression for C (owned by the compression work; see include/wd/comp.h).
