"""Where a kernel's start -> kernel_info goes (bench row 1), stage by stage, against plain ipykernel.

Not part of `make bench`; run by hand when the kernel's start changes:

    python bench/start_trace.py 10                                      # plain, ours
    python bench/start_trace.py 10 early_off=PYSPARK_KERNEL_EARLY_JVM:off  # and variants: NAME=VAR:VALUE,...

Each kernelspec's argv runs its kernel through TRACER, which notes (wall clock) when Python is up, when
ipykernel, IPython and pyspark begin to import (and on which thread), when spark-submit is spawned, when
IPKernelApp.initialize and PySparkKernel.__init__ begin and end, and when each kernel_info reply is sent.
The kernels run in paired rounds (order flipped each round); per stage, the median seconds from the
client's start_kernel, and the kernel's and its children's (the JVM's) CPU seconds at ready.
Measured 2026-12-07, 2 cores: the early JVM launched before ipykernel's import cost the reply +86 ms
idle and about +1 s under a load average of 9; launched from PySparkKernel.__init__, +0-4%.
"""

# ruff: noqa
# A probe run by hand, kept as it was measured with.
TRACER = r"""import sys, time, os, json, threading
T0 = time.time()
marks = [("python up", T0)]
WATCH = {"ipykernel.kernelapp", "pyspark_kernel.kernel.ipkernel", "pyspark_kernel.kernel.prelaunch", "IPython", "pyspark", "pyspark.sql", "zmq", "tornado", "jupyter_client", "pandas", "pyarrow", "numpy", "py4j"}
def hook(event, args):
    if event == "import" and args[0] in WATCH and not any(m[0] == "import " + args[0] for m in marks):
        marks.append((f"import {args[0]} [{threading.current_thread().name}]", time.time()))
    elif event == "subprocess.Popen":
        marks.append((f"Popen {os.path.basename(str(args[1][0]))}", time.time()))
sys.addaudithook(hook)

import importlib.abc, importlib.util
class Patch(importlib.abc.MetaPathFinder):
    def __init__(self, targets): self.targets = targets
    def find_spec(self, name, path, target=None):
        if name not in self.targets: return None
        sys.meta_path.remove(self)
        try: spec = importlib.util.find_spec(name)
        finally: sys.meta_path.insert(0, self)
        orig = spec.loader.exec_module
        def exec_module(module, orig=orig, name=name):
            orig(module); self.targets[name](module)
        spec.loader.exec_module = exec_module
        return spec

def wrap(cls, attr, label, after=True, once=True):
    fn = getattr(cls, attr)
    import inspect
    if inspect.iscoroutinefunction(fn):
        async def w(*a, **k):
            r = await fn(*a, **k); marks.append((label, time.time())); dump(); return r
    else:
        def w(*a, **k):
            if not after: marks.append((label + " begins", time.time()))
            r = fn(*a, **k); marks.append((label, time.time())); return r
    setattr(cls, attr, w)

def dump():
    path = os.environ.get("PROBE_MARKS")
    if path:
        with open(path, "w") as f: json.dump(marks, f)

def patch_app(m):
    wrap(m.IPKernelApp, "initialize", "IPKernelApp.initialize done", after=False)
def patch_ipkernel(m):
    wrap(m.PySparkKernel, "__init__", "PySparkKernel.__init__ done", after=False)
def patch_kbase(m):
    wrap(m.Kernel, "kernel_info_request", "kernel_info replied")
def patch_session(m):
    wrap(m.ManagedSession, "_create", "session._create (start thread) done", after=False)
def patch_hooks(m):
    wrap(m, "install", "pyspark_hooks.install done", after=False)
def patch_prelaunch(m):
    wrap(m, "begin", "prelaunch.begin done", after=False)
sys.meta_path.insert(0, Patch({"ipykernel.kernelapp": patch_app, "pyspark_kernel.kernel.ipkernel": patch_ipkernel, "ipykernel.kernelbase": patch_kbase,
    "pyspark_kernel.kernel.session": patch_session, "pyspark_kernel.kernel.pyspark_hooks": patch_hooks, "pyspark_kernel.kernel.prelaunch": patch_prelaunch}))

which = sys.argv.pop(1)
sys.argv[0] = which
if which == "ours":
    from pyspark_kernel.__main__ import main
    main()
else:
    from ipykernel import kernelapp as app
    app.launch_new_instance()
"""

import json, os, sys, time, statistics, subprocess, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
root = Path(tempfile.mkdtemp(prefix="start-trace-"))
tracer = root / "tracer.py"
tracer.write_text(TRACER)
for v in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
    os.environ[v] = str(root / v.lower())
os.environ["JUPYTER_PATH"] = str(root / "prefix/share/jupyter")
import psutil
from conftest import KernelHarness


def spec(name, cmd, which):
    subprocess.run([sys.executable, "-m", *cmd, "--prefix", str(root / "prefix"), "--name", name], check=True, capture_output=True)
    path = root / "prefix/share/jupyter/kernels" / name / "kernel.json"
    data = json.loads(path.read_text())
    data["argv"] = [sys.executable, *(os.environ.get("PROBE_PYFLAGS", "").split()), str(tracer), which, "-f", "{connection_file}"]
    path.write_text(json.dumps(data))


spec("plain", ["ipykernel", "install"], "plain")
spec("ours", ["pyspark_kernel", "install", "--replace"], "ours")
variants = {"plain": ("plain", {}), "ours": ("ours", {})}
for arg in sys.argv[2:]:
    label, _, envs = arg.partition("=")
    variants[label] = ("ours", dict(kv.split(":") for kv in envs.split(",") if kv))
rounds = int(sys.argv[1])
results = {v: [] for v in variants}
names = list(variants)
for v in names:  # warm
    k = KernelHarness(variants[v][0], variants[v][1])
    k.shutdown()
for r in range(rounds):
    for v in names if r % 2 == 0 else names[::-1]:
        spec_name, env = variants[v]
        marks_file = root / f"marks-{v}-{r}.json"
        t0 = time.time()
        k = KernelHarness(spec_name, {**env, "PROBE_MARKS": str(marks_file)})
        t1 = time.time()
        proc = psutil.Process(k.pid)
        own = sum(proc.cpu_times()[:2])
        kids = 0.0
        for c in proc.children(recursive=True):
            try:
                kids += sum(c.cpu_times()[:2])
            except psutil.Error:
                pass
        k.shutdown()
        marks = json.loads(marks_file.read_text())
        row = {"ready": t1 - t0, "kernel cpu": own, "children cpu": kids}
        for label, t in marks:
            row.setdefault(label, t - t0)
        results[v].append(row)
    print(f"round {r + 1}", file=sys.stderr)
for v in names:
    print(f"== {v}")
    keys = []
    for row in results[v]:
        for key in row:
            if key not in keys:
                keys.append(key)
    rows = [(statistics.median([row[k] for row in results[v] if k in row]), k, sum(k in row for row in results[v])) for k in keys]
    for med, key, n in sorted(rows, key=lambda x: (x[1] in ("kernel cpu", "children cpu"), x[0])):
        vals = [row[key] for row in results[v] if key in row]
        print(f"  {med:7.3f}  ({min(vals):.3f}-{max(vals):.3f}) n={n}  {key}")
