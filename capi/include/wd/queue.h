/* WarpDrive queue API: see wd.h. */
#ifndef WD_QUEUE_H
#define WD_QUEUE_H
#endif
