#!/usr/bin/python3
"""Writes config/grafana/pymemd.json, the Grafana dashboard on pymemd's Prometheus metrics
(DESIGN.md section 5). The dashboard is the committed JSON; this script is how it is made, so
that a change is one edit here instead of hundreds of lines of panel JSON by hand:

    /usr/bin/python3 config/grafana/generate.py > config/grafana/pymemd.json

tests/config/test_grafana.py checks that the committed file is what this script writes, and
runs every panel's query against a real Prometheus that scraped pymemd with real targets.
"""
import json
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
# Every target series carries job and instance (Prometheus) and pid and name (pymemd).
SEL = 'job=~"$job",instance=~"$instance",name=~"$name"'
LEGEND = "{{name}} {{pid}} ({{instance}})"
# The service group is a label of pymemd_target_info only (README "Service groups"): a
# per-process query keeps the processes of the chosen groups by this join, which leaves its
# series and labels as they are.
INFO = 'pymemd_target_info{job=~"$job",instance=~"$instance",group=~"$group"}'
IN_GROUP = " and on (job, instance, pid, name) " + INFO
# A per-group sum: each process's series given its group, then summed (raw PromQL, so that the
# dashboard works without config/pymemd.rules.yml's recording rules loaded).
TO_GROUP = " * on (job, instance, pid, name) group_left (group) " + INFO
GLEGEND = "{{group}} ({{instance}})"
GSEL = 'job=~"$job",instance=~"$instance"'     # a group is all of its processes, whatever $name


def g(expr):
    """expr, of the processes of the chosen groups only."""
    return "(%s)%s" % (expr, IN_GROUP)

panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
    y += 1


def panel(kind, title, desc, targets, unit="short", w=12, h=8, x=0, extra=None,
          per_process=True):
    """targets: [(expr, legend)], each of the chosen groups only when per_process (series with
    pid and name). Panels are placed left to right, two to a line."""
    global y
    if per_process:
        targets = [(g(e), l) for e, l in targets]
    p = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + i),
                     "range": kind != "table", "instant": kind == "table"}
                    for i, (e, l) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom",
                                   "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if extra:
        p.update(extra)
    panels.append(p)
    if x + w >= 24:
        y += h


row("Targets")
panel("stat", "Targets read", "Processes pymemd watches whose last sample succeeded, of all it "
      "watches (pymemd_target_up). A target it cannot read says why in its JSON: "
      "curl http://HOST:9100/api/v1/processes/PID",
      [('sum(%s)' % g('pymemd_target_up{%s}' % SEL), "read"),
       ('count(%s)' % g('pymemd_target_up{%s}' % SEL), "watched")], w=8, x=0,
      per_process=False)
panel("table", "Interpreters", "The CPython version of every target (python_info).",
      [('python_info{%s}' % SEL, "")], w=8, x=8,
      extra={"transformations": [{"id": "labelsToFields", "options": {}},
                                 {"id": "organize", "options": {"excludeByName": {
                                     "Time": True, "Value": True, "__name__": True}}}]})
panel("timeseries", "Sample duration", "Wall time pymemd took to sample each target "
      "(pymemd_sample_duration_seconds): reading a target costs it nothing, this is pymemd's "
      "own time.", [('pymemd_sample_duration_seconds{%s}' % SEL, LEGEND)], unit="s", w=8, x=16)

row("Memory")
panel("timeseries", "Resident memory (RSS)", "python_memory_resident_bytes: what the kernel "
      "counts against the process. Compare with the Python heap on the right: RSS growing "
      "while the heap stays flat points at native memory (C extensions, fragmentation).",
      [('python_memory_resident_bytes{%s}' % SEL, LEGEND)], unit="bytes", x=0)
panel("timeseries", "Python heap vs RSS vs PSS", "pymalloc's arena bytes (the small-object "
      "heap), RSS and PSS (proportional: shared pages divided among their sharers; read every "
      "pss_interval) of each target.",
      [('python_pymalloc_arena_bytes{%s}' % SEL, "heap " + LEGEND),
       ('python_memory_resident_bytes{%s}' % SEL, "rss " + LEGEND),
       ('python_memory_proportional_bytes{%s}' % SEL, "pss " + LEGEND)], unit="bytes", x=12)
