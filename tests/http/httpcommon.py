#!/usr/bin/python3
"""What the HTTP contract drivers share (DESIGN.md sections 3, 4 and 5): the setup, the
parsers of both text formats, promtool, the ground-truth expectations.

Every driver (test_formats.py, test_api.py, test_lifecycle.py, test_signals_config.py) starts
real CPython targets (tests/integration/target.py: each prints its own ground truth as one JSON
line and then sits still) and `pymemd --listen 127.0.0.1:PORT --match RE --interval 0.2` on a
free loopback port, waits until the targets are sampled, and checks its part of the contract
against what the targets say about themselves. Both text formats are checked line by line
here, and by `promtool check metrics` (0.0.4) or the OpenMetrics reference parser, whose
every complaint is a failure.

Standard library only (Python 3.9+). A driver prints one PASS/FAIL/SKIP line per check and
ends with exactly `N passed, M failed, K skipped`; exit status 0 iff nothing failed. Every
process it starts runs in its own session and is killed (SIGCONT, then SIGKILL to its group)
on every path.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
# The shared harness, also for the drivers (which import everything from here).
from pymemdtest import (CHILDREN, DISCOVERY_WAIT, NOT_AVAILABLE, RESULTS, STOP_LIMIT,  # noqa: E402,F401
                        TARGET, TARGET_TIMEOUT, Check, Fail, NotAvailable, Pymemd, Resp, Skip,
                        Target, captured, case, clean_env, debian_python, free_port,
                        make_tag, proc_state, pyenv_python, pyenv_root, raw_request, read_line,
                        request, run_driver, sampled_after, say, short, shown, target_argv,
                        version_key, wait_sampled)

CT_JSON = "application/json"
CT_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CT_OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CT_OF = {"json": CT_JSON, "text": CT_TEXT, "om": CT_OM}
FMT_NAME = {"json": "JSON", "text": "Prometheus text 0.0.4", "om": "OpenMetrics 1.0.0"}

INTERVAL = 0.2          # --interval given to pymemd
GEN0_TOLERANCE = 20     # the target allocates a little after printing
BLOCKS_SLACK = 50

# What Prometheus sends when it scrapes (ecosystem.md section 3.2; the v3
# strings are those of prometheus scrape/scrape_test.go TestAcceptHeader).
PROM_ACCEPT = [
    ("Prometheus v2.20",
     "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    ("Prometheus v2.45 (and the installed 2.42)",
     "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    ("Prometheus v2.49-v2.55 (scrape_protocols)",
     "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
     "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x",
     "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
     "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
     "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x, underscore escaping",
     "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
     "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
     "escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    ("Prometheus v3.x, protobuf first (native histograms)",
     "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
     "encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;"
     "escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
     "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;"
     "q=0.2,*/*;q=0.1"),
]

# (label, Accept or None, expected format)
OTHER_ACCEPT = [
    ("text/plain;version=0.0.4", "text/plain;version=0.0.4", "text"),
    ("text/plain (no version)", "text/plain", "text"),
    ("no Accept header", None, "json"),
    ("*/* (curl)", "*/*", "json"),
    ("application/json", "application/json", "json"),
    ("a browser's Accept",
     "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
     "json"),
    ("q: text 0.9 over OpenMetrics 0.5",
     "text/plain;q=0.9,application/openmetrics-text;q=0.5", "text"),
    ("q: OpenMetrics q=0 is not acceptable",
     "application/openmetrics-text;version=1.0.0;q=0,text/plain;version=0.0.4", "text"),
    ("q: tie text/OpenMetrics -> OpenMetrics",
     "text/plain,application/openmetrics-text", "om"),
    ("q: tie all three at 0.5 -> OpenMetrics",
     "application/json;q=0.5,text/plain;q=0.5,application/openmetrics-text;q=0.5", "om"),
    ("q: tie text/JSON -> text", "application/json;q=0.7,text/plain;version=0.0.4;q=0.7", "text"),
    ("q: JSON 1 over text 0.5", "application/json,text/plain;q=0.5", "json"),
    ("q: JSON 0.9 over OpenMetrics 0.3",
     "application/openmetrics-text;version=1.0.0;q=0.3,application/json;q=0.9", "json"),
    ("whitespace around ';' ',' and q",
     "application/openmetrics-text ; version=1.0.0 ; q=0.8 ,  text/plain ; q=0.9", "text"),
    ("media type in other case",
     "Application/OpenMetrics-Text;version=1.0.0", "om"),
    ("OpenMetrics version=2.0.0 is not acceptable",
     "application/openmetrics-text;version=2.0.0,text/plain;version=0.0.4;q=0.1", "text"),
    ("garbage Accept -> JSON", "this is not a media range", "json"),
    ("empty-ish Accept -> JSON", " ;;, ,", "json"),
]


# --------------------------------------------------------------------------
# The process

def proc_start_time(pid):
    """Wall-clock start time of pid from /proc (btime + starttime / CLK_TCK)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        start_ticks = int(fields[19])
        with open("/proc/stat") as f:
            btime = int(next(l for l in f if l.startswith("btime")).split()[1])
        return btime + start_ticks / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


