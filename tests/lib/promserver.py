"""A real Prometheus server (Debian's package) for the drivers that check pymemd's metrics
through it: started on a free loopback port with a generated configuration and a temporary
storage directory, queried through its HTTP API."""
import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request

from pymemdtest import CHILDREN, Fail, free_port, short, shown


class Prom(object):
    """prometheus --config.file=WORKDIR/prometheus.yml (config_text) on 127.0.0.1."""

    def __init__(self, exe, workdir, config_text):
        self.port = None
        self.workdir = workdir
        self.cfg = os.path.join(workdir, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.logf = open(os.path.join(workdir, "prometheus.log"), "w+b")
        self.exe = exe
        self.p = None

    def start(self, deadline):
        for attempt in range(3):
            self.port = free_port()
            self.p = CHILDREN.spawn(
                [self.exe, "--config.file=" + self.cfg,
                 "--storage.tsdb.path=" + os.path.join(self.workdir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
                cwd=self.workdir)
            while time.monotonic() < deadline:
                if self.p.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                                timeout=2) as r:
                        if r.status == 200:
                            return
                except OSError:
                    pass
                time.sleep(0.2)
            if self.p.poll() is None:
                raise Fail("prometheus was not ready within the time budget; log: %s" %
                              short(self.log(), 400))
            if "address already in use" not in self.log():
                raise Fail("prometheus exited with status %s: %s" % (
                    self.p.returncode, short(self.log(), 400)))
            CHILDREN.reap(self.p)
        raise Fail("prometheus: no free port")

    def log(self):
        try:
            self.logf.flush()
            self.logf.seek(0)
            return self.logf.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def api(self, path, **params):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            d = json.loads(r.read().decode("utf-8"))
        if d.get("status") != "success":
            raise Fail("%s: %s" % (path, shown(d)))
        return d["data"]

    def query(self, q):
        """{frozenset(labels): float} of an instant query."""
        data = self.api("/api/v1/query", query=q)
        out = {}
        for r in data.get("result", []):
            out[frozenset(r["metric"].items())] = float(r["value"][1])
        return out

    def one(self, q):
        res = self.query(q)
        if len(res) != 1:
            return None if not res else ("%d series" % len(res))
        return list(res.values())[0]

    def target_health(self, job):
        for t in self.api("/api/v1/targets").get("activeTargets", []):
            if t.get("labels", {}).get("job") == job:
                return t
        return None

    def close(self):
        if self.p is not None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            CHILDREN.reap(self.p)
        try:
            self.logf.close()
        except OSError:
            pass
