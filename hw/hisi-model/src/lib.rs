//! Device model of the HiSilicon QM, HPRE and ZIP engines
