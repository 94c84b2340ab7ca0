#!/usr/bin/python3
"""--web.config.file: TLS, client certificates, basic auth and headers, checked from outside.

    /usr/bin/python3 test_tls.py --pymemd build/pymemd --pymemctl build/client/pymemctl

At test time, into a temporary directory: a CA, a server certificate (for 127.0.0.1) and a
client certificate signed by it, a second CA with its own client certificate, a self-signed
client certificate (openssl); bcrypt hashes of random passwords made by htpasswd -B ($2y$,
apache's own bcrypt) and by Python's crypt module ($2b$, libcrypt). One CPython target prints
its ground truth.

Then, with curl: TLS is served and plain HTTP is not; no, wrong or unknown credentials get 401
with WWW-Authenticate and a JSON error, on every path; right ones get 200 with the target's own
gc values; the configured headers are on every answer; the four client_auth_type modes that
check certificates; min_version is enforced; bad web configs refuse the start with their
sentence; SIGHUP applies new users and keeps the old ones on a bad file. pymemctl over TLS
with --user, $PYMEMCTL_PASSWORD and a netrc file. A real Prometheus (Debian's 2.42) scrapes
over TLS with basic auth, and with a client certificate: the values it stores are the
target's own.

PASS/FAIL/SKIP lines, ending with exactly `N passed, M failed, K skipped`; exit status 0 iff
nothing failed.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import httpcommon as th   # noqa: E402
import test_prometheus as tp   # noqa: E402  (the Prom runner)

BUDGET = 240.0


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kw)


class Pki(object):
    """CA, server and client certificates made by openssl in d."""

    def __init__(self, d):
        self.d = d

        def p(name):
            return os.path.join(d, name)
        self.p = p

        def req(*args):
            r = run(["openssl"] + list(args), cwd=d)
            if r.returncode != 0:
                raise th.Fail("openssl %s: %s" % (" ".join(args), r.stderr.decode()[-300:]))
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for ca in ("ca", "otherca"):
            req("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2",
                "-subj", "/CN=pymemd test %s" % ca)
        with open(p("server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "extendedKeyUsage=serverAuth\n")
        with open(p("client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        for name, ca, ext in (("server", "ca", "server.ext"), ("client", "ca", "client.ext"),
                              ("otherclient", "otherca", "client.ext")):
            req("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj",
                "/CN=%s" % name)
            req("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", ext)
        req("req", "-x509", *ec, "-keyout", "self.key", "-out", "self.crt", "-days", "2",
            "-subj", "/CN=self-signed client")


def password():
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(16))


def htpasswd_hash(pw):
    """$2y$ from apache's htpasswd, or None when it is not installed."""
    exe = shutil.which("htpasswd")
    if not exe:
        return None
    r = run([exe, "-nbBC", "5", "u", pw])
    h = r.stdout.decode().strip().split(":", 1)[-1]
    if r.returncode != 0 or not h.startswith("$2y$"):
        raise th.Fail("htpasswd -nbBC 5: %s %s" % (r.stdout, r.stderr))
    return h


