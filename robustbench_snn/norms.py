"""How the threat models' norms relate: the certificate ball that holds an attack's ball."""

from __future__ import annotations


def covering_radius(attack_norm: str, eps: float, certificate_norm: str, dimension: int) -> float:
    """The smallest radius in ``certificate_norm`` whose ball holds the whole ``attack_norm`` ball of ``eps``.

    ``||d||_q <= dimension^(1/q - 1/p) ||d||_p`` for q < p, and ``||d||_q <= ||d||_p`` otherwise.
    """
    exponent = {"L1": 1.0, "L2": 0.5, "Linf": 0.0}
    return eps * dimension ** max(0.0, exponent[certificate_norm] - exponent[attack_norm])
