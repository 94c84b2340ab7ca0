/* The CPython interpreters this pymemd was verified against live: every line names one that
 * tests/integration/run_matrix.py ran with all scenarios passing. run_matrix.py fails when an
 * interpreter it finds passes and is not listed here, or is listed and fails; `pymemd --version`
 * prints the list. Keep it in step with the matrix: add a line when an interpreter joins it. */
#include "python/layout.h"

const char *const pylayout_verified[] = {
    "3.8.18 pyenv, shared libpython",
    "3.9.18 pyenv, shared libpython",
    "3.10.13 pyenv, shared libpython",
    "3.11.2 Debian bookworm /usr/bin/python3.11, static, stripped (pymalloc needs python3.11-dbg)",
    "3.11.7 pyenv, shared libpython",
    "3.12.1 pyenv, shared libpython",
    "3.13.0 pyenv, shared libpython",
    "3.13.5 Debian trixie, static",
    "3.13.15 Debian forky, static",
    "3.13.15 upstream (python.org source), static",
    "3.13.15 free-threaded, upstream (python.org source) python3.13t, static",
    "3.13.18 Debian sid, static",
    "3.13.18 debug, Debian sid python3.13d, static",
    "3.14.8 Debian forky, static",
    "3.14.10 Debian sid, static",
    "3.14.10 debug, Debian sid python3.14d, static",
    "3.15.0 Debian forky, static",
    "3.15.2 Debian sid, static",
    "3.15.2 debug, Debian sid python3.15d, static",
};

const size_t pylayout_nverified = sizeof(pylayout_verified) / sizeof(pylayout_verified[0]);
