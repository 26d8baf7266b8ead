//! HiSilicon HPRE user driver: RSA modular exponentiation
