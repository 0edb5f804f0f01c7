"""The exception family as ASE has it: input errors (before any compute, exit 2) and
calculation errors (a calculation that ran and failed, exit 3), one line each.

References: a real SCF that cannot converge in 2 cycles (O2, r2SCAN/STO-3G, PySCF), a
real local run whose job hits it, and a real bad setting (fmax 0).
"""

import pytest
from jobflow import Flow, job
from pymatgen.core import Molecule

from omni_flows.cli import run
from omni_flows.engines.local import run_local
from omni_flows.errors import (
    EXIT_CALCULATION_FAILED,
    EXIT_INPUT_ERROR,
    EngineError,
    JobsFailedError,
)
from omni_flows.model.errors import CalculationError, OmniFlowsError
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.dft.gpaw_runner import GPAWMissingError, GPAWRunError
from omni_flows.workflows.dft.pyscf_r2scan import (
    PySCFMissingError,
    PySCFSettings,
    SCFConvergenceError,
    r2scan_energy,
)
from omni_flows.workflows.settings import MLIPSettings

O2 = Molecule(["O", "O"], [[0, 0, 0], [0, 0, 1.21]])
TWO_CYCLES = PySCFSettings(basis="sto-3g", max_cycle=2, smearing=None, spins=(2,))  # triplet


def test_calculation_errors_are_their_own_family_and_input_errors_are_not_in_it():
    for failed in (SCFConvergenceError, GPAWRunError, JobsFailedError):
        assert issubclass(failed, CalculationError) and issubclass(failed, OmniFlowsError)
        assert not issubclass(failed, WorkflowInputError)
    for bad_input in (WorkflowInputError, GPAWMissingError, PySCFMissingError):
        assert not issubclass(bad_input, CalculationError)
    assert issubclass(JobsFailedError, EngineError)  # callers catching EngineError still do
    assert (EXIT_INPUT_ERROR, EXIT_CALCULATION_FAILED) == (2, 3)


def cli_exit(command, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``command`` run as the CLI runs a command."""
    with pytest.raises(SystemExit) as exited:
        run(command, model_command=False)
    return exited.value.code, capsys.readouterr().err


def test_an_scf_that_does_not_converge_exits_3_with_one_line(capsys):
    code, err = cli_exit(lambda: r2scan_energy(O2, TWO_CYCLES), capsys)
    assert code == 3
    assert err.startswith("calculation failed: ") and "did not converge" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_setting_exits_2_with_one_line_before_any_compute(capsys):
    code, err = cli_exit(lambda: MLIPSettings(fmax=0), capsys)
    assert code == 2
    assert err.startswith("error: fmax must be > 0") and err.count("\n") == 1


@job
def o2_energy() -> float:
    return r2scan_energy(O2, TWO_CYCLES).energy


def test_a_local_run_whose_job_failed_is_a_calculation_error(settings, capsys):
    flow = Flow([o2_energy()], name="o2 in two cycles")
    code, err = cli_exit(lambda: run_local(flow, settings=settings), capsys)
    assert code == 3 and err.startswith("calculation failed: 1 of 1 jobs of flow 'o2 in two")
