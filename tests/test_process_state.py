"""Library calls leave process-wide state alone; the CLI opts in where it helps.

References: bitwise equality of a model call with the same call made later or in another
process; glibc's own accounting (mallinfo2: a block above glibc's largest mmap
threshold and larger than all free memory of its heaps is mmapped, and so returned to
the operating system when freed, unless the process asked glibc to keep freed memory), and
matplotlib's own record of the backend the process chose.
Each check runs in a fresh interpreter, so nothing an earlier test did counts.
"""

import os
import platform
import subprocess
import sys

import pytest

# did glibc serve a large tensor by mmap (its own count, mallinfo2)? 1 if all of it, else 0.
# Above glibc's largest mmap threshold (32 MiB) it is mmapped, unless the process asked
# glibc to keep freed memory (M_MMAP_MAX=0). The tensor is 96 MiB more than all free memory
# of the heaps: a free heap chunk that large (after the model's calls, depending on thread
# timing) would serve it without mmap, and the check would fail by chance (seen 1 in 5
# under load with a fixed 96 MiB).
_MMAP_PROBE = r"""
import ctypes
class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2

def mmapped_all():
    import torch
    info = _libc.mallinfo2()
    mib = (info.fordblks >> 20) + 96
    x = torch.ones(mib << 18)
    return int((_libc.mallinfo2().hblkhd - info.hblkhd) >> 20 == mib)
"""

_MODEL_CALL = _MMAP_PROBE + r"""
from ase.build import bulk
from omni_flows.model import OmniCalculator, load_model, predict
from omni_flows.model.inference import evaluate, keep_freed_memory

atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
model = load_model("7net-mf-0")
evaluate(model, [atoms], "PBE")
predict([atoms], model, task="PBE")
atoms.calc = OmniCalculator(model, task="PBE", device="cpu")
atoms.get_forces()
print(keep_freed_memory.cache_info().misses, mmapped_all())
"""

_CLI_OPT_IN = _MMAP_PROBE + r"""
import sys
from omni_flows.cli import _opt_in_process_settings
_opt_in_process_settings(sys.argv[1:])
print(mmapped_all())
"""

_libc = platform.libc_ver()
glibc_only = pytest.mark.skipif(
    _libc[0] != "glibc" or tuple(map(int, _libc[1].split("."))) < (2, 33),
    reason="mallopt and mallinfo2 (glibc >= 2.33)",
)


def _run(code: str, *args: str) -> list[int]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True)
    return [int(x) for x in done.stdout.split()]


@glibc_only
def test_model_calls_leave_the_allocator_alone():
    """evaluate, predict and the ASE calculator on CPU never call mallopt."""
    misses, mmapped = _run(_MODEL_CALL)
    assert misses == 0  # keep_freed_memory was never called
    assert mmapped == 1  # and glibc still serves (and returns) large blocks by mmap


@glibc_only
@pytest.mark.parametrize("argv,kept", [
    (["screen", "surfaces", "--bulk", "Pt"], True),
    (["db", "status"], False),
])
def test_cli_keeps_freed_memory_for_the_commands_that_run_the_model(argv, kept):
    (mmapped,) = _run(_CLI_OPT_IN, *argv)
    assert mmapped == (0 if kept else 1)


# the model's first call in a fresh process on 2 threads, then the same call again
_FIRST_CALL = r"""
import torch
torch.set_num_threads(2)
from ase import Atoms
from ase.build import add_adsorbate, fcc111
from omni_flows.model import load_model
from omni_flows.model.inference import evaluate

slab = fcc111("Pt", (3, 3, 4), vacuum=8.0)
add_adsorbate(slab, Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.15]]), 1.85, "ontop")
model = load_model("7net-mf-0")
first, later = evaluate(model, [slab], "PBE")[0], evaluate(model, [slab], "PBE")[0]
print(first["energy"].hex(), later["energy"].hex(), abs(first["forces"] - later["forces"]).max())
"""


def test_first_model_call_of_a_process_gives_the_numbers_of_every_later_call():
    """MKL's vector math, set up by a threaded call, gave about 1 fresh process in 10 an
    inaccurate first call (energy off by 1.5 meV); the model sets it up serially. A relaxation
    in a new worker process and the same one in a warm process must store the same numbers."""
    # as a fresh process of a user starts: no thread limit inherited from the test run
    # (tests/conftest.py gives parallel workers and their children one thread each)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    runs = [subprocess.run([sys.executable, "-c", _FIRST_CALL], capture_output=True,
                           text=True, check=True, env=env).stdout.split() for _ in range(16)]
    assert all(first == later and float(df) == 0.0 for first, later, df in runs), runs
    assert len({first for first, _, _ in runs}) == 1, runs  # and the same in every process


_PLOTS = r"""
import sys
from pathlib import Path
import matplotlib
matplotlib.use("pdf")  # the host program's choice
out = Path(sys.argv[1])
from omni_flows.report import heatmap
from omni_flows.accuracy.results import parity_plot
from omni_flows.db_schemas.benchmark import BenchmarkEntry
from omni_flows.training import plot_loss_curve

heatmap([{"surface": "Cu(111)", "adsorbate": "O", "adsorption_energy": -1.2},
         {"surface": "Cu(100)", "adsorbate": "O", "adsorption_energy": None}], out / "map.png")
entries = [BenchmarkEntry(system_id=str(i), reference=0.1 * i, predicted=0.1 * i + 0.05)
           for i in range(4)]
parity_plot({"m": entries}, out / "parity.png", "t", "E_ads")
(out / "steps.csv").write_text("step,loss\n1,2.0\n2,1.0\n")
plot_loss_curve(out)
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_plots_leave_the_matplotlib_backend_alone(tmp_path):
    """The heatmap, parity plot and loss curve draw through Figure: no backend switch, no pyplot."""
    done = subprocess.run([sys.executable, "-c", _PLOTS, str(tmp_path)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pdf", "False"]
    for name in ("map.png", "parity.png", "loss_curve.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
