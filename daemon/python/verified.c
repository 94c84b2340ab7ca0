/* The CPython interpreters this pymemd was verified against live: every line names one that
 * tests/integration/run_matrix.py ran with all scenarios passing. run_matrix.py fails when an
 * interpreter it finds passes and is not listed here, or is listed and fails; `pymemd --version`
 * prints the list. Keep it in step with the matrix: add a line when an interpreter joins it. */
#include "python/layout.h"

const char *const pylayout_verified[] = {
    "3.8.18 pyenv, shared",
    "3.9.18 pyenv, shared",
    "3.10.13 pyenv, shared",
    "3.11.7 pyenv, shared",
    "3.11.2 Debian bookworm, static, stripped (pymalloc null without python3.11-dbg)",
    "3.12.1 pyenv, shared",
    "3.13.0 pyenv, shared",
    "3.13.5 Debian trixie, static",
    "3.14.10 Debian sid, static",
    "3.15.2 Debian sid, static",
};

const size_t pylayout_nverified = sizeof(pylayout_verified) / sizeof(pylayout_verified[0]);
