"""Property-based checking of the memory-design contract (Hypothesis).

:func:`check_design` is what each design's ``::contract`` item runs: a deterministic pass over
edge-case trajectories, then a Hypothesis state machine that interleaves ``general_update``,
``general_retrieve`` and snapshot/restore on environment-shaped and adversarial inputs. The rules
themselves live in :mod:`pytest_alma.contract.rules`; Hypothesis is imported only by the
modules that need it, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_alma.contract.rules import RULES, ContractConfig, ContractViolation

if TYPE_CHECKING:
    from pytest_alma.contract.run import check_design

__all__ = ["RULES", "ContractConfig", "ContractViolation", "check_design"]


def __getattr__(name: str) -> Any:
    # check_design pulls in Hypothesis; load it on first use only.
    if name == "check_design":
        from pytest_alma.contract.run import check_design

        return check_design
    raise AttributeError(name)
