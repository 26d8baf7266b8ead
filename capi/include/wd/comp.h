/* Streaming compression API: see wd.h. */
#ifndef WD_COMP_H
#define WD_COMP_H
#endif
