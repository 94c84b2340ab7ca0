/* What pymemd and pymemctl share: the HTTP interface of DESIGN.md §4. */
#pragma once

#define PYMEMD_DEFAULT_HOST "127.0.0.1"
#define PYMEMD_DEFAULT_PORT 9100
#define PYMEMD_DEFAULT_URL  "http://127.0.0.1:9100"

#define PYMEMD_PATH_METRICS   "/metrics"
#define PYMEMD_PATH_PROCESSES "/api/v1/processes"
#define PYMEMD_PATH_HEALTHZ   "/healthz"

/* PROCESS "status" values. */
#define PYMEMD_STATUS_OK          "ok"
#define PYMEMD_STATUS_UNSUPPORTED "unsupported"
#define PYMEMD_STATUS_DENIED      "denied"
#define PYMEMD_STATUS_GONE        "gone"
#define PYMEMD_STATUS_ERROR       "error"
