//! User side of the HiSilicon QM queue ring: SQ/CQ, phase bit, doorbells