panel("timeseries", "Allocated blocks", "python_pymalloc_allocated_blocks: the target's own "
      "sys.getallocatedblocks(), live objects and buffers pymalloc holds.",
      [('python_pymalloc_allocated_blocks{%s}' % SEL, LEGEND)], x=0)
panel("timeseries", "RSS growth per hour", "deriv() of RSS over the last hour, per hour: a "
      "steady positive value is a leak's signature (the PythonNativeMemoryGrowth and "
      "PythonHeapGrowth alerts use the same idea).",
      [('deriv(python_memory_resident_bytes{%s}[1h]) * 3600' % SEL, "rss " + LEGEND),
       ('deriv(python_pymalloc_arena_bytes{%s}[1h]) * 3600' % SEL, "heap " + LEGEND)],
      unit="bytes", x=12)

row("Garbage collector")
panel("timeseries", "Collections per second", "rate() of python_gc_collections_total, per "
      "generation.",
      [('sum by (job, instance, pid, name, generation) (rate(python_gc_collections_total{%s}'
        '[$__rate_interval]))' % SEL, "gen {{generation}} " + LEGEND)], unit="ops", x=0)
panel("timeseries", "Objects collected per second", "rate() of "
      "python_gc_objects_collected_total, per generation.",
      [('sum by (job, instance, pid, name, generation) (rate('
        'python_gc_objects_collected_total{%s}[$__rate_interval]))' % SEL,
        "gen {{generation}} " + LEGEND)], unit="ops", x=12)
panel("timeseries", "Pending vs threshold", "python_gc_pending (gc.get_count()) against "
      "python_gc_threshold: generation 0 is collected when its count passes the threshold.",
      [('python_gc_pending{%s,generation="0"}' % SEL, "pending " + LEGEND),
       ('python_gc_threshold{%s,generation="0"}' % SEL, "threshold " + LEGEND)], x=0)
panel("timeseries", "GC busy", "python_gc_busy_ratio_estimate: the share of pymemd's polls "
      "that found a collection running (before 3.15, an estimate); on 3.15+ the time the "
      "interpreter itself measured, rate(python_gc_duration_seconds_total), is the exact one.",
      [('python_gc_busy_ratio_estimate{%s}' % SEL, "estimate " + LEGEND),
       ('sum by (job, instance, pid, name) (rate(python_gc_duration_seconds_total{%s}'
        '[$__rate_interval]))' % SEL, "measured (3.15+) " + LEGEND)], unit="percentunit",
      x=12)
panel("timeseries", "Uncollectable objects (last hour)", "increase() of "
      "python_gc_objects_uncollectable_total: objects the collector found unreachable but "
      "could not free; anything above 0 is worth a look.",
      [('sum by (job, instance, pid, name) (increase('
        'python_gc_objects_uncollectable_total{%s}[1h]))' % SEL, LEGEND)], x=0)
panel("timeseries", "Threads", "python_threads: the interpreter's thread states.",
      [('python_threads{%s}' % SEL, LEGEND)], x=12)

row("Service groups")
panel("stat", "Processes per group", "count by (group) of pymemd_target_info: the processes "
      "pymemd watches in each service group (config key group; README \"Service groups\").",
      [('count by (job, instance, group) (%s)' % INFO, GLEGEND)], w=8, x=0,
      per_process=False)
panel("timeseries", "RSS vs heap per group", "python_memory_resident_bytes and pymalloc's "
      "arena bytes summed over the processes of each group, joined onto the group of "
      "pymemd_target_info (config/pymemd.rules.yml records the same as "
      "group:python_memory_resident_bytes:sum; this needs no rule loaded).",
      [('sum by (job, instance, group) (python_memory_resident_bytes{%s}%s)' % (GSEL, TO_GROUP),
        "rss " + GLEGEND),
       ('sum by (job, instance, group) (python_pymalloc_arena_bytes{%s}%s)' % (GSEL, TO_GROUP),
        "heap " + GLEGEND)], unit="bytes", w=8, x=8, per_process=False)
