"""A generated layout table without the values a 3.13+ target's own debug offsets replace (the
sizes, and the offsets pyloc_apply_debug_offsets() takes from the target), nor its sources: two
patch releases that differ only there are one table, since the reader follows the target for
those. generate.sh merges tables by it; scripts/test.sh compares tables by it.

Usage: comparable.py TABLE_FILE   (prints the comparable text)"""
import re
import sys

CARRIED = {"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
           "runtime.interpreters_main", "interp.size", "interp.id", "interp.next",
           "interp.threads_head", "interp.gc", "tstate.size", "tstate.next", "gc.collecting",
           "object.ob_type", "object.ob_size", "object.tp_name", "object.tp_flags",
           "sizes.iframe_code"}


def comparable(text):
    has_dbg = not re.search(r"\.debug_offsets = \{\n\s+\.size = 0,", text)
    ring = "stats_kind = PYGCS_RING" in text
    section = ""
    out = []
    for line in text.splitlines():
        m = re.match(r"    \.(\w+) = \{$", line)
        if m:
            section = m.group(1)
        m = re.match(r"        \.(\w+) = ", line)
        if m and section == "gc" and m.group(1) == "stats" and has_dbg and ring:
            continue
        if m and "%s.%s" % (section, m.group(1)) in CARRIED and has_dbg:
            continue
        if section == "debug_offsets" or line.startswith("    .source = "):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(comparable(open(sys.argv[1]).read()))
