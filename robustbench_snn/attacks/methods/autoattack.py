"""AutoAttack, standard and rand versions (Croce and Hein 2020), from pyautoattack."""

from __future__ import annotations

from pyautoattack import AutoAttack as _AutoAttackRunner

from robustbench_snn.attacks.attack import Attack, register_attack
from robustbench_snn.progress import stage_done


class _AutoAttack(Attack):
    shows_steps = False
    # A fixed suite: the checks vary a member whose steps and eps they control instead.
    tunable = False
    suite = ""  # pyautoattack's name for the attack sequence

    def perturb(self, model, spec, images, labels, seed, draws):
        runner = _AutoAttackRunner(model, eps=spec.eps, norm=spec.norm, seed=seed, version=self.suite, device=images.device)
        runner.verbose = False
        _report_stages(runner)
        adversarial, _ = runner.run_standard_evaluation(images, labels, batch_size=len(images))
        return adversarial.detach()


def _report_stages(runner: _AutoAttackRunner) -> None:
    """Make each of the runner's attacks (APGD-CE, APGD-T, FAB-T, Square: minutes each) report its
    end to the progress bar, so the bar moves through AutoAttack's stages instead of standing still."""
    stages, done = max(1, len(runner.attacks_to_run)), 0
    for part in (runner.apgd, runner.apgd_targeted, runner.fab, runner.square):

        def counted(*args, _perturb=part.perturb, **kwargs):
            nonlocal done
            result = _perturb(*args, **kwargs)
            done += 1
            stage_done(min(done / stages, 1.0))
            return result

        part.perturb = counted


@register_attack
class AutoAttackStandard(_AutoAttack):
    name = "autoattack"
    description = "APGD-CE, APGD-T, FAB-T and Square in sequence (pyautoattack, standard version)"
    suite = "standard"


@register_attack
class AutoAttackRand(_AutoAttack):
    name = "autoattack-rand"
    description = "APGD-CE and APGD-DLR with 20 EOT draws each, for randomized defences (pyautoattack)"
    suite = "rand"
    own_eot = True