def crypt_hash(pw):
    """$2b$ from libcrypt through Python's crypt module (deprecated, present in 3.11)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt
    h = crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
    if not h or not h.startswith("$2b$"):
        raise th.Fail("crypt.crypt gave %r" % h)
    return h


class Curl(object):
    def __init__(self, d):
        self.d = d

    def get(self, port, path="/metrics?format=json", scheme="https", args=()):
        """(curl exit status, HTTP status (0: none), {lower-case header: value}, body)."""
        hdr = os.path.join(self.d, "curl.hdr")
        body = os.path.join(self.d, "curl.body")
        for f in (hdr, body):
            if os.path.exists(f):
                os.unlink(f)
        r = run(["curl", "-sS", "--max-time", "10", "-o", body, "-D", hdr, "-w", "%{http_code}",
                 "%s://127.0.0.1:%d%s" % (scheme, port, path)] + list(args))
        headers = {}
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                for line in f.read().decode("latin-1").splitlines():
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        try:
            status = int(r.stdout.decode().strip() or 0)
        except ValueError:
            status = 0
        return r.returncode, status, headers, data, r.stderr.decode("utf-8", "replace")


class Ctx(object):
    pass


def web_yaml(ctx, tls=True, users=None, headers=None, client_auth=None, ca=None, extra=""):
    lines = []
    if tls:
        lines += ["tls_server_config:", "  cert_file: server.crt",
                  "  key_file: %s" % ctx.pki.p("server.key")]   # one relative, one absolute
        if client_auth:
            lines.append("  client_auth_type: %s" % client_auth)
        if ca:
            lines.append("  client_ca_file: %s" % ca)
    if headers:
        lines += ["http_server_config:", "  headers:"]
        lines += ["    %s: %s" % kv for kv in headers]
    if users:
        lines.append("basic_auth_users:")
        lines += ["  %s: '%s'" % (u, h) for u, h in users]
    return "# written by tests/http/test_tls.py\n" + "\n".join(lines) + "\n" + extra


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def start(ctx, name, yaml_text, auth=None, ca_args=None, deadline=15.0):
    """A pymemd with this web config (in the PKI directory, so relative names resolve there),
    ready once a GET /metrics over TLS (with auth/cert when given) answers 200."""
    path = ctx.pki.p("%s.yml" % name)
    write(path, yaml_text)
    inst = th.Pymemd(ctx.exe, ["--match", ctx.regex, "--interval", "0.3",
                               "--web.config.file", path], "pymemd (%s)" % name)
    inst.web = path
    inst.start(wait=False)
    args = list(ca_args if ca_args is not None else ["--cacert", ctx.pki.p("ca.crt")])
    if auth:
        args += ["-u", "%s:%s" % auth]
    t_end = time.monotonic() + deadline
    while time.monotonic() < t_end:
        if not inst.alive():
            raise th.Fail("%s exited with %s: %s" % (inst.name, inst.p.returncode,
                                                     th.short(inst.stderr(), 400)))
        rc, st, _, body, _ = ctx.curl.get(inst.port, "/api/v1/processes", args=args)
        if st == 200:
            procs = json.loads(body.decode()).get("processes", [])
            if any(p.get("pid") == ctx.target.pid and p.get("status") == "ok" for p in procs):
                return inst
        time.sleep(0.1)
    inst.close()
    raise th.Fail("%s: the target was not served ok over TLS within %.0f s (stderr %s)" % (
        inst.name, deadline, th.short(inst.stderr(), 300)))


def check_values(c, ctx, where, body):
    """The JSON document's entry for the target equals the target's own ground truth."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError as e:
        raise th.Fail("%s: not JSON: %s: %s" % (where, e, th.short(body.decode("latin-1"), 200)))
    procs = dict((p.get("pid"), p) for p in doc.get("processes", []) if isinstance(p, dict))
    proc = procs.get(ctx.target.pid)
    if proc is None:
        raise th.Fail("%s: pid %d not in the document" % (where, ctx.target.pid))
    th.json_expectations(c, where, ctx.target, proc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pymemd", required=True)
    ap.add_argument("--pymemctl", required=True)
    opts = ap.parse_args()
    exe = os.path.abspath(opts.pymemd)
    ctl = os.path.abspath(opts.pymemctl)
    for f in (exe, ctl):
        if not (os.path.isfile(f) and os.access(f, os.X_OK)):
            sys.stderr.write("test_tls.py: %s is not an executable file\n" % f)
            return 2
    return th.run_driver("pymemd --web.config.file: %s" % exe, body, exe, ctl)


def body(exe, ctl):
    for tool in ("openssl", "curl"):
        if not shutil.which(tool):
            th.RESULTS.out("SKIP", "TLS and auth", "%s is not installed (scripts/deps.sh)" % tool)
            return
    ctx = Ctx()
    ctx.exe, ctx.ctl = exe, ctl
    ctx.dir = tempfile.mkdtemp(prefix="pymemd-tls-")
    ctx.curl = Curl(ctx.dir)
    insts = []
    try:
        run_cases(ctx, insts)
    finally:
        for i in insts:
            i.close()
        if getattr(ctx, "target", None):
            ctx.target.close()
        shutil.rmtree(ctx.dir, ignore_errors=True)


def run_cases(ctx, insts):
    def t_pki(c):
        ctx.pki = Pki(ctx.dir)
        ctx.pw = {"alice": password(), "bob": password(), "carol": password()}
        ctx.hash = {"bob": crypt_hash(ctx.pw["bob"])}
        h = htpasswd_hash(ctx.pw["alice"])
        if h is None:
            c.note("htpasswd (apache2-utils) not installed: alice's hash from crypt too")
            h = crypt_hash(ctx.pw["alice"])
        ctx.hash["alice"] = h
        ctx.hash["carol"] = htpasswd_hash(ctx.pw["carol"]) or crypt_hash(ctx.pw["carol"])
        c.note("alice %s..., bob %s..." % (ctx.hash["alice"][:7], ctx.hash["bob"][:7]))
    if not th.case("setup: certificates (openssl) and bcrypt hashes (htpasswd, crypt)", t_pki):
        return

    label, path = th.pyenv_python(12)
    if not path:
        label, path = "system-python3", "/usr/bin/python3"
    ctx.tag, ctx.regex = th.make_tag()
    ctx.tag += "-tls"
    ctx.regex = ctx.regex + "-tls"
    try:
        ctx.target = th.Target(label, th.target_argv([path], ctx.tag), ctx.tag)
    except (RuntimeError, OSError) as e:
        th.RESULTS.out("FAIL", "setup: target", str(e))
        return
    ctx.target.label = "%s %s" % (label, ctx.target.truth["version"])
    th.say("target: %s pid %d" % (ctx.target.label, ctx.target.pid))

    headers = [("X-Frame-Options", "deny"), ("X-Content-Type-Options", "nosniff"),
               ("Strict-Transport-Security", "max-age=31536000")]
    users = [("alice", ctx.hash["alice"]), ("bob", ctx.hash["bob"])]
    cacert = ["--cacert", ctx.pki.p("ca.crt")]
    alice = ["-u", "alice:%s" % ctx.pw["alice"]]

    main = {}

    def t_start_main(c):
        main["i"] = start(ctx, "main", web_yaml(ctx, users=users, headers=headers),
                          auth=("alice", ctx.pw["alice"]))
        insts.append(main["i"])
        c.note("https://127.0.0.1:%d" % main["i"].port)
    if not th.case("setup: pymemd with TLS, basic auth and headers serves the target", t_start_main):
        return
    inst = main["i"]

    def t_values(c):
        rc, st, h, b, err = ctx.curl.get(inst.port, args=cacert + alice)
        c.eq("status of GET /metrics over TLS as alice", 200, st)
        check_values(c, ctx, "TLS /metrics", b)
        rc, st, h, b, err = ctx.curl.get(inst.port, "/api/v1/processes/%d" % ctx.target.pid,
                                         args=cacert + ["-u", "bob:%s" % ctx.pw["bob"]])
        c.eq("status of GET /api/v1/processes/PID as bob ($2b$)", 200, st)
        if st == 200:
            th.json_expectations(c, "TLS /api/v1/processes/PID", ctx.target,
                                 json.loads(b.decode()))
    th.case("TLS: the right user gets 200 and the target's own gc values ($2y$ and $2b$)",
            t_values)

    def t_plain(c):
        rc, st, h, b, err = ctx.curl.get(inst.port, scheme="http")
        c.eq("HTTP status of a plain http:// request", 0, st)
        c.ok(rc != 0, "curl http:// succeeded (exit 0)")
        # And by hand: a plain request gets no HTTP answer at all.
        s = socket.create_connection(("127.0.0.1", inst.port), timeout=5)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
        c.ok(b"HTTP/" not in got, "a plain HTTP request got an HTTP answer: %r" % got[:80])
        c.ok(inst.alive(), "pymemd died on a plain HTTP request")
        c.note("curl exit %d: %s" % (rc, th.short(err.strip(), 100)))
    th.case("TLS on: plain HTTP is not served", t_plain)

    def t_401(c):
        cases = [("no credentials", []),
                 ("wrong password", ["-u", "alice:%s" % ctx.pw["bob"]]),
                 ("empty password", ["-u", "alice:"]),
                 ("unknown user", ["-u", "mallory:%s" % ctx.pw["alice"]]),
                 ("user in other case", ["-u", "Alice:%s" % ctx.pw["alice"]])]
        for what, a in cases:
            for path in ("/metrics", "/healthz", "/", "/api/v1/processes", "/no/such/path"):
                rc, st, h, b, err = ctx.curl.get(inst.port, path, args=cacert + a)
                c.eq("%s %s: status" % (what, path), 401, st)
                c.ok(h.get("www-authenticate", "").startswith("Basic realm="),
                     "%s %s: WWW-Authenticate %r" % (what, path, h.get("www-authenticate")))
                try:
                    e = json.loads(b.decode()).get("error", {})
                except ValueError:
                    e = {}
                c.eq("%s %s: JSON error code" % (what, path), 401, e.get("code"))
                c.ok(b"processes" not in b, "%s %s: the body holds data" % (what, path))
    th.case("wrong or missing credentials: 401, WWW-Authenticate, JSON error, every path",
            t_401)

    def t_headers(c):
        for what, a, want in (("200", alice, 200), ("401", [], 401)):
            rc, st, h, b, err = ctx.curl.get(inst.port, args=cacert + a)
            c.eq("status (%s)" % what, want, st)
            for k, v in headers:
                c.eq("%s on a %s answer" % (k, what), v, h.get(k.lower()))
    th.case("http_server_config.headers on every answer (200 and 401)", t_headers)

    def t_min_version(c):
        c.ok(ctx.curl.get(inst.port, args=cacert + alice + ["--tls-max", "1.2"])[1] == 200,
             "TLS 1.2 refused with the default min_version (TLS12)")
        i = start(ctx, "tls13", web_yaml(ctx, extra="") .replace(
            "tls_server_config:\n", "tls_server_config:\n  min_version: TLS13\n"))
        insts.append(i)
        rc, st, h, b, err = ctx.curl.get(i.port, args=cacert + ["--tls-max", "1.2"])
        c.eq("status over TLS 1.2 with min_version TLS13", 0, st)
        c.ok(rc != 0, "curl --tls-max 1.2 succeeded against min_version TLS13")
        c.note("TLS 1.2 against min_version TLS13: curl exit %d, %s" % (
            rc, th.short(err.strip(), 100)))
        rc, st, h, b, err = ctx.curl.get(i.port, args=cacert + ["--tlsv1.3"])
        c.eq("status over TLS 1.3 with min_version TLS13", 200, st)
        i.stop()
    th.case("min_version is enforced (TLS13 refuses a TLS 1.2 client)", t_min_version)

    good = ["--cert", ctx.pki.p("client.crt"), "--key", ctx.pki.p("client.key")]
    other = ["--cert", ctx.pki.p("otherclient.crt"), "--key", ctx.pki.p("otherclient.key")]
    selfs = ["--cert", ctx.pki.p("self.crt"), "--key", ctx.pki.p("self.key")]
    mtls = {}

    def t_modes(c):
        modes = [("RequireAndVerifyClientCert", True, {"none": 403, "good": 200, "other CA": 403,
                                                       "self-signed": 403}),
                 ("VerifyClientCertIfGiven", True, {"none": 200, "good": 200, "other CA": 403,
                                                    "self-signed": 403}),
                 ("RequireAnyClientCert", False, {"none": 403, "good": 200, "other CA": 200,
                                                  "self-signed": 200})]
        for mode, with_ca, want in modes:
            i = start(ctx, mode, web_yaml(ctx, client_auth=mode,
                                          ca="ca.crt" if with_ca else None),
                      ca_args=cacert + good)
            insts.append(i)
            for who, a in (("none", []), ("good", good), ("other CA", other),
                           ("self-signed", selfs)):
                rc, st, h, b, err = ctx.curl.get(i.port, args=cacert + a)
                c.eq("%s, client certificate %s: status" % (mode, who), want[who], st)
                if st == 200:
                    check_values(c, ctx, "%s %s" % (mode, who), b)
                elif st == 403:
                    c.eq("%s %s: JSON error code" % (mode, who), 403,
                         json.loads(b.decode()).get("error", {}).get("code"))
            if mode == "RequireAndVerifyClientCert":
                mtls["i"] = i      # scraped by Prometheus below
            else:
                i.stop()
    th.case("client_auth_type: certificates required, verified against client_ca_file",
            t_modes)

    def t_bad(c):
        bad = [("a password that is no bcrypt hash",
                "basic_auth_users:\n  alice: %s\n" % ctx.pw["alice"],
                "line 2: basic_auth_users: user \"alice\": the password is not a bcrypt hash"),
               ("a missing key file",
                "tls_server_config:\n  cert_file: server.crt\n  key_file: nosuch.key\n",
                "key_file %s: cannot open" % ctx.pki.p("nosuch.key")),
               ("a key that is not the certificate's",
                "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
                "cannot be used"),
               ("an unknown key", "tls_server_config:\n  certfile: server.crt\n",
                "unknown key \"certfile\""),
               ("a header exporter-toolkit forbids",
                "http_server_config:\n  headers:\n    Server: x\n",
                "\"Server\" cannot be configured"),
               ("a CA without a client_auth_type",
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                "  client_ca_file: ca.crt\n", "client_auth_type is NoClientCert")]
        for what, text, want in bad:
            path = ctx.pki.p("bad.yml")
            write(path, text)
            r = run([ctx.exe, "--listen", "127.0.0.1:%d" % th.free_port(), "--match", ctx.regex,
                     "--web.config.file", path])
            err = r.stderr.decode("utf-8", "replace")
            c.eq("%s: exit status" % what, 2, r.returncode)
            c.ok(("pymemd: %s: " % path) in err and want in err,
                 "%s: stderr %r lacks %r" % (what, th.short(err, 300), want))
        r = run([ctx.exe, "--listen", "127.0.0.1:%d" % th.free_port(), "--match", ctx.regex,
                 "--web.config.file", ctx.pki.p("nosuch.yml")])
        c.eq("missing web config: exit status", 2, r.returncode)
        c.ok("cannot open" in r.stderr.decode(), "missing web config: %r" % r.stderr)
    th.case("a bad web config refuses the start with its sentence", t_bad)

    def reloads(i):
        return i.stderr().count("reload: configuration applied")

    def t_reload(c):
        n = reloads(inst)
        write(inst.web, web_yaml(ctx, users=[("carol", ctx.hash["carol"])], headers=headers))
        os.kill(inst.p.pid, signal.SIGHUP)
        t_end = time.monotonic() + 10
        while reloads(inst) == n and time.monotonic() < t_end:
            time.sleep(0.05)
        c.eq("reloads applied", n + 1, reloads(inst))
        carol = ["-u", "carol:%s" % ctx.pw["carol"]]
        c.eq("carol (new) after reload", 200, ctx.curl.get(inst.port, args=cacert + carol)[1])
        c.eq("alice (removed) after reload", 401, ctx.curl.get(inst.port, args=cacert + alice)[1])
        # A bad file is refused; carol stays.
        write(inst.web, "basic_auth_users:\n  carol: plaintext\n")
        e0 = inst.stderr().count("keeping the running configuration")
        os.kill(inst.p.pid, signal.SIGHUP)
        t_end = time.monotonic() + 10
        while inst.stderr().count("keeping the running configuration") == e0 and \
                time.monotonic() < t_end:
            time.sleep(0.05)
        err = inst.stderr()
        c.ok("not a bcrypt hash" in err and "; keeping the running configuration" in err,
             "bad reload: stderr lacks the refusal: %s" % th.short(err[-300:], 300))
        c.eq("carol after a refused reload", 200, ctx.curl.get(inst.port, args=cacert + carol)[1])
        c.eq("no credentials after a refused reload", 401, ctx.curl.get(inst.port,
                                                                        args=cacert)[1])
        c.ok(inst.alive(), "pymemd died on a reload")
    th.case("SIGHUP: new users apply, a bad web config is refused and the old kept", t_reload)

    def t_pymemctl(c):
        url = "https://127.0.0.1:%d" % inst.port
        pid = str(ctx.target.pid)
        base = [ctx.ctl, "--url", url, "--cacert", ctx.pki.p("ca.crt")]
        env = th.clean_env()
        env.pop("PYMEMCTL_PASSWORD", None)
        env["NETRC"] = ctx.pki.p("no-netrc")
        r = run(base + ["--user", "carol:%s" % ctx.pw["carol"], "show", pid, "--json"], env=env)
        c.eq("pymemctl --user carol:PASS show --json: exit", 0, r.returncode)
        if r.returncode == 0:
            th.json_expectations(c, "pymemctl show", ctx.target, json.loads(r.stdout.decode()))
        r = run(base + ["show", pid, "--json"], env=env)
        c.eq("pymemctl without --user: exit", 1, r.returncode)
        c.ok("authentication required" in r.stderr.decode() and "401" in r.stderr.decode(),
             "pymemctl without --user: %r" % r.stderr)
        r = run(base + ["--user", "carol:wrong", "ls"], env=env)
        c.eq("pymemctl wrong password: exit", 1, r.returncode)
        env2 = dict(env, PYMEMCTL_PASSWORD=ctx.pw["carol"])
        r = run(base + ["--user", "carol", "ls"], env=env2)
        c.eq("pymemctl --user carol with PYMEMCTL_PASSWORD: exit", 0, r.returncode)
        c.ok(pid in r.stdout.decode(), "pymemctl ls lacks pid %s: %r" % (pid, r.stdout))
        write(ctx.pki.p("netrc"), "machine 127.0.0.1 login carol password %s\n" % ctx.pw["carol"])
        os.chmod(ctx.pki.p("netrc"), 0o600)
        env3 = dict(env, NETRC=ctx.pki.p("netrc"))
        r = run(base + ["ls", "--json"], env=env3)
        c.eq("pymemctl with a netrc file: exit", 0, r.returncode)
        r = run([ctx.ctl, "--url", url, "--user", "carol:%s" % ctx.pw["carol"], "ls"], env=env)
        c.eq("pymemctl without --cacert (server not trusted): exit", 3, r.returncode)
        # A client certificate for the RequireAndVerifyClientCert instance.
        if "i" in mtls:
            murl = "https://127.0.0.1:%d" % mtls["i"].port
            r = run([ctx.ctl, "--url", murl, "--cacert", ctx.pki.p("ca.crt"), "--cert",
                     ctx.pki.p("client.crt"), "--key", ctx.pki.p("client.key"), "show", pid,
                     "--json"], env=env)
            c.eq("pymemctl --cert/--key against RequireAndVerifyClientCert: exit", 0,
                 r.returncode)
            if r.returncode == 0:
                th.json_expectations(c, "pymemctl mTLS show", ctx.target,
                                     json.loads(r.stdout.decode()))
            r = run([ctx.ctl, "--url", murl, "--cacert", ctx.pki.p("ca.crt"), "ls"], env=env)
            c.eq("pymemctl without a client certificate: exit", 1, r.returncode)
    th.case("pymemctl over TLS: --cacert, --user, PYMEMCTL_PASSWORD, netrc, --cert/--key",
            t_pymemctl)

    prometheus(ctx, inst, mtls.get("i"))


PROM_CONFIG = """# generated by tests/http/test_tls.py
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: basic
    scheme: https
    tls_config:
      ca_file: %(ca)s
    basic_auth:
      username: carol
      password: %(pw)s
    static_configs:
      - targets: ['127.0.0.1:%(basic)d']
  - job_name: mtls
    scheme: https
    tls_config:
      ca_file: %(ca)s
      cert_file: %(cert)s
      key_file: %(key)s
    static_configs:
      - targets: ['127.0.0.1:%(mtls)d']
"""


def prometheus(ctx, inst, mtls):
    prom_exe = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if not prom_exe:
        th.RESULTS.out("SKIP", "Prometheus scrapes over TLS",
                       "prometheus is not installed (apt-get install prometheus)")
        return
    if mtls is None:
        th.RESULTS.out("FAIL", "Prometheus scrapes over TLS", "no client-certificate pymemd")
        return
    workdir = tempfile.mkdtemp(prefix="pymemd-tls-prom-")
    prom = tp.Prom(prom_exe, workdir, PROM_CONFIG % {
        "ca": ctx.pki.p("ca.crt"), "pw": ctx.pw["carol"], "basic": inst.port,
        "cert": ctx.pki.p("client.crt"), "key": ctx.pki.p("client.key"), "mtls": mtls.port})
    try:
        def t_start(c):
            prom.start(time.monotonic() + 30)
        if not th.case("setup: prometheus starts", t_start):
            return
        tr = ctx.target.truth
        pid = ctx.target.pid

        def t_job(c, job):
            t_end = time.monotonic() + 20
            v = None
            while time.monotonic() < t_end:
                sel = 'python_gc_threshold{job="%s",pid="%d",generation="1"}' % (job, pid)
                v = prom.one(sel)
                if isinstance(v, float):
                    break
                time.sleep(0.5)
            t = prom.target_health(job) or {}
            c.eq('up{job="%s"}' % job, 1.0, prom.one('up{job="%s"}' % job))
            if t.get("health") != "up":
                c.diffs.append("health %s, lastError %s" % (t.get("health"),
                                                            t.get("lastError")))
            sel = 'job="%s",pid="%d"' % (job, pid)
            for i in range(3):
                c.eq('python_gc_threshold{generation="%d",%s}' % (i, sel),
                     float(tr["get_threshold"][i]),
                     prom.one('python_gc_threshold{generation="%d",%s}' % (i, sel)))
                c.eq('python_gc_collections_total{generation="%d",%s}' % (i, sel),
                     float(tr["get_stats"][i]["collections"]),
                     prom.one('python_gc_collections_total{generation="%d",%s}' % (i, sel)))
            c.eq("pymemd_target_up{%s}" % sel, 1.0, prom.one("pymemd_target_up{%s}" % sel))
            c.note("scrapeUrl %s, health %s" % (t.get("scrapeUrl"), t.get("health")))
        th.case("Prometheus scrapes over TLS with basic_auth: stored values = the target's own",
                t_job, "basic")
        th.case("Prometheus scrapes over TLS with a client certificate: stored values = the "
                "target's own", t_job, "mtls")
    finally:
        prom.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
