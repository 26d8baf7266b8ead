/* libwd: WarpDrive accelerator queues and streaming compression for C.
 *
 * Link with -lwd. All functions return 0 (or a non-negative count) on success and a
 * negative errno on failure; none of them aborts or unwinds on bad input.
 */
#ifndef WD_H
#define WD_H

#include "wd/queue.h"
#include "wd/comp.h"

#endif /* WD_H */
