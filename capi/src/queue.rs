//! The WarpDrive queue API for C (owned by the uacce/C-API work; see include/wd/queue.h).