panel("timeseries", "GC collections/s per group", "rate() of python_gc_collections_total per "
      "process first (a restarted worker is then no drop), then summed per group and "
      "generation (as group:python_gc_collections:rate5m).",
      [('sum by (job, instance, group, generation) (rate(python_gc_collections_total{%s}'
        '[$__rate_interval])%s)' % (GSEL, TO_GROUP), "gen {{generation}} " + GLEGEND)],
      unit="ops", w=8, x=16, per_process=False)

row("Objects (census)")
panel("table", "Top types by count", "python_objects from the latest census of each target "
      "(census_interval; only targets census_match selects are censused on schedule): the "
      "top_types types with the most live objects, the rest summed as other. Who holds them: "
      "pymemctl referrers PID TYPE.",
      [('topk(20, %s)' % g('python_objects{%s}' % SEL), "")], x=0, per_process=False,
      extra={"transformations": [{"id": "labelsToFields", "options": {}},
                                 {"id": "organize", "options": {"excludeByName": {
                                     "Time": True, "__name__": True}}}]})
panel("timeseries", "Object bytes by type", "python_objects_bytes of the top types (the "
      "objects' own sizes, not what they reference).",
      [('topk(10, %s)' % g('python_objects_bytes{%s}' % SEL), "{{object_type}} " + LEGEND)],
      unit="bytes", x=12, per_process=False)
panel("table", "Leak suspects", "pymemd_leak_suspect_objects_per_second: types whose count rose "
      "at each of the last suspect_censuses censuses of their process, with how many objects a "
      "second they gained over them, largest first (the PythonLeakSuspect alert fires on one "
      "above 1/s for 30 minutes). Their counts at each census: pymemctl growth PID; who holds "
      "them: pymemctl referrers PID TYPE.",
      [('sort_desc(%s)' % g('pymemd_leak_suspect_objects_per_second{%s}' % SEL), "")],
      unit="ops", x=0, per_process=False,
      extra={"transformations": [{"id": "labelsToFields", "options": {}},
                                 {"id": "organize", "options": {"excludeByName": {
                                     "Time": True, "__name__": True}}}]})
panel("timeseries", "Leak suspects over time", "The same rate over time: a type is a series "
      "only while it is a suspect, so a line that ends is a type that stopped rising.",
      [('pymemd_leak_suspect_objects_per_second{%s}' % SEL, "{{object_type}} " + LEGEND)],
      unit="ops", x=12)
panel("timeseries", "Census pause", "pymemd_census_pause_seconds: how long the latest census "
      "kept each target stopped (bounded by max_census_pause).",
      [('pymemd_census_pause_seconds{%s}' % SEL, LEGEND)], unit="s", w=24, x=0)


def var(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "multi": multi, "includeAll": True, "allValue": ".*",
            "current": {"text": "All", "value": "$__all"}, "sort": 1}


dashboard = {
    "title": "pymemd: Python memory and GC",
    "uid": "pymemd-overview",
    "description": "Memory, garbage collector and object census of running CPython processes, "
                   "read from outside by pymemd (metrics: its README and DESIGN.md "
                   "section 5).",
    "tags": ["python", "memory", "pymemd"],
    "timezone": "browser",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "graphTooltip": 1,
    "refresh": "30s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0},
        var("job", "Job", "label_values(pymemd_build_info, job)"),
        var("instance", "Host", 'label_values(pymemd_build_info{job=~"$job"}, instance)'),
        var("group", "Group", 'label_values(pymemd_target_info{job=~"$job",'
                              'instance=~"$instance"}, group)'),
        var("name", "Process", 'label_values(pymemd_target_info{job=~"$job",'
                               'instance=~"$instance",group=~"$group"}, name)'),
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
for i, p in enumerate(panels):
    p["id"] = i + 1

json.dump(dashboard, sys.stdout, indent=2, sort_keys=True)
sys.stdout.write("\n")