# --------------------------------------------------------------------------
# HTTP

def port_free(port):
    """True if a server could bind the port now (SO_REUSEADDR, as servers
    do: connections in TIME_WAIT do not count)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --------------------------------------------------------------------------
# Exposition parsing (text 0.0.4 and OpenMetrics 1.0.0)

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OM_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "stateset", "info",
            "summary", "unknown")
TEXT_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
TARGET_METRIC = re.compile(r"^(python_|pymemd_target_up$|pymemd_sample_duration_seconds$|"
                           r"pymemd_census_pause_seconds$)")


class Sample(object):
    __slots__ = ("name", "labels", "value", "ts", "lineno", "family")

    def __init__(self, name, labels, value, ts, lineno):
        self.name, self.labels, self.value, self.ts, self.lineno = name, labels, value, ts, lineno
        self.family = None


class Expo(object):
    def __init__(self, text, om):
        self.om = om
        self.problems = []
        self.families = {}     # name -> {"type", "help", "unit"}
        self.samples = []
        self.parse(text)

    def bad(self, lineno, text):
        if len(self.problems) < 20:
            self.problems.append("line %d: %s" % (lineno, text))

    def parse(self, text):
        if not text.endswith("\n"):
            self.bad(0, "exposition does not end with a newline")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        fam_order = []         # family names in order of first appearance
        current = None
        closed = set()
        series = set()
        eof_at = None
        for i, line in enumerate(lines, 1):
            if eof_at is not None:
                self.bad(i, "content after # EOF: %s" % shown(line))
                break
            if line == "":
                if self.om:
                    self.bad(i, "empty line (OpenMetrics has none)")
                continue
            if line.startswith("#"):
                if self.om and line == "# EOF":
                    eof_at = i
                    continue
                m = re.match(r"^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$", line)
                if not m:
                    if self.om:
                        self.bad(i, "a '#' line that is not HELP/TYPE/UNIT/EOF: %s" % shown(line))
                    elif line.strip() == "# EOF":
                        self.bad(i, "'# EOF' in text 0.0.4 (an OpenMetrics marker)")
                    continue
                kind, name, rest = m.group(1), m.group(2), m.group(3)
                if kind == "UNIT" and not self.om:
                    self.bad(i, "# UNIT in text 0.0.4")
                    continue
                if not METRIC_NAME.match(name):
                    self.bad(i, "invalid metric name %s" % shown(name))
                if name in closed:
                    self.bad(i, "# %s for %s after its samples/another family "
                                "(families must be contiguous)" % (kind, name))
                fam = self.families.get(name)
                if fam is None:
                    fam = {"type": None, "help": None, "unit": None, "samples": 0}
                    self.families[name] = fam
                    fam_order.append(name)
                if current is not None and current != name:
                    closed.add(current)
                current = name
                key = kind.lower()
                if fam[key] is not None:
                    self.bad(i, "second # %s for %s" % (kind, name))
                if fam["samples"]:
                    self.bad(i, "# %s for %s after its samples" % (kind, name))
                if kind == "TYPE":
                    types = OM_TYPES if self.om else TEXT_TYPES
                    if rest not in types:
                        self.bad(i, "unknown type %s" % shown(rest))
                    fam["type"] = rest
                    if self.om and rest == "counter" and name.endswith("_total"):
                        self.bad(i, "OpenMetrics counter family %s must be named without "
                                    "_total (samples carry it)" % name)
                elif kind == "HELP":
                    fam["help"] = rest if rest is not None else ""
                    if rest is not None and re.search(r"\\[^\\n\"]" if self.om else r"\\[^\\n]",
                                                      rest):
                        self.bad(i, "bad escape in HELP %s" % shown(rest))
                else:
                    fam["unit"] = rest or ""
                    if rest and not name.endswith("_" + rest):
                        self.bad(i, "# UNIT %s: the metric name must end with _%s" % (name, rest))
                continue
            s = self.parse_sample(i, line)
            if s is None:
                continue
            fname = self.family_of(s.name)
            if fname is None:
                self.bad(i, "sample %s has no # TYPE" % s.name)
                fname = s.name
                if fname not in self.families:
                    self.families[fname] = {"type": None, "help": None, "unit": None,
                                            "samples": 0}
                    fam_order.append(fname)
            if fname in closed:
                self.bad(i, "sample of %s after another family started "
                            "(families must be contiguous)" % fname)
            if current is not None and current != fname:
                closed.add(current)
            current = fname
            s.family = fname
            self.families[fname]["samples"] += 1
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in series:
                self.bad(i, "duplicate series %s%s" % (s.name, fmt_labels(s.labels)))
            series.add(key)
            if s.ts is not None:
                self.bad(i, "sample %s carries a timestamp (%s)" % (s.name, s.ts))
            ftype = self.families[fname]["type"]
            if ftype == "counter":
                if self.om and s.name not in (fname + "_total", fname + "_created"):
                    self.bad(i, "OpenMetrics counter %s: sample %s must be %s_total" % (
                        fname, s.name, fname))
                if not (s.value >= 0):
                    self.bad(i, "counter %s is negative or NaN: %s" % (s.name, s.value))
            self.samples.append(s)
        if self.om and eof_at is None:
            self.bad(len(lines), "OpenMetrics exposition does not end with '# EOF'")

    def family_of(self, name):
        fams = self.families
        if name in fams and fams[name]["type"] is not None:
            if not (self.om and fams[name]["type"] == "counter"):
                return name
        if self.om:
            for suf in ("_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum",
                        "_info"):
                if name.endswith(suf) and name[:-len(suf)] in fams:
                    return name[:-len(suf)]
        else:
            for suf in ("_count", "_sum", "_bucket"):
                if name.endswith(suf) and name[:-len(suf)] in fams and \
                        fams[name[:-len(suf)]]["type"] in ("summary", "histogram"):
                    return name[:-len(suf)]
        if name in fams and fams[name]["type"] is not None:
            return name
        return None

    def parse_sample(self, i, line):
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
        if not m:
            self.bad(i, "not a sample line: %s" % shown(line))
            return None
        name = m.group(1)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            pos += 1
            while True:
                if pos < len(line) and line[pos] == "}":
                    pos += 1
                    break
                lm = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(line, pos)
                if not lm:
                    self.bad(i, "bad label syntax at column %d: %s" % (pos + 1, shown(line)))
                    return None
                lname = lm.group(1)
                pos = lm.end()
                val = []
                while True:
                    if pos >= len(line):
                        self.bad(i, "unterminated label value: %s" % shown(line))
                        return None
                    ch = line[pos]
                    if ch == "\\":
                        nxt = line[pos + 1:pos + 2]
                        if nxt == "n":
                            val.append("\n")
                        elif nxt in ("\\", '"'):
                            val.append(nxt)
                        else:
                            self.bad(i, "bad escape \\%s in label value" % nxt)
                            val.append(nxt)
                        pos += 2
                        continue
                    if ch == '"':
                        pos += 1
                        break
                    val.append(ch)
                    pos += 1
                if lname in labels:
                    self.bad(i, "label %s twice in %s" % (lname, name))
                labels[lname] = "".join(val)
                if pos < len(line) and line[pos] == ",":
                    pos += 1
                    continue
                if pos < len(line) and line[pos] == "}":
                    pos += 1
                    break
                self.bad(i, "expected ',' or '}' at column %d: %s" % (pos + 1, shown(line)))
                return None
        rest = line[pos:]
        if not rest.startswith(" "):
            self.bad(i, "no space before the value: %s" % shown(line))
            return None
        parts = rest[1:].split(" ")
        if len(parts) not in (1, 2) or parts[0] == "":
            self.bad(i, "bad value/timestamp part %s" % shown(rest))
            return None
        try:
            if parts[0] in ("+Inf", "-Inf", "NaN", "Inf"):
                value = float(parts[0].replace("Inf", "inf").replace("NaN", "nan"))
            else:
                if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", parts[0]):
                    raise ValueError(parts[0])
                value = float(parts[0])
        except ValueError:
            self.bad(i, "bad value %s" % shown(parts[0]))
            return None
        ts = parts[1] if len(parts) == 2 else None
        return Sample(name, labels, value, ts, i)

    def find(self, name, **labels):
        want = dict((k, str(v)) for k, v in labels.items())
        return [s for s in self.samples if s.name == name and
                all(s.labels.get(k) == v for k, v in want.items())]

    def value(self, name, **labels):
        found = self.find(name, **labels)
        if len(found) == 1:
            return found[0].value
        if not found:
            return None
        return ("duplicate", len(found))

    def series_keys(self):
        return set((s.name, tuple(sorted(s.labels.items()))) for s in self.samples)


def fmt_labels(labels):
    return "{" + ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                       .replace("\n", "\\n"))
                          for k, v in sorted(labels.items())) + "}"


def promtool_check(text, om=False):
    """(the failure or None, the checker's lines). Raises Skip without the checker.

    Text 0.0.4 goes to `promtool check metrics`, which exits 0 when clean, 3 on lint problems
    (naming, help) and 1 on "error while linting: text format parsing error ..."; a user's CI
    fails on any of them, so every exit status but 0 and every line printed is a failure.

    promtool (2.42 in Debian 12, and later ones) has no OpenMetrics parser: it reads any input
    as 0.0.4, where the sample X_total of the OpenMetrics counter family X is a family of its
    own without HELP. OpenMetrics goes instead to the reference parser of the Prometheus
    client library (Debian's python3-prometheus-client), which rejects anything OpenMetrics
    1.0 does not allow (no `# EOF`, bad escapes, a counter sample without _total, duplicate
    families, samples of one family apart...); its exception is the failure."""
    if om:
        return openmetrics_check(text)
    exe = shutil.which("promtool")
    if not exe:
        raise Skip("promtool is not installed (apt-get install prometheus)")
    r = subprocess.run([exe, "check", "metrics"], input=text.encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace").strip()
    lines = [l for l in out.splitlines() if l.strip()]
    if r.returncode == 0 and not lines:
        return None, lines
    return "promtool check metrics exit %d: %s" % (r.returncode, short(out, 500)), lines


def openmetrics_check(text):
    """OpenMetrics text through prometheus_client's strict parser (see promtool_check)."""
    try:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    except ImportError:
        raise Skip("the OpenMetrics reference parser is not installed "
                   "(apt-get install python3-prometheus-client)")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends: all are findings
        return "OpenMetrics parser: %s: %s" % (type(e).__name__, short(str(e), 500)), []
    declared = len(re.findall(r"^# TYPE ", text, re.M))
    if len(families) != declared:
        return ("OpenMetrics parser: %d families parsed, %d declared with # TYPE"
                % (len(families), declared)), []
    return None, []


# --------------------------------------------------------------------------
# Ground truth

def ns_pid_of(pid):
    """The last NSpid of /proc/PID/status: the pid in the process's own PID namespace."""
    with open("/proc/%d/status" % pid, "rb") as f:   # Name: is any bytes the process chose
        for line in f:
            if line.startswith(b"NSpid:"):
                return int(line.split()[-1])
    return None


def whois_expectations(c, where, t, proc):
    """Who the target is. Every target here is started with exec() by this driver, so it is
    the top of its own fork tree, and its group (the default template) is its own name."""
    c.eq("%s top_python_ancestor_pid" % where, t.pid, proc.get("top_python_ancestor_pid"))
    c.eq("%s group" % where, proc.get("name"), proc.get("group"))
    c.eq("%s ns_pid" % where, ns_pid_of(t.pid), proc.get("ns_pid"))


TARGET_INFO_LABELS = sorted(["pid", "name", "group", "container_id", "container_runtime",
                             "pod_uid", "qos_class", "unit", "ns_pid"])


def target_info_expectations(c, where, proc, ex):
    """pymemd_target_info of one PROCESS: one series, value 1, labels as its JSON says."""
    pid = str(proc.get("pid"))
    info = ex.find("pymemd_target_info", pid=pid)
    if not c.eq('%s pymemd_target_info{pid="%s"} series' % (where, pid), 1, len(info)):
        return
    lab = info[0].labels
    c.eq("%s pymemd_target_info label names" % where, TARGET_INFO_LABELS, sorted(lab))
    container = proc.get("container") or {}
    want = {"name": proc.get("name"), "group": proc.get("group"),
            "container_id": container.get("id") or "",
            "container_runtime": container.get("runtime") or "",
            "pod_uid": proc.get("pod_uid") or "", "qos_class": proc.get("qos_class") or "",
            "unit": proc.get("unit") or "",
            "ns_pid": "" if proc.get("ns_pid") is None else str(proc.get("ns_pid"))}
    for k in sorted(want):
        c.eq("%s pymemd_target_info %s label" % (where, k), want[k], lab.get(k))
    c.eq("%s pymemd_target_info value" % where, 1.0, info[0].value)


def json_expectations(c, where, t, proc):
    """Compare one PROCESS with the target's own truth (gc, version...)."""
    tr = t.truth
    c.eq("%s pid" % where, t.pid, proc.get("pid"))
    c.eq("%s status" % where, "ok", proc.get("status"))
    if proc.get("status") != "ok":
        c.diffs.append("%s error: %s" % (where, shown(proc.get("error"))))
        return
    whois_expectations(c, where, t, proc)
    py = proc.get("python") or {}
    c.eq("%s python.version" % where, tr["version"], py.get("version"))
    c.eq("%s python.hexversion" % where, tr["hexversion"], py.get("hexversion"))
    g = proc.get("gc") or {}
    c.eq("%s gc.enabled" % where, tr["isenabled"], g.get("enabled"))
    gens = g.get("generations")
    if not isinstance(gens, list) or len(gens) < 3:
        c.diffs.append("%s gc.generations: expected 3 entries, got %s" % (where, shown(gens)))
        return
    for i in range(3):
        gi = gens[i] if isinstance(gens[i], dict) else {}
        st = tr["get_stats"][i]
        c.eq("%s gc.generations[%d].generation" % (where, i), i, gi.get("generation"))
        c.eq("%s gc.generations[%d].threshold" % (where, i), tr["get_threshold"][i],
             gi.get("threshold"))
        for k in ("collections", "collected", "uncollectable"):
            c.eq("%s gc.generations[%d].%s" % (where, i, k), st[k], gi.get(k))
        cnt = gi.get("count")
        if i == 0:
            c.ok(isinstance(cnt, int) and abs(cnt - tr["get_count"][0]) <= GEN0_TOLERANCE,
                 "%s gc.generations[0].count: expected %d (+-%d), got %s" % (
                     where, tr["get_count"][0], GEN0_TOLERANCE, shown(cnt)))
        else:
            c.eq("%s gc.generations[%d].count" % (where, i), tr["get_count"][i], cnt)


def metric_expectations(c, where, t, proc, ex):
    """Compare an exposition's samples for target t with its truth."""
    tr = t.truth
    pid = str(t.pid)
    c.eq("%s pymemd_target_up{pid=%s}" % (where, pid), 1.0, ex.value("pymemd_target_up", pid=pid))
    for s in ex.find("pymemd_target_up", pid=pid):
        c.eq("%s pymemd_target_up label names" % where, ["name", "pid"], sorted(s.labels))
        c.eq("%s pymemd_target_up name label" % where, proc.get("name"), s.labels.get("name"))
    target_info_expectations(c, where, proc, ex)
    for i in range(3):
        gen = str(i)
        st = tr["get_stats"][i]
        c.eq('%s python_gc_threshold{generation="%d",pid="%s"}' % (where, i, pid),
             float(tr["get_threshold"][i]),
             ex.value("python_gc_threshold", pid=pid, generation=gen))
        for mname, k in (("python_gc_collections_total", "collections"),
                         ("python_gc_objects_collected_total", "collected"),
                         ("python_gc_objects_uncollectable_total", "uncollectable")):
            c.eq('%s %s{generation="%d",pid="%s"}' % (where, mname, i, pid), float(st[k]),
                 ex.value(mname, pid=pid, generation=gen))
        v = ex.value("python_gc_pending", pid=pid, generation=gen)
        if i == 0:
            c.ok(isinstance(v, float) and abs(v - tr["get_count"][0]) <= GEN0_TOLERANCE,
                 '%s python_gc_pending{generation="0",pid="%s"}: expected %d (+-%d), got %s' % (
                     where, pid, tr["get_count"][0], GEN0_TOLERANCE, shown(v)))
        else:
            c.eq('%s python_gc_pending{generation="%d",pid="%s"}' % (where, i, pid),
                 float(tr["get_count"][i]), v)
    c.eq('%s python_gc_enabled{pid="%s"}' % (where, pid), 1.0 if tr["isenabled"] else 0.0,
         ex.value("python_gc_enabled", pid=pid))
    c.eq('%s python_threads{pid="%s"}' % (where, pid), float(tr["active_count"]),
         ex.value("python_threads", pid=pid))
    info = ex.find("python_info", pid=pid)
    if c.eq('%s python_info{pid="%s"} series' % (where, pid), 1, len(info)):
        lab = info[0].labels
        parts = tr["version"].split(".")
        c.eq("%s python_info version" % where, tr["version"], lab.get("version"))
        c.eq("%s python_info implementation" % where, tr["implementation"],
             lab.get("implementation"))
        c.eq("%s python_info major" % where, parts[0], lab.get("major"))
        c.eq("%s python_info minor" % where, parts[1], lab.get("minor"))
        c.eq("%s python_info patchlevel" % where, re.match(r"\d+", parts[2]).group(0),
             lab.get("patchlevel"))
        c.eq("%s python_info value" % where, 1.0, info[0].value)
    blocks = ex.value("python_pymalloc_allocated_blocks", pid=pid)
    if blocks is not None and tr.get("allocated_blocks") is not None:
        c.ok(isinstance(blocks, float) and 0 <= blocks - tr["allocated_blocks"] <= BLOCKS_SLACK,
             '%s python_pymalloc_allocated_blocks{pid="%s"}: expected %d..%d, got %s' % (
                 where, pid, tr["allocated_blocks"], tr["allocated_blocks"] + BLOCKS_SLACK,
                 shown(blocks)))
    arenas = ex.value("python_pymalloc_arenas", pid=pid)
    if arenas is not None and tr.get("arenas") is not None:
        c.eq('%s python_pymalloc_arenas{pid="%s"}' % (where, pid), float(tr["arenas"]), arenas)


# JSON field -> metric (target-level gauges/counters without generation).
NULL_MAP = [
    (("memory", "rss_bytes"), "python_memory_resident_bytes"),
    (("memory", "vms_bytes"), "python_memory_virtual_bytes"),
    (("memory", "anon_bytes"), "python_memory_anonymous_bytes"),
    (("memory", "swap_bytes"), "python_memory_swap_bytes"),
    (("memory", "pss_bytes"), "python_memory_proportional_bytes"),
    (("memory", "peak_rss_bytes"), "python_memory_peak_resident_bytes"),
    (("pymalloc", "arenas"), "python_pymalloc_arenas"),
    (("pymalloc", "arena_bytes"), "python_pymalloc_arena_bytes"),
    (("pymalloc", "allocated_blocks"), "python_pymalloc_allocated_blocks"),
    (("pymalloc", "allocated_bytes"), "python_pymalloc_allocated_bytes"),
    (("threads",), "python_threads"),
    (("gc", "enabled"), "python_gc_enabled"),
    (("gc", "busy_ratio_estimate"), "python_gc_busy_ratio_estimate"),
]
NULL_MAP_GEN = [
    ("count", "python_gc_pending"),
    ("threshold", "python_gc_threshold"),
    ("collections", "python_gc_collections_total"),
    ("collected", "python_gc_objects_collected_total"),
    ("uncollectable", "python_gc_objects_uncollectable_total"),
    ("duration_seconds", "python_gc_duration_seconds_total"),
]


def dig(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return "missing"
        d = d[k]
    return d


def null_consistency(c, where, proc, ex):
    """null in JSON <=> no sample; a value in JSON <=> a sample."""
    pid = str(proc.get("pid"))
    for path, mname in NULL_MAP:
        v = dig(proc, path)
        if v == "missing":
            continue
        have = ex.find(mname, pid=pid)
        if v is None:
            c.ok(not have, "%s %s is null in JSON but %s{pid=%s} = %s (a made-up value)" % (
                where, ".".join(path), mname, pid, have[0].value if have else None))
        else:
            c.ok(len(have) == 1, "%s %s is %s in JSON but %s{pid=%s} has %d samples" % (
                where, ".".join(path), shown(v), mname, pid, len(have)))
    gens = dig(proc, ("gc", "generations"))
    if isinstance(gens, list):
        for g in gens:
            if not isinstance(g, dict):
                continue
            for key, mname in NULL_MAP_GEN:
                if key not in g:
                    continue
                have = ex.find(mname, pid=pid, generation=str(g.get("generation")))
                if g[key] is None:
                    c.ok(not have, "%s gc.generations[%s].%s is null in JSON but %s has a "
                                   "sample (%s)" % (where, g.get("generation"), key, mname,
                                                    have[0].value if have else None))
                else:
                    c.ok(len(have) == 1, "%s gc.generations[%s].%s is %s in JSON but %s has "
                                         "%d samples" % (where, g.get("generation"), key,
                                                         shown(g[key]), mname, len(have)))


# --------------------------------------------------------------------------
# The checks

class Ctx(object):
    pass


def fetch_metrics(inst, accept=None, extra=(), path="/metrics"):
    h = []
    if accept is not None:
        h.append(("Accept", accept))
    h += list(extra)
    return inst.get(path, h)


def fmt_of_ct(ct):
    for f, v in CT_OF.items():
        if ct == v:
            return f
    return None


def check_body_format(c, fmt, r, what):
    """The body is really of the format its Content-Type says."""
    try:
        text = r.text()
    except (UnicodeDecodeError, OSError, EOFError) as e:
        c.diffs.append("%s: body is not (gzip of) UTF-8: %s" % (what, e))
        return None
    if fmt == "json":
        try:
            d = json.loads(text)
        except ValueError as e:
            c.diffs.append("%s: body is not JSON (%s): %s" % (what, e, shown(text[:120])))
            return None
        c.ok(isinstance(d, dict) and isinstance(d.get("processes"), list)
             and isinstance(d.get("pymemd"), dict),
             "%s: JSON has no pymemd/processes: %s" % (what, shown(text[:160])))
        return d
    if fmt == "om":
        c.ok(text.endswith("# EOF\n"), "%s: OpenMetrics body does not end with '# EOF\\n' "
                                       "(ends %s)" % (what, shown(text[-40:])))
    else:
        c.ok("# EOF" not in text, "%s: text 0.0.4 body contains '# EOF'" % what)
        c.ok(text.endswith("\n"), "%s: text body does not end with a newline" % what)
    c.ok("pymemd_build_info" in text, "%s: no pymemd_build_info in the body" % what)
    return text


def expect_format(c, inst, accept, fmt, extra=(), path="/metrics"):
    r = fetch_metrics(inst, accept, extra, path)
    what = "Accept %s" % (shown(accept) if accept is not None else "(none)")
    if path != "/metrics":
        what = "GET %s, %s" % (path, what)
    if not c.eq("%s: status" % what, 200, r.status):
        c.diffs.append("body: %s" % short(r.raw, 200))
        return r
    got = r.h("Content-Type")
    if got != CT_OF[fmt]:
        c.diffs.append("%s: expected %s (Content-Type %s), got Content-Type %s%s" % (
            what, FMT_NAME[fmt], json.dumps(CT_OF[fmt]), shown(got),
            " (= %s)" % FMT_NAME[fmt_of_ct(got)] if fmt_of_ct(got) else ""))
        return r
    check_body_format(c, fmt, r, what)
    return r


def expect_error(c, r, what, statuses, allow_non_json=False):
    """r must be one of statuses with a JSON error {"error":{"code","message"}}."""
    if r.status not in statuses:
        c.diffs.append("%s: expected status %s, got %s" % (
            what, "/".join(str(s) for s in statuses), r.describe()))
        return False
    if allow_non_json and r.h("Content-Type") != CT_JSON:
        return True
    c.eq("%s: Content-Type" % what, CT_JSON, r.h("Content-Type"))
    try:
        d = json.loads(r.raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        c.diffs.append("%s: body is not JSON: %s" % (what, shown(short(r.raw, 160))))
        return False
    e = d.get("error") if isinstance(d, dict) else None
    if not isinstance(e, dict):
        c.diffs.append("%s: no \"error\" object: %s" % (what, shown(d)))
        return False
    c.eq("%s: error.code" % what, r.status, e.get("code"))
    c.ok(isinstance(e.get("message"), str) and e.get("message"),
         "%s: error.message: expected a non-empty string, got %s" % (what, shown(e.get("message"))))
    return True


def get_expo(c, inst, fmt, gz=False):
    h = [("Accept", "text/plain;version=0.0.4" if fmt == "text" else PROM_ACCEPT[3][1])]
    if gz:
        h.append(("Accept-Encoding", "gzip"))
    r = inst.get("/metrics", h)
    if r.status != 200 or r.h("Content-Type") != CT_OF[fmt]:
        raise Fail("GET /metrics for %s: %s" % (FMT_NAME[fmt], r.describe()))
    try:
        text = r.text()
    except UnicodeDecodeError as e:
        c.diffs.append("%s body is not UTF-8: %s" % (FMT_NAME[fmt], e))
        text = r.body.decode("utf-8", "replace")
    return text, Expo(text, fmt == "om")


def check_exposition(c, inst, fmt, expect_pids=None):
    text, ex = get_expo(c, inst, fmt)
    for p in ex.problems:
        c.diffs.append("%s %s" % (FMT_NAME[fmt], p))
    # Target metrics carry pid and name; pid is a number.
    missing = set()
    for s in ex.samples:
        if TARGET_METRIC.match(s.name):
            if "pid" not in s.labels or "name" not in s.labels:
                missing.add(s.name)
            elif not re.match(r"^[1-9]\d*$", s.labels["pid"]):
                c.diffs.append("%s: pid label %s is not a pid" % (s.name, shown(s.labels["pid"])))
        for k in s.labels:
            if k in ("job", "instance", "type", "le", "quantile"):
                c.diffs.append("%s uses the reserved/clashing label %s" % (s.name, k))
        if s.name.startswith("process_") or s.name.startswith("scrape_"):
            c.diffs.append("%s uses a prefix reserved by Prometheus" % s.name)
    for m in sorted(missing):
        c.diffs.append("%s: samples without pid/name labels" % m)
    bi = ex.find("pymemd_build_info")
    if c.eq("pymemd_build_info series", 1, len(bi)):
        c.eq("pymemd_build_info value", 1.0, bi[0].value)
        c.ok("version" in bi[0].labels, "pymemd_build_info has no version label")
    # Types of the contract's families.
    types = {"python_gc_collections_total": "counter",
             "python_gc_objects_collected_total": "counter",
             "python_gc_objects_uncollectable_total": "counter",
             "python_gc_pending": "gauge", "python_gc_threshold": "gauge",
             "python_gc_enabled": "gauge", "python_info": "gauge",
             "pymemd_target_up": "gauge", "pymemd_build_info": "gauge",
             "python_memory_resident_bytes": "gauge", "python_threads": "gauge"}
    for name, want in types.items():
        fam = name[:-6] if (fmt == "om" and want == "counter") else name
        got = (ex.families.get(fam) or {}).get("type")
        c.eq("%s # TYPE %s" % (FMT_NAME[fmt], fam), want, got)
        c.ok(ex.find(name), "%s: no %s samples" % (FMT_NAME[fmt], name))
    if expect_pids is not None:
        got = sorted(set(int(s.labels["pid"]) for s in ex.find("pymemd_target_up")
                         if s.labels.get("pid", "").isdigit()))
        c.eq("%s pids of pymemd_target_up" % FMT_NAME[fmt], sorted(expect_pids), got)
    err, _ = promtool_check(text, fmt == "om")
    if err:
        c.diffs.append(err)
    else:
        c.note("%s: clean" % ("OpenMetrics parser" if fmt == "om" else "promtool"))
    c.note("%d families, %d samples, %d bytes" % (len(ex.families), len(ex.samples), len(text)))
    return ex


def strict_json(c, r, what):
    """JSON must be valid UTF-8 (RFC 8259 section 8.1); on failure record
    it and go on with a lenient decoding so the other checks still run."""
    try:
        return json.loads(r.raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        bad = r.raw[max(0, e.start - 40):e.end + 20]
        c.diffs.append("%s is not valid UTF-8 (byte %r at offset %d, near %r): a command "
                       "line that is not UTF-8 must be escaped or replaced in JSON" % (
                           what, r.raw[e.start:e.end], e.start, bad))
        return json.loads(r.raw.decode("utf-8", "replace"))


# --------------------------------------------------------------------------
# Setup and main

def setup(exe):
    """Starts the targets (pyenv 3.12, the system python3, the newest Debian one) and the main
    pymemd watching them, and checks they are sampled. Returns the context, or None when
    nothing can be checked (the reason is printed as a result)."""
    ctx = Ctx()
    ctx.exe = exe
    ctx.tag, ctx.regex = make_tag()
    ctx.tag2, ctx.regex2 = make_tag()
    ctx.targets = []
    ctx.all_targets = []
    ctx.late = None
    ctx.denied = None

    # Interpreters: pyenv 3.12, the system python3, the newest Debian one.
    interps = []
    label, path = pyenv_python(12)
    if path:
        interps.append((label, [path]))
    else:
        RESULTS.out("SKIP", "interpreter pyenv 3.12", "no pyenv 3.12 in %s" % pyenv_root())
    if os.path.exists("/usr/bin/python3"):
        interps.append(("system-python3", ["/usr/bin/python3"]))
    label, cmd = debian_python()
    if label:
        interps.append((label, cmd))
    else:
        RESULTS.out("SKIP", "interpreter debian", cmd)
    if not interps:
        RESULTS.out("FAIL", "setup", "no Python interpreter found")
        return None

    for i, (label, cmd) in enumerate(interps):
        tag = "%s-base%d" % (ctx.tag, i)
        try:
            t = Target(label, target_argv(cmd, tag), tag)
        except (RuntimeError, OSError) as e:
            RESULTS.out("FAIL", "setup: target %s" % label, str(e))
            continue
        t.label = "%s %s" % (label, t.truth["version"])
        ctx.targets.append(t)
        ctx.all_targets.append(t)
    say("targets: %s" % ", ".join("%s pid %d" % (t.label, t.pid) for t in ctx.targets))
    say("match: %s" % ctx.regex)
    # Distinct versions for the exec/reuse checks: newest first.
    ctx.interps = []
    seen = set()
    for t, (label, cmd) in zip(ctx.targets, interps):
        if t.truth["version"] not in seen and len(cmd) == 1:
            seen.add(t.truth["version"])
            ctx.interps.append((t.label, cmd))
    if not ctx.targets:
        return None

    main = Pymemd(exe, ["--match", ctx.regex, "--interval", str(INTERVAL)], "pymemd")
    ctx.main = main
    try:
        main.start()
    except NotAvailable as e:
        RESULTS.out("SKIP", "all HTTP checks", "this pymemd has no HTTP daemon: %s" % e)
        return None
    except Fail as e:
        RESULTS.out("FAIL", "setup: pymemd --listen", str(e))
        return None
    say("pymemd: %s" % " ".join(main.argv))

    def t_sampled(c, ctx):
        pids = [t.pid for t in ctx.targets]
        t0 = time.monotonic()
        p = wait_sampled(main, pids)
        if pids and all((p.get(pid) or {}).get("status") == "denied" for pid in pids):
            ctx.denied = (p.get(pids[0]) or {}).get("error") or "denied"
            raise Skip("pymemd may not read the targets (%s): the value checks are "
                       "skipped" % short(ctx.denied, 160))
        for t in ctx.targets:
            pr = p.get(t.pid)
            c.ok(pr is not None and pr.get("status") == "ok",
                 "%s pid %d: not \"ok\" within %.0f s: %s" % (
                     t.label, t.pid, DISCOVERY_WAIT, shown(pr and
                                                           {"status": pr.get("status"),
                                                            "error": pr.get("error")})))
        c.note("all %d targets ok after %.2f s" % (len(pids), time.monotonic() - t0))
    if not case("setup: targets sampled", t_sampled, ctx):
        say("  (continuing; value checks of unsampled targets will fail)")
    return ctx


def t_never_stopped(c, ctx, when):
    for t in ctx.all_targets:
        if t.alive():
            st = proc_state(t.pid)
            c.ok(st not in ("T", "t"), "%s pid %d is stopped (state %s) %s" % (
                t.label, t.pid, st, when))


def drive(title, cases):
    """The main of a driver: --pymemd, the setup, cases(ctx), then the targets are checked
    not to be left stopped."""
    import argparse
    ap = argparse.ArgumentParser(description=title)
    ap.add_argument("--pymemd", required=True, help="the pymemd binary to test")
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        sys.stderr.write("%s: %s is not an executable file\n" % (sys.argv[0], exe))
        return 2

    def run():
        ctx = setup(exe)
        if ctx is None:
            return
        cases(ctx)
        case("targets never left stopped (end)", t_never_stopped, ctx, "at the end")
    return run_driver("%s: %s" % (title, exe), run)
