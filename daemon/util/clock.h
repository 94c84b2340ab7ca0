/* clock: the two clocks pymemd uses, as seconds in a double. */
#pragma once

#include <time.h>

/* For intervals, deadlines and durations: never jumps. */
static inline double clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* For timestamps shown to people and other programs: seconds since the epoch. */
static inline double clock_real(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
